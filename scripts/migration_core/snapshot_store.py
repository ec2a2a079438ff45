"""Keep schema snapshots in the companion table schema_migrations_snapshots (issue 4).

One job: create the table, record a snapshot, load the latest one, and compare it with the live schema. Nothing
here commits: the caller does, so a snapshot can share the transaction of the run's last migration.
Imports: stdlib, snapshot; schema_diff and db (psycopg2) only inside the functions that use them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import config
from .snapshot import Snapshot, canonical_json, catalog_fingerprint, json_hash, take_snapshot

if TYPE_CHECKING:
    from .schema_diff import SchemaChange

CREATE_SNAPSHOT_TABLE = """
CREATE TABLE {snapshots} (
    id SERIAL PRIMARY KEY,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_versions TEXT[] NOT NULL,
    schema_hash TEXT NOT NULL,
    snapshot JSONB NOT NULL,
    catalog_fingerprint TEXT
)
"""
# Tables made by earlier versions have no catalog_fingerprint column: it is added when the tool next records a
# snapshot and may (owner); otherwise the snapshots are recorded without it and every check takes the full path.
ADD_FINGERPRINT_COLUMN = "ALTER TABLE {snapshots} ADD COLUMN IF NOT EXISTS catalog_fingerprint TEXT"
SNAPSHOT_TABLE_STATE = """
SELECT t.c IS NOT NULL, EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.c
                                 AND a.attname = 'catalog_fingerprint' AND NOT a.attisdropped)
FROM (SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(%s) || '.' || pg_catalog.quote_ident(%s)) AS c) t
"""
INSERT_SNAPSHOT = """
INSERT INTO {snapshots} (applied_versions, schema_hash, snapshot)
VALUES (%s, %s, %s::jsonb)
RETURNING id
"""
INSERT_FINGERPRINTED_SNAPSHOT = """
INSERT INTO {snapshots} (applied_versions, schema_hash, snapshot, catalog_fingerprint)
VALUES (%s, %s, %s::jsonb, %s)
RETURNING id
"""
SELECT_LAST_SNAPSHOT = """
SELECT id, taken_at, applied_versions, schema_hash, snapshot
FROM {snapshots} ORDER BY id DESC LIMIT 1
"""
# The newest row without its (large) snapshot: what the check needs when the catalog has not changed since.
SELECT_LAST_SUMMARY = """
SELECT id, taken_at, applied_versions, {fingerprint}
FROM {snapshots} ORDER BY id DESC LIMIT 1
"""
SELECT_SNAPSHOT = "SELECT snapshot FROM {snapshots} WHERE id = %s"
NOT_MINE = ("42501", "55P03")  # adding the column: not the table's owner; a reader holds the table: both harmless


UNREVIEWED = "unreviewed"  # a key of the stored snapshot that the diff ignores


@dataclass(frozen=True)
class SnapshotSummary:
    """The newest row of the snapshot table, without the snapshot itself.

    fingerprint: the catalog fingerprint taken just before the snapshot (snapshot.catalog_fingerprint), or None:
    recorded by an earlier version, by a role that could not add the column, or marked unreviewed (an
    unreviewed snapshot never gets one, so a row with a fingerprint is always a reviewed one).
    """

    id: int
    taken_at: datetime
    applied_versions: list[str]
    fingerprint: str | None


@dataclass(frozen=True)
class SnapshotRecord:
    """One row of schema_migrations_snapshots."""

    id: int
    taken_at: datetime
    applied_versions: list[str]     # the versions applied when the snapshot was taken, in application order
    schema_hash: str
    snapshot: Snapshot


def snapshot_table_state(conn: Any) -> tuple[bool, bool]:
    """Return whether the snapshot table exists, and whether it has the catalog_fingerprint column (one query)."""
    with conn.cursor() as cur:
        cur.execute(SNAPSHOT_TABLE_STATE, (config.history_schema(), config.snapshot_table()))
        exists, fingerprinted = cur.fetchone()
    return bool(exists), bool(fingerprinted)


def ensure_snapshot_table(conn: Any) -> bool:
    """Create schema_migrations_snapshots if it does not exist (no commit); return whether it has the
    catalog_fingerprint column. An existing table is never re-created (a role that may write it but does not own
    it could not even run CREATE ... IF NOT EXISTS on it); one from an earlier version gets the column when the
    role may add it, in a savepoint, so a refusal changes nothing."""
    from .db import tool_sql  # here: importing this module must not load psycopg2
    exists, fingerprinted = snapshot_table_state(conn)
    with conn.cursor() as cur:
        if not exists:
            cur.execute(tool_sql(CREATE_SNAPSHOT_TABLE))
            return True
        if fingerprinted:
            return True
        cur.execute("SAVEPOINT add_fingerprint")
        try:
            cur.execute(tool_sql(ADD_FINGERPRINT_COLUMN))
        except Exception as err:  # the driver's error, duck-typed: this module stays free of psycopg2
            if getattr(err, "pgcode", None) not in NOT_MINE or conn.closed:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT add_fingerprint")
            return False
        cur.execute("RELEASE SAVEPOINT add_fingerprint")
        return True


def record_snapshot(conn: Any, applied_versions: list[str], snapshot: Snapshot, fingerprint: str | None = None) -> int:
    """Insert a snapshot with its hash (and the catalog fingerprint taken before it) and return its id (no
    commit: it rides in the caller's transaction)."""
    from .db import tool_sql
    text = canonical_json(snapshot)  # dumped once: the hash is over the same text
    values = (list(applied_versions), json_hash(text), text)
    with conn.cursor() as cur:
        if fingerprint is None:
            cur.execute(tool_sql(INSERT_SNAPSHOT), values)
        else:
            cur.execute(tool_sql(INSERT_FINGERPRINTED_SNAPSHOT), (*values, fingerprint))
        return int(cur.fetchone()[0])


def load_last_record(conn: Any) -> SnapshotRecord | None:
    """Return the newest recorded snapshot row, or None when there is none or no table yet."""
    from .db import history_table_exists, tool_sql
    if not history_table_exists(conn, config.snapshot_table()):  # first: a failed SELECT would abort the transaction
        return None
    with conn.cursor() as cur:
        cur.execute(tool_sql(SELECT_LAST_SNAPSHOT))
        row = cur.fetchone()
    return SnapshotRecord(*row) if row else None


def load_last_summary(conn: Any) -> SnapshotSummary | None:
    """Return the newest snapshot row without its snapshot, or None when there is none or no table yet."""
    from .db import tool_sql
    exists, fingerprinted = snapshot_table_state(conn)  # first: a failed SELECT would abort the transaction
    if not exists:
        return None
    with conn.cursor() as cur:
        cur.execute(tool_sql(SELECT_LAST_SUMMARY.replace(
            "{fingerprint}", "catalog_fingerprint" if fingerprinted else "NULL::text")))
        row = cur.fetchone()
    return SnapshotSummary(*row) if row else None


def load_snapshot(conn: Any, snapshot_id: int) -> Snapshot:
    """Return the recorded snapshot of one row of the snapshot table."""
    from .db import tool_sql
    with conn.cursor() as cur:
        cur.execute(tool_sql(SELECT_SNAPSHOT), (snapshot_id,))
        return cur.fetchone()[0]


def load_last_snapshot(conn: Any) -> Snapshot | None:
    """Return the newest recorded snapshot, or None when there is none or no table yet."""
    record = load_last_record(conn)
    return record.snapshot if record else None


def record_current_snapshot(conn: Any, applied_versions: list[str], unreviewed: bool = False) -> int:
    """Snapshot the schema as conn's transaction sees it and record it, creating the table if needed (no commit).

    unreviewed: the run started from a schema nobody had checked (a stale reference); the snapshot is recorded
    so, and the check keeps saying stale until a person records a reviewed one (apply --record-schema).
    """
    fingerprinted = ensure_snapshot_table(conn)  # first: creating or altering it changes the catalog
    # The fingerprint is taken before the snapshot: a change committed by another session in between then makes
    # the next check take the full path (and compare with this snapshot), never hides a difference.
    fingerprint = catalog_fingerprint(conn) if fingerprinted and not unreviewed else None
    snapshot = take_snapshot(conn)
    if unreviewed:
        snapshot[UNREVIEWED] = True
    return record_snapshot(conn, applied_versions, snapshot, fingerprint)


def detect_schema_drift(conn: Any) -> list[SchemaChange] | None:
    """Return what changed out of band since the last recorded snapshot; None when none was recorded yet."""
    from .schema_diff import diff_snapshots
    recorded = load_last_snapshot(conn)
    return None if recorded is None else diff_snapshots(recorded, take_snapshot(conn))
