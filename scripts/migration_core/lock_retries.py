"""Retry a migration that timed out waiting for a lock, and name who held it (issue 6).

Part of the database layer (its caller passes the psycopg2 connection in).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from .db import Connection
from .model import RunSettings, StepFailed
from .statements import Statement

LOCK_NOT_AVAILABLE = "55P03"
Stop = Callable[[], bool]
FIND_BLOCKERS = """
SELECT DISTINCT a.pid, a.application_name, a.state, extract(epoch FROM pg_catalog.now() - a.query_start)::int,
       pg_catalog.split_part(a.query, E'\\n', 1), l.mode, l.relation::pg_catalog.regclass::text
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_catalog.pg_backend_pid()
  AND l.relation = ANY (ARRAY(SELECT pg_catalog.to_regclass(name) FROM unnest(%s::text[]) AS name))
ORDER BY a.pid
"""
FIND_OLD_SNAPSHOTS = """
SELECT pid, application_name, state, extract(epoch FROM pg_catalog.now() - xact_start)::int
FROM pg_catalog.pg_stat_activity
WHERE backend_xmin IS NOT NULL AND pid <> pg_catalog.pg_backend_pid()
  AND datname = pg_catalog.current_database() AND backend_type = 'client backend'
ORDER BY xact_start LIMIT 5
"""


def with_lock_retries(conn: Connection, settings: RunSettings, statements: list[Statement],
                      stop: Stop, attempt: Callable[[], StepFailed | None]) -> StepFailed | None:
    """Retry an attempt that timed out waiting for a lock; in the end, name the sessions holding it."""
    for retry in range(settings.lock_retries + 1):
        failure = attempt()
        if failure is None or failure.sqlstate != LOCK_NOT_AVAILABLE or stop():
            return failure
        if retry < settings.lock_retries and pause_unless_stopped(settings.retry_backoff_s * 2 ** retry, stop):
            return failure  # a signal arrived while waiting to retry: nothing more runs
    blockers = describe_blockers(conn, statements)
    tries = settings.lock_retries + 1
    return replace(failure, error=f"{failure.error} (gave up after {tries} {'try' if tries == 1 else 'tries'}). "
                                  f"{blockers}")


def pause_unless_stopped(seconds: float, stop: Stop) -> bool:
    """Sleep in short slices; return True as soon as stop() says a signal arrived."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop():
            return True
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return stop()


def describe_blockers(conn: Connection, statements: list[Statement]) -> str:
    """Name who holds locks on the tables the migration touches: pid, application, state, query age, query."""
    from pglast.visitors import referenced_relations
    names = sorted({name for s in statements for name in referenced_relations(s.sql)})
    if not names:
        return "The blocking session could not be identified."
    with conn.cursor() as cur:
        cur.execute(FIND_BLOCKERS, (names,))
        rows = cur.fetchall()
    if not conn.autocommit:
        conn.rollback()
    if not rows:  # no table lock in the way: a concurrent build also waits for transactions with older snapshots
        with conn.cursor() as cur:
            cur.execute(FIND_OLD_SNAPSHOTS)
            rows = cur.fetchall()
        if not conn.autocommit:
            conn.rollback()
        if rows:
            return "Waiting for transactions that hold older snapshots: " + "; ".join(
                f"pid {pid} ({app or 'no application_name'}, {state}, transaction open for {age}s)"
                for pid, app, state, age in rows) + "."
        return "The blocking session was gone by the time it was looked up; try again."
    held = "; ".join(f"pid {pid} ({app or 'no application_name'}, {state}, query running {age}s: {query.strip()!r}) "
                     f"holds {mode} on {relation}" for pid, app, state, age, query, mode, relation in rows)
    return f"Blocked by: {held}."
