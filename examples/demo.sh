#!/usr/bin/env bash
# The whole loop on the demo's own database: generate → plan → dry run → ask → apply with the plan id →
# plan → rollback dry run → ask → rollback with the plan id → plan, then the demo agent.
#
#   make demo                  own embedded server under .pgdata/ and own database "demo"; stopped at the end
#   make demo KEEP=1           ... and keep the server running to explore it (the end says how to stop it)
#   bash examples/demo.sh [--db-url URL] [--keep] [--yes]
#
# DB_URL (environment or .env) is never used: the demo would write into that database. Only DEMO_DB_URL or
# --db-url point it at another database, with a warning. Without a terminal on stdin the questions are answered
# yes (and the demo says so); --yes (or YES=1) does that on a terminal too. DEMO_AGENT=0 leaves out the agent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "demo.sh: .venv/ is missing: run make demo (it creates .venv/ first)" >&2
  exit 2
fi
GIVEN_URL=${DEMO_DB_URL:-}
KEEP=${KEEP:-}
YES=${YES:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --db-url) GIVEN_URL=${2:?--db-url needs a URL}; shift 2 ;;
    --db-url=*) GIVEN_URL=${1#--db-url=}; shift ;;
    --keep) KEEP=1; shift ;;
    --yes) YES=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Bold and colour only for a person at a terminal (and never with NO_COLOR): pipes and logs get plain text.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  BOLD=$'\033[1m'; YELLOW=$'\033[33m'; RESET=$'\033[0m'
else
  BOLD=; YELLOW=; RESET=
fi
say() { printf '%s== %s%s\n' "$BOLD" "$*" "$RESET"; }
warn() { printf '%sWARNING: %s%s\n' "$YELLOW" "$*" "$RESET"; }
# Show a command as one would type it (arguments with spaces or quotes in double quotes), then run it.
shown() {
  local arg words=()
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./=:,+-]+$ ]]; then words+=("$arg"); else words+=("\"${arg//\"/\\\"}\""); fi
  done
  printf '%s' "${words[*]}"
}
step() { printf '\n%s$ %s%s\n' "$BOLD" "$(shown "$@")" "$RESET"; "$@"; }
plan_id_of() { "$@" --json | $PY -c 'import json, sys; print(json.load(sys.stdin)["plan_id"])'; }

# The person's answer: read from the terminal, or "yes" (said so) when there is none or --yes was given.
confirm() {
  printf '\n%s%s [y/N] %s' "$BOLD" "$1" "$RESET"
  if [ -n "$YES" ]; then echo "y (--yes: answered by the demo)"; return 0; fi
  if [ ! -t 0 ]; then echo "y (no terminal on stdin: answered by the demo)"; return 0; fi
  local answer
  read -r answer || answer=
  [[ "$answer" =~ ^[Yy] ]]
}

STARTED_SERVER=
finish() {
  local status=$?
  if [ -n "$STARTED_SERVER" ]; then
    echo
    if [ "$KEEP" = 1 ]; then
      say "The demo server keeps running (KEEP=1): DB_URL=$SHOWN_URL"
      say "Stop it with: make demo-stop   (or: $PY examples/embedded_db.py --stop)"
    else
      say "Stopping the demo server (make demo KEEP=1 keeps it running)"
      $PY examples/embedded_db.py --stop
    fi
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

if [ -n "$GIVEN_URL" ]; then
  DB_URL=$GIVEN_URL
  SHOWN_URL=$($PY examples/embedded_db.py --redact "$DB_URL")
  warn "using the database you gave (DEMO_DB_URL or --db-url): $SHOWN_URL"
  warn "the demo creates tables there (users, the history tables) and leaves the first two migrations applied."
else
  if [ -n "${DB_URL:-}" ] || grep -qs '^ *DB_URL *=' .env; then
    say "DB_URL is set but not used: the demo runs on its own database (DEMO_DB_URL=... to choose one)"
  fi
  say "Starting the demo's own PostgreSQL under .pgdata/ (database \"demo\", recreated empty)"
  STARTED_SERVER=1
  DB_URL=$($PY examples/embedded_db.py --database demo)
  SHOWN_URL=$DB_URL  # its own server trusts local connections: the URL holds no password
  say "Demo database: DB_URL=$SHOWN_URL"
fi
export DB_URL
# The harness rule an agent runs under: apply and rollback run only with the plan id the person confirmed.
export MIGRATIONS_REQUIRE_PLAN_ID=1

rm -rf .demo && mkdir -p .demo && cp migrations/*.sql .demo/
say "Migrations: a copy of migrations/ in .demo/"
M=(--migrations-dir .demo)

step $PY scripts/generate_migration.py "${M[@]}" --name add_user_status_column \
  --up "ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';" \
  --down "ALTER TABLE users DROP COLUMN status;"
step $PY scripts/plan_migrations.py "${M[@]}"
step $PY scripts/apply_migrations.py "${M[@]}" --dry-run
PLAN_ID=$(plan_id_of $PY scripts/apply_migrations.py "${M[@]}" --dry-run)
if ! confirm "Apply exactly this plan (plan id $PLAN_ID)?"; then
  say "Not confirmed: nothing was applied."
  exit 0
fi
step $PY scripts/apply_migrations.py "${M[@]}" --plan-id "$PLAN_ID"
step $PY scripts/plan_migrations.py "${M[@]}"

step $PY scripts/rollback_migrations.py "${M[@]}" --dry-run
PLAN_ID=$(plan_id_of $PY scripts/rollback_migrations.py "${M[@]}" --dry-run)
if ! confirm "Roll back exactly this plan (plan id $PLAN_ID)?"; then
  say "Not confirmed: nothing was rolled back."
  exit 0
fi
step $PY scripts/rollback_migrations.py "${M[@]}" --plan-id "$PLAN_ID"
step $PY scripts/plan_migrations.py "${M[@]}"

if [ -f examples/demo_agent.py ] && [ "${DEMO_AGENT:-1}" != 0 ]; then
  step $PY examples/demo_agent.py --migrations-dir .demo --yes
fi
