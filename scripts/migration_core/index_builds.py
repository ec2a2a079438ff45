"""Concurrent index builds never leave an INVALID index passing for a success (issue 9).

A failed or interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind, and a retry with IF NOT EXISTS
skips it. After each build the tool checks pg_index.indisvalid for the table it built on. Part of the database
layer (imports psycopg2).
"""
from __future__ import annotations

from dataclasses import replace

import psycopg2
from psycopg2 import sql

from .db import Connection
from .model import Step, StepFailed
from .statements import Statement

SELECT_INVALID_ON_TABLE = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = pg_catalog.to_regclass(%s) AND NOT i.indisvalid
"""
DROP_INDEX = "DROP INDEX CONCURRENTLY IF EXISTS {index}"
SET_DROP_TIMEOUT = "SET lock_timeout = 2000"
RESET_DROP_TIMEOUT = "RESET lock_timeout"


def concurrent_index_table(statement: Statement) -> str | None:
    """Return the table of a CREATE INDEX CONCURRENTLY / REINDEX TABLE CONCURRENTLY, whose failure leaves an
    INVALID index behind."""
    node = statement.node
    kind = type(node).__name__
    building = (kind == "IndexStmt" and node.concurrent) or (
        kind == "ReindexStmt" and any(p.defname == "concurrently" for p in node.params or ()) and node.relation)
    if not building or node.relation is None:
        return None
    relation = node.relation
    return ".".join(sql_quote(part) for part in (relation.schemaname, relation.relname) if part)


def sql_quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def invalid_indexes_on(conn: Connection, table: str) -> set[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(SELECT_INVALID_ON_TABLE, (table,))
        return {(schema, name) for schema, name in cur.fetchall()}


def check_index_build(conn: Connection, step: Step, statement: Statement, table: str,
                      invalid_before: set[tuple[str, str]], failure: StepFailed | None,
                      behind_pooler: bool = False) -> StepFailed | None:
    """Never let an INVALID index pass: drop what a failed build left (so a retry starts clean), and fail a
    build that 'succeeded' over an INVALID index of the same name (IF NOT EXISTS skips it)."""
    if conn.closed:
        return failure
    invalid_now = invalid_indexes_on(conn, table)
    if failure is not None:
        name = getattr(statement.node, "idxname", None)
        left = sorted(i for i in invalid_now - invalid_before if name is None or i[1] == name)
        dropped = [f"{s}.{n}" for s, n in left if drop_index(conn, s, n, behind_pooler)]
        undropped = [f"{s}.{n}" for s, n in left if f"{s}.{n}" not in dropped]
        if undropped:
            return replace(failure, error=f"{failure.error} It left INVALID index(es) {', '.join(undropped)}: "
                                          f"drop them with DROP INDEX CONCURRENTLY before running it again.")
        if dropped:
            return replace(failure, error=f"{failure.error} The INVALID index {', '.join(dropped)} that the failed "
                                          "build left was dropped, so a retry starts clean.")
        return failure
    name = getattr(statement.node, "idxname", None)
    bad = sorted(f"{s}.{n}" for s, n in invalid_now if (name and n == name) or (s, n) not in invalid_before)
    if not bad:
        return None
    return StepFailed(step.version, step.migration.name, step.direction, None,
                      f"index {', '.join(bad)} is INVALID (left by an interrupted or failed build; IF NOT EXISTS "
                      f"skips it). Drop it with DROP INDEX CONCURRENTLY {bad[0]}; then run the migration again",
                      statement.line, step.migration.path)


def drop_index(conn: Connection, schema: str, name: str, behind_pooler: bool) -> bool:
    """Drop an INVALID index a failed build left, concurrently (no ACCESS EXCLUSIVE queue on the table) and
    within a lock timeout; return whether it is gone. Runs in autocommit, between the migration's statements."""
    try:
        with conn.cursor() as cur:
            if not behind_pooler:  # a session SET would leak to other clients of a transaction pool
                cur.execute(SET_DROP_TIMEOUT)
            try:
                cur.execute(sql.SQL(DROP_INDEX).format(index=sql.Identifier(schema, name)))
            finally:
                if not conn.closed and not behind_pooler:
                    cur.execute(RESET_DROP_TIMEOUT)
        return True
    except psycopg2.Error:
        return False
