"""Keep schema snapshots in the companion table schema_migrations_snapshots (issue 4).

One job: create the table, record a snapshot, load the latest one, and compare it with the live schema. Nothing
here commits: the caller does, so a snapshot can share the transaction of the run's last migration.
Imports: stdlib, snapshot, schema_diff; db (psycopg2) only inside the functions that touch the database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .schema_diff import SchemaChange, diff_snapshots
from .snapshot import Snapshot, canonical_json, snapshot_hash, take_snapshot

CREATE_SNAPSHOT_TABLE = """
CREATE TABLE {snapshots} (
    id SERIAL PRIMARY KEY,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_versions TEXT[] NOT NULL,
    schema_hash TEXT NOT NULL,
    snapshot JSONB NOT NULL
)
"""
INSERT_SNAPSHOT = """
INSERT INTO {snapshots} (applied_versions, schema_hash, snapshot)
VALUES (%s, %s, %s::jsonb)
RETURNING id
"""
SELECT_LAST_SNAPSHOT = """
SELECT id, taken_at, applied_versions, schema_hash, snapshot
FROM {snapshots} ORDER BY id DESC LIMIT 1
"""


SNAPSHOT_TABLE = "schema_migrations_snapshots"
UNREVIEWED = "unreviewed"  # a key of the stored snapshot that the diff ignores


@dataclass(frozen=True)
class SnapshotRecord:
    """One row of schema_migrations_snapshots."""

    id: int
    taken_at: datetime
    applied_versions: list[str]     # the versions applied when the snapshot was taken, in application order
    schema_hash: str
    snapshot: Snapshot


def ensure_snapshot_table(conn: Any) -> None:
    """Create schema_migrations_snapshots if it does not exist (no commit); never touch an existing one, which a
    role that may write it but does not own it could not even run CREATE ... IF NOT EXISTS on."""
    from .db import history_table_exists, tool_sql  # here: importing this module must not load psycopg2
    if not history_table_exists(conn, SNAPSHOT_TABLE):
        with conn.cursor() as cur:
            cur.execute(tool_sql(CREATE_SNAPSHOT_TABLE))


def record_snapshot(conn: Any, applied_versions: list[str], snapshot: Snapshot) -> int:
    """Insert a snapshot with its hash and return its id (no commit: it rides in the caller's transaction)."""
    from .db import tool_sql
    with conn.cursor() as cur:
        cur.execute(tool_sql(INSERT_SNAPSHOT), (list(applied_versions), snapshot_hash(snapshot), canonical_json(snapshot)))
        return int(cur.fetchone()[0])


def load_last_record(conn: Any) -> SnapshotRecord | None:
    """Return the newest recorded snapshot row, or None when there is none or no table yet."""
    from .db import history_table_exists, tool_sql
    if not history_table_exists(conn, SNAPSHOT_TABLE):  # first: a failed SELECT would abort the transaction
        return None
    with conn.cursor() as cur:
        cur.execute(tool_sql(SELECT_LAST_SNAPSHOT))
        row = cur.fetchone()
    return SnapshotRecord(*row) if row else None


def load_last_snapshot(conn: Any) -> Snapshot | None:
    """Return the newest recorded snapshot, or None when there is none or no table yet."""
    record = load_last_record(conn)
    return record.snapshot if record else None


def record_current_snapshot(conn: Any, applied_versions: list[str], unreviewed: bool = False) -> int:
    """Snapshot the schema as conn's transaction sees it and record it, creating the table if needed (no commit).

    unreviewed: the run started from a schema nobody had checked (a stale reference); the snapshot is recorded
    so, and the check keeps saying stale until a person records a reviewed one (apply --record-schema).
    """
    snapshot = take_snapshot(conn)
    if unreviewed:
        snapshot[UNREVIEWED] = True
    ensure_snapshot_table(conn)
    return record_snapshot(conn, applied_versions, snapshot)


def detect_schema_drift(conn: Any) -> list[SchemaChange] | None:
    """Return what changed out of band since the last recorded snapshot; None when none was recorded yet."""
    recorded = load_last_snapshot(conn)
    return None if recorded is None else diff_snapshots(recorded, take_snapshot(conn))
