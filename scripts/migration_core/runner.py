"""Runs one migration step on the server: timeouts, lock retries, one transaction or statement by statement.

Part of the database layer with db.py (the two modules that import psycopg2). Driver errors become StepFailed
(the migration's own SQL failed) or ConfigError (the connection is gone), here at the boundary.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import psycopg2

from .db import (FIND_BLOCKERS, FINISH_PROGRESS, RECORD_SUCCESS, RESET_TIMEOUTS, START_PROGRESS, UPDATE_PROGRESS,
                 Connection, connection_lost, first_line, record_failure)
from .errors import ConfigError
from .model import RunSettings, Step, StepDone, StepFailed
from .statements import Statement

LOCK_NOT_AVAILABLE = "55P03"


def run_step(conn: Connection, step: Step, settings: RunSettings, statements: list[Statement],
             stop: Callable[[], bool] = lambda: False) -> StepDone | StepFailed:
    """Run one migration section; on failure it is rolled back (or reported part way) and recorded.

    stop() says a signal arrived: no retry starts after it.
    """
    started = time.perf_counter()
    if step.migration.transactional:
        failure = with_lock_retries(conn, settings, statements, stop,
                                    lambda: run_in_transaction(conn, step, settings))
        if failure:
            record_failure(conn, history_row(step), failure)
    else:
        failure = run_statement_by_statement(conn, step, settings, statements, stop)
    if failure:
        return failure
    return StepDone(step.version, step.migration.name, step.direction,
                    round((time.perf_counter() - started) * 1000, 1))


def history_row(step: Step) -> dict[str, str]:
    m = step.migration
    return {"version": m.version, "name": m.name, "checksum": m.checksum, "direction": step.direction}


def timeouts_sql(step: Step, settings: RunSettings, scope: str) -> str:
    """Return the SET statements for this migration's timeouts (integers we parsed, never user text)."""
    lock, statement = settings.for_migration(step.migration)
    return f"SET {scope}lock_timeout = {int(lock)}; SET {scope}statement_timeout = {int(statement)};\n"


def run_in_transaction(conn: Connection, step: Step, settings: RunSettings) -> StepFailed | None:
    """Run the section and its success row in one transaction; on error roll back and describe it."""
    sql, first_line_no = step.migration.section(step.direction)
    # The timeouts travel in the migration's own round trip; they occupy the one line before the section.
    sent = timeouts_sql(step, settings, "LOCAL ") + sql
    try:
        with conn.cursor() as cur:
            cur.execute(sent)  # no parameters: a % in the migration stays a %
            cur.execute(RECORD_SUCCESS, history_row(step))
        conn.commit()
        return None
    except psycopg2.Error as err:
        failure = describe_failure(conn, err, step, sent, first_line_no - 1)
        conn.rollback()
        return failure


def run_statement_by_statement(conn: Connection, step: Step, settings: RunSettings, statements: list[Statement],
                               stop: Callable[[], bool]) -> StepFailed | None:
    """Run a `-- TRANSACTION: none` section one statement at a time, keeping count in its history row."""
    total, completed = len(statements), 0
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # Written first and kept current, so even a killed runner leaves an accurate count behind.
            cur.execute(START_PROGRESS, {**history_row(step), "error_message": progress_note(0, total)})
            row_id = cur.fetchone()[0]
        for done, statement in enumerate(statements):
            failure = with_lock_retries(conn, settings, [statement], stop,
                                        lambda s=statement: run_one_statement(conn, step, settings, s))
            with conn.cursor() as cur:
                if failure:
                    failure = replace(failure, statements_done=done, statements_total=total)
                    cur.execute(UPDATE_PROGRESS, (failure.describe(), row_id))
                    return failure
                cur.execute(UPDATE_PROGRESS, (progress_note(done + 1, total), row_id))
            completed = done + 1
        with conn.cursor() as cur:
            cur.execute(FINISH_PROGRESS, {**history_row(step), "id": row_id})
        return None
    except ConfigError as err:  # lost inside a statement: say how far the migration got
        if err.code != "connection_lost":
            raise
        raise connection_lost(step, (completed, total)) from None
    except psycopg2.Error as err:
        if conn.closed or (err.pgcode or "").startswith("57P"):
            raise connection_lost(step, (completed, total)) from None
        raise
    finally:
        if not conn.closed:
            conn.autocommit = False


def progress_note(done: int, total: int) -> str:
    return f"interrupted: {done} of {total} statements completed; the runner stopped before finishing"


def run_one_statement(conn: Connection, step: Step, settings: RunSettings, statement: Statement) -> StepFailed | None:
    """Run one statement outside a transaction under the migration's timeouts, which apply to it alone."""
    try:
        with conn.cursor() as cur:
            cur.execute(timeouts_sql(step, settings, ""))
            try:
                cur.execute(statement.sql)
            finally:
                if not conn.closed:
                    cur.execute(RESET_TIMEOUTS)  # the history row and the next steps run without them
        return None
    except psycopg2.Error as err:
        return describe_failure(conn, err, step, statement.sql, statement.line)


def with_lock_retries(conn: Connection, settings: RunSettings, statements: list[Statement],
                      stop: Callable[[], bool], attempt: Callable[[], StepFailed | None]) -> StepFailed | None:
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


def pause_unless_stopped(seconds: float, stop: Callable[[], bool]) -> bool:
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
    if not rows:
        return "The blocking session was gone by the time it was looked up; try again."
    held = "; ".join(f"pid {pid} ({app or 'no application_name'}, {state}, query running {age}s: {query.strip()!r}) "
                     f"holds {mode} on {relation}" for pid, app, state, age, query, mode, relation in rows)
    return f"Blocked by: {held}."


def describe_failure(conn: Connection, err: psycopg2.Error, step: Step, sent: str, line_before: int) -> StepFailed:
    """Turn a server error into a StepFailed naming SQLSTATE, message and the file line; a lost link is fatal."""
    if conn.closed or (err.pgcode or "").startswith("57P"):  # server gone or session terminated
        raise connection_lost(step) from None
    position = err.diag.statement_position
    line = line_before + sent[: int(position) - 1].count("\n") if position else None
    if line is not None and line < step.migration.section(step.direction)[1]:
        line = None  # the error was in our own SET prefix, not in the file
    message = err.diag.message_primary or first_line(str(err))
    return StepFailed(step.version, step.migration.name, step.direction, err.pgcode, message, line,
                      step.migration.path)
