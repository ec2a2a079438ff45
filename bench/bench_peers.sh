#!/usr/bin/env bash
# The peers comparison: this checkout against dbmate (Go) and the bare psycopg2 floor, on the same work, in one run
# of the peers harness (apply 1,000, plan with 1,000 applied, plan with 10 pending, rollback of the last 10).
# PEERS_DIR: the harness (peers.py, setup.sh; default ../shared/peers); it is copied to a scratch directory first,
# as its setup installs a venv and node_modules next to it (dbmate comes from npm, as setup.sh does it).
# PEERS_TOOLS: default dbmate,floor (every peer: dbmate,yoyo,alembic,sqitch,node-pg-migrate,floor).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
PEERS_TOOLS="${PEERS_TOOLS:-dbmate,floor}"
WORK="${PEERS_WORK:-${TMPDIR:-/tmp}/migration-peers}"
if [ ! -f "$PEERS_DIR/peers.py" ]; then
    echo "== peers comparison skipped: no harness at $PEERS_DIR (set PEERS_DIR to the peers benchmark folder)"
    exit 0
fi
# Compiled bytecode, as an installed tool has it (with PYTHONDONTWRITEBYTECODE set, every run would compile again).
"$ROOT/.venv/bin/python" -m compileall -q "$ROOT/scripts" >/dev/null
mkdir -p "$WORK"
cp -r "$PEERS_DIR"/. "$WORK"/
chmod -R u+w "$WORK"
cd "$WORK"
[ -x .venv/bin/python ] && [ -d node_modules/@dbmate ] || ./setup.sh >"$WORK/setup.log" 2>&1
DATA_PARENT=/dev/shm
[ -d "$DATA_PARENT" ] && [ -w "$DATA_PARENT" ] || DATA_PARENT="${TMPDIR:-/tmp}"
exec .venv/bin/python peers.py --pgdata-parent "$DATA_PARENT" --project "$ROOT" --tools "$PEERS_TOOLS" "$@"
