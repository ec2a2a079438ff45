"""Benchmark schema snapshots on a real PostgreSQL (issue 4, "Speed").

Builds a schema of 500 tables, 3,000 columns and 1,000 indexes (plus a CHECK constraint per table), then times,
in this process on one open connection (what plan and apply pay on top of their own work):
  take_snapshot        the catalog queries and the assembly into a dict (target: median under 1 s);
  hash                 canonical JSON + SHA-256 (canonical JSON alone also shown);
  diff (no drift)      diff_snapshots of two equal snapshots, the common case;
  diff (10 changes)    diff_snapshots after ten out-of-band changes;
  load last snapshot   reading the recorded snapshot back from schema_migrations_snapshots;
  record snapshot      inserting one (apply's and rollback's added cost, inside their last transaction);
  plan's added cost    load last + take_snapshot + diff, run back to back: the full path, taken after DDL;
  catalog fingerprint  the one query that decides whether the full path is needed;
  check, no DDL since  plan's check when the catalog has not changed: the last row's fingerprint + the live one.

Usage: .venv/bin/python bench/bench_snapshot.py [--tables 500] [--repeat 15] [--json results.json]
Server: BENCH_DB_URL or DB_URL (an admin URL: the bench creates and drops a database), else embedded PostgreSQL.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from bench_server import start_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from migration_core.schema_diff import diff_snapshots
from migration_core.schema_check import live_changes
from migration_core.snapshot import canonical_json, catalog_fingerprint, snapshot_hash, take_snapshot
from migration_core.snapshot_store import ensure_snapshot_table, load_last_snapshot, load_last_summary, record_snapshot

TARGET_S = 1.0
TABLE_SQL = """
CREATE TABLE t{i:04d} (
    id bigint NOT NULL,
    name text NOT NULL,
    email text,
    score integer DEFAULT 0,
    status text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT t{i:04d}_score_check CHECK (score >= 0)
);
CREATE INDEX t{i:04d}_email ON t{i:04d} (lower(email));
CREATE INDEX t{i:04d}_created ON t{i:04d} (created_at) WHERE status IS NOT NULL;
"""
CHANGES = """
ALTER TABLE t0001 ADD COLUMN extra text;
ALTER TABLE t0002 ALTER COLUMN score TYPE bigint;
DROP INDEX t0003_email;
ALTER TABLE t0004 ADD CONSTRAINT t0004_name_check CHECK (name <> '');
ALTER TABLE t0005 ALTER COLUMN email SET NOT NULL;
ALTER TABLE t0006 DROP COLUMN status;
CREATE INDEX t0007_name ON t0007 (name);
ALTER TABLE t0008 ALTER COLUMN score SET DEFAULT 1;
CREATE TABLE t_new (id int);
DROP TABLE t0009;
"""


def admin_execute(admin_url: str, sql: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def build_schema(conn: Any, tables: int) -> dict[str, int]:
    """Create the tables in one round trip and return what the catalogs now hold."""
    with conn.cursor() as cur:
        cur.execute("".join(TABLE_SQL.format(i=i) for i in range(tables)))
        conn.commit()
        cur.execute("""SELECT (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace),
                              (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                               WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0),
                              (SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relnamespace = 'public'::regnamespace)""")
        found = cur.fetchone()
    conn.rollback()
    return dict(zip(("tables", "columns", "indexes"), found))


def timed(action: Callable[[], object], repeat: int) -> dict[str, float]:
    """Run the action once to warm up, then `repeat` times; return median, min and max in milliseconds."""
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "min_ms": round(min(samples), 2),
            "max_ms": round(max(samples), 2)}


def fingerprinted_row(conn: Any) -> tuple[int, str | None]:
    """Return the id and fingerprint of the last snapshot row, as the check reads them."""
    summary = load_last_summary(conn)
    return summary.id, summary.fingerprint


def measure(conn: Any, repeat: int) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Time each operation on the built schema; return the timings and facts about the snapshot."""
    conn.autocommit = True  # as plan's read-only connection
    snapshot = take_snapshot(conn)
    ensure_snapshot_table(conn)
    record_snapshot(conn, ["bench"], snapshot, catalog_fingerprint(conn))
    loaded = load_last_snapshot(conn) or {}  # equal, but no shared objects: as plan would compare
    figures = {
        "take_snapshot": timed(lambda: take_snapshot(conn), repeat),
        "hash": timed(lambda: snapshot_hash(snapshot), repeat),
        "diff (no drift)": timed(lambda: diff_snapshots(loaded, snapshot), repeat),
        "canonical JSON": timed(lambda: canonical_json(snapshot), repeat),
        "load last snapshot": timed(lambda: load_last_snapshot(conn), repeat),
        "plan's added cost": timed(lambda: diff_snapshots(load_last_snapshot(conn) or {}, take_snapshot(conn)),
                                   repeat),
        "catalog fingerprint": timed(lambda: catalog_fingerprint(conn), repeat),
        "check, no DDL since": timed(lambda: live_changes(conn, *fingerprinted_row(conn)), repeat),
    }
    conn.autocommit = False
    figures["record snapshot"] = timed(lambda: (record_snapshot(conn, ["bench"], snapshot), conn.rollback()), repeat)
    with conn.cursor() as cur:
        cur.execute(CHANGES)
    conn.commit()
    changed = take_snapshot(conn)
    figures["diff (10 changes)"] = timed(lambda: diff_snapshots(snapshot, changed), repeat)
    facts = {"snapshot_bytes": len(canonical_json(snapshot).encode()),
             "changes_found": [c.describe() for c in diff_snapshots(snapshot, changed)]}
    return figures, facts


def report(counts: dict[str, int], figures: dict[str, dict[str, float]], facts: dict[str, Any]) -> None:
    print(f"Schema: {counts['tables']} tables, {counts['columns']} columns, {counts['indexes']} indexes; "
          f"snapshot {facts['snapshot_bytes'] / 1024:.0f} KiB of canonical JSON.")
    print(f"{'operation':<22}{'median':>12}{'min':>12}{'max':>12}")
    for name, figure in figures.items():
        print(f"{name:<22}{figure['median_ms']:>10.1f}ms{figure['min_ms']:>10.1f}ms{figure['max_ms']:>10.1f}ms")
    median_s = figures["take_snapshot"]["median_ms"] / 1000
    verdict = "meets" if median_s < TARGET_S else "MISSES"
    print(f"take_snapshot median {median_s:.3f} s {verdict} the {TARGET_S:.0f} s target.")
    print(f"diff with 10 out-of-band changes found {len(facts['changes_found'])}:")
    for line in facts["changes_found"]:
        print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=500, help="tables to create (6 columns, 2 indexes each)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per figure (after one warm-up)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    admin_url, cleanup = start_server("snapbench-")
    name = "snapbench_" + uuid.uuid4().hex[:12]
    try:
        admin_execute(admin_url, f'CREATE DATABASE "{name}"')
        conn = psycopg2.connect(urlunsplit(urlsplit(admin_url)._replace(path="/" + name)))
        try:
            counts = build_schema(conn, args.tables)
            figures, facts = measure(conn, args.repeat)
        finally:
            conn.close()
            admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        cleanup()
    report(counts, figures, facts)
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "figures": figures, **facts}, indent=2) + "\n")
    return 0 if figures["take_snapshot"]["median_ms"] / 1000 < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
