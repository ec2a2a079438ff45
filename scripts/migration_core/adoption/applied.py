"""Read which versions the other tool's history table shows as applied (each tool keeps it its own way).

- dbmate: one row per applied version (version varchar PRIMARY KEY); a rollback deletes the row.
- golang-migrate: one row, the current version and a dirty flag (version bigint, dirty boolean): every version up
  to it is applied; dirty means a migration failed part way, and adoption refuses.
- goose: goose_db_version rows (version_id, is_applied), version 0 its own start row; a version is applied when its
  newest row says so (older goose wrote is_applied false on rollback, newer goose deletes the row).
- Flyway: flyway_schema_history rows by installed_rank; a version is applied when its newest row is a successful
  migration (not an undo, nor a deleted marker); a baseline row stands for every version up to it; a failed row
  (success false) refuses, as golang-migrate's dirty flag does.
The caller passes its connection (in the adoption's transaction). Imports: stdlib, psycopg2.sql, errors, history_shape.
"""
from __future__ import annotations

from typing import Any

from psycopg2 import sql

from ..errors import Refused
from ..history_shape import ForeignHistory

SELECT = {
    "dbmate": "SELECT version FROM {table}",
    "golang-migrate": "SELECT version, dirty FROM {table}",
    "goose": "SELECT version_id, is_applied FROM {table} ORDER BY id",
    "flyway": "SELECT version, type, success FROM {table} WHERE version IS NOT NULL ORDER BY installed_rank",
}
NOT_APPLIED_TYPES = ("UNDO_SQL", "UNDO_JDBC", "UNDO_SCRIPT", "DELETE")
IGNORED_TYPES = ("SCHEMA",)      # Flyway's "<< Flyway Schema Creation >>" marker
BASELINE_TYPES = ("BASELINE",)


def read_rows(conn: Any, found: ForeignHistory) -> list[tuple[Any, ...]]:
    """Return the rows of the other tool's history table that say what is applied."""
    query = sql.SQL(SELECT[found.tool]).format(table=sql.Identifier(found.schema, found.table))
    with conn.cursor() as cur:
        cur.execute(query)
        return list(cur.fetchall())


def applied_keys(tool: str, rows: list[tuple[Any, ...]], keys: list[tuple[int, ...]], table: str,
                 key_of: Any) -> list[tuple[int, ...]]:
    """Return the version keys the other tool shows as applied (keys: the folder's, in order); refuse a dirty state.

    key_of(text) turns a version as stored into the folder's key (Flyway's 1.0 is 1).
    """
    if tool == "dbmate":
        return sorted(key_of(str(version)) for (version,) in rows)
    if tool == "golang-migrate":
        return golang_migrate_applied(rows, keys, table)
    if tool == "goose":
        newest: dict[int, bool] = {}
        for version, is_applied in rows:
            newest[int(version)] = bool(is_applied)
        return sorted((v,) for v, applied in newest.items() if applied and v != 0)
    return flyway_applied(rows, keys, table, key_of)


def golang_migrate_applied(rows: list[tuple[Any, ...]], keys: list[tuple[int, ...]],
                           table: str) -> list[tuple[int, ...]]:
    """Return every folder version up to golang-migrate's current one (plus that one, if the folder lacks it)."""
    if not rows:
        return []
    version, dirty = rows[0]
    if dirty:
        raise dirty_history(table, f"version {version} is dirty (golang-migrate stopped part way through it)",
                            "Finish or undo that migration by hand, then clear the flag as golang-migrate says "
                            f"(migrate force {version}, or the version before it), and adopt again.")
    if int(version) < 0:
        return []
    current = (int(version),)
    return sorted({k for k in keys if k <= current} | {current})


def flyway_applied(rows: list[tuple[Any, ...]], keys: list[tuple[int, ...]], table: str,
                   key_of: Any) -> list[tuple[int, ...]]:
    """Return the versions whose newest Flyway row is a success; a baseline row stands for the folder's versions up
    to it (its own version is a marker, usually of no file)."""
    failed = [str(version) for version, _kind, success in rows if not success]
    if failed:
        raise dirty_history(table, f"Flyway recorded failed migration(s): {', '.join(failed)}",
                            "Fix them and run flyway repair (or finish them by hand), then adopt again.")
    newest: dict[tuple[int, ...], str] = {}
    for version, kind, _success in rows:
        if kind not in IGNORED_TYPES:
            newest[key_of(str(version))] = kind
    applied = {k for k, kind in newest.items() if kind not in NOT_APPLIED_TYPES + BASELINE_TYPES}
    for baseline in [k for k, kind in newest.items() if kind in BASELINE_TYPES]:
        applied |= {k for k in keys if k <= baseline}
    return sorted(applied)


def dirty_history(table: str, what: str, hint: str) -> Refused:
    return Refused(f"The history in {table} is not clean: {what}; nothing was changed.", code="foreign_history_dirty",
                   hint=hint)
