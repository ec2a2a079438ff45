#!/usr/bin/env bash
# The design's demo flow (section 12) on a throwaway copy of migrations/: generate, plan, dry run, apply, rollback.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ -z "${DB_URL:-}" ]; then
  DB_URL=$($PY examples/embedded_db.py --database demo)
  echo "Started an embedded PostgreSQL under .pgdata/ (DB_URL not set)."
fi
export DB_URL
rm -rf .demo && mkdir -p .demo && cp migrations/*.sql .demo/
M=(--migrations-dir .demo)
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step $PY scripts/generate_migration.py "${M[@]}" --name add_user_status_column \
  --up "ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';" \
  --down "ALTER TABLE users DROP COLUMN status;"
step $PY scripts/plan_migrations.py "${M[@]}"
step $PY scripts/apply_migrations.py "${M[@]}" --dry-run
step $PY scripts/apply_migrations.py "${M[@]}"
step $PY scripts/plan_migrations.py "${M[@]}"
step $PY scripts/rollback_migrations.py "${M[@]}"
step $PY scripts/plan_migrations.py "${M[@]}"
if [ -f examples/demo_agent.py ]; then
  step $PY examples/demo_agent.py --migrations-dir .demo --yes
fi
