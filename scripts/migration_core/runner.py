"""Runs one migration step on the server: timeouts, lock retries, one transaction or statement by statement.

Part of the database layer with db.py, lock.py, lock_retries.py and index_builds.py. Driver errors become
StepFailed (the migration's own SQL failed), ConfigError (the connection is gone) or a refusal (the history already
has the row), here at the boundary.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import psycopg2

from .db import (FINISH_PROGRESS, LOCK_STILL_HELD, RESET_SESSION, START_PROGRESS, SUPERSEDE_SUCCESS, UPDATE_PROGRESS,
                 UPDATE_PROGRESS_UNGUARDED,
                 Connection, already_recorded, connection_lost, first_line, history_index_name, is_connection_gone,
                 record_failure, server_failure, take_notices, tool_sql)
from .errors import ConfigError, Refused
from .index_builds import check_index_build, concurrent_index_table, invalid_indexes_on
from .lock import RunnerLock
from .lock_retries import with_lock_retries
from .model import RunSettings, Step, StepDone, StepFailed
from .statements import Statement

UNIQUE_VIOLATION = "23505"
TOOL_STATEMENT_MS = 60_000
SET_TIMEOUTS = "SET lock_timeout = {lock}; SET statement_timeout = {statement}"
RESET_TIMEOUTS = "RESET lock_timeout; RESET statement_timeout"
Stop = Callable[[], bool]
# The success row and the COMMIT in one round trip. The row is written only while the run holds its lock; without
# it the status is a cast that fails (at run time: it depends on the guard's answer), so the COMMIT after it never
# runs and the migration is rolled back, as when the row was checked apart. Preceded by SUPERSEDE_SUCCESS only when
# the history read under the lock has a success row of the pair.
LOCK_LOST_MARK = "runner lock not held"
INVALID_TEXT = "22P02"
RECORD_SUCCESS_AND_COMMIT = """
INSERT INTO {history} (version, name, checksum, direction, status)
SELECT %(version)s, %(name)s, %(checksum)s, %(direction)s,
       CASE WHEN held THEN 'success' ELSE (held::text || ': """ + LOCK_LOST_MARK + """')::integer::text END
FROM (SELECT """ + LOCK_STILL_HELD + """ AS held) AS guard;
COMMIT;
"""


def run_step(conn: Connection, step: Step, settings: RunSettings, statements: list[Statement], lock: RunnerLock,
             stop: Stop = lambda: False, *, supersede: bool) -> StepDone | StepFailed:
    """Run one migration section; on failure it is rolled back (or reported part way) and recorded.

    stop() says a signal arrived: no retry starts after it. supersede: the history read under the lock has a
    success row of this version and direction, which the new one may replace (db.SUPERSEDE_SUCCESS).
    """
    started = time.perf_counter()
    take_notices(conn)
    if step.migration.transactional or not statements:  # a '-- noop:' section: its success row, in a transaction
        failure = with_lock_retries(conn, settings, statements, stop,
                                    lambda: run_in_transaction(conn, step, settings, lock, supersede))
        if failure:
            record_failure(conn, history_row(step), failure.describe())
    else:
        failure = run_statement_by_statement(conn, step, settings, statements, lock, stop, supersede)
    notices = tuple(take_notices(conn))
    if failure:
        return replace(failure, notices=notices)
    return StepDone(step.version, step.migration.name, step.direction,
                    round((time.perf_counter() - started) * 1000, 1), notices)


def history_row(step: Step) -> dict[str, str]:
    m = step.migration
    return {"version": m.version, "name": m.name, "checksum": m.checksum, "direction": step.direction}


def run_in_transaction(conn: Connection, step: Step, settings: RunSettings, lock: RunnerLock,
                       supersede: bool) -> StepFailed | None:
    """Run the section, reset the session, and write the success row, all in one transaction.

    Two round trips: BEGIN, the timeouts and the SQL; then the reset, the row and COMMIT (psycopg2's own BEGIN and
    COMMIT would add two more per migration). The connection is in autocommit mode only for them.
    """
    sql_text, first_line_no = step.migration.section(step.direction)
    lock_ms, statement_ms = settings.for_migration(step.migration)
    # The timeouts travel in the migration's own round trip; they occupy the one line before the section.
    sent = (f"BEGIN; SET LOCAL lock_timeout = {int(lock_ms)}; SET LOCAL statement_timeout = {int(statement_ms)};\n"
            + sql_text)
    # Deferred constraints are checked here, as part of the migration, not at COMMIT after the tool's own row.
    sent += "\n;SET CONSTRAINTS ALL IMMEDIATE;"
    conn.autocommit = True
    try:
        try:
            with conn.cursor() as cur:
                cur.execute(sent)  # no parameters: a % in the migration stays a %
        except psycopg2.Error as err:
            failure = describe_failure(conn, err, step, sent, first_line_no - 1)
            abort(conn)
            return failure
        record_success(conn, step, lock, lock_ms, supersede)
        return None
    finally:
        if not conn.closed:
            conn.autocommit = False


def abort(conn: Connection) -> None:
    """Roll back the transaction the migration's own BEGIN opened (psycopg2's rollback does nothing in autocommit)."""
    try:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")
    except psycopg2.Error:
        if not conn.closed and conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            raise


def record_success(conn: Connection, step: Step, lock: RunnerLock, lock_ms: int, supersede: bool) -> None:
    """Reset the session and write the success row in the migration's transaction, then commit both."""
    # RESET ALL also undid the migration's SET LOCAL timeouts: the tool's row gets its own, never none.
    timeouts = f"SET LOCAL lock_timeout = {int(lock_ms)}; SET LOCAL statement_timeout = {TOOL_STATEMENT_MS};"
    record = (SUPERSEDE_SUCCESS if supersede else "") + RECORD_SUCCESS_AND_COMMIT
    try:
        with conn.cursor() as cur:  # one round trip: the reset, the guarded row, the commit
            cur.execute(tool_sql(RESET_SESSION + timeouts + record), history_row(step) | lock.guard())
    except psycopg2.Error as err:
        if is_connection_gone(conn, err):
            raise connection_lost(step) from None
        abort(conn)
        if err.pgcode == UNIQUE_VIOLATION and err.diag.constraint_name == history_index_name():
            raise already_recorded(step) from None
        if err.pgcode == INVALID_TEXT and LOCK_LOST_MARK in (err.diag.message_primary or ""):
            raise lock_lost(step) from None
        raise server_failure(conn, err, f"recording {step.version} (its changes were rolled back)") from None


def lock_held(conn: Connection, lock: RunnerLock) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT " + LOCK_STILL_HELD, lock.guard())
        return bool(cur.fetchone()[0])


def lock_lost(step: Step, progress: tuple[int, int] | None = None) -> Refused:
    effect = ("its changes were rolled back" if progress is None else
              f"it runs statement by statement: {progress[0]} of {progress[1]} statements had completed and stay "
              "applied, and no further statement was sent")
    return Refused(f"The runner lock was lost before {step.version} was recorded (its lock connection ended); "
                   f"{effect}.", code="lock_lost",
                   hint="Check for sessions ended by an administrator or idle timeouts, then run "
                        "python scripts/plan_migrations.py and the command again.")


def run_statement_by_statement(conn: Connection, step: Step, settings: RunSettings, statements: list[Statement],
                               lock: RunnerLock, stop: Stop, supersede: bool) -> StepFailed | None:
    """Run a `-- TRANSACTION: none` section one statement at a time, keeping count in its history row."""
    total, completed = len(statements), 0
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # Written first and kept current, so even a killed runner leaves an accurate count behind.
            cur.execute(tool_sql(START_PROGRESS), {**history_row(step), **lock.guard(),
                                                   "error_message": progress_note(0, total, statements[0])})
            started = cur.fetchone()
        if started is None:  # nothing ran: either the lock is gone or another run got there first
            raise lock_lost(step) if not lock_held(conn, lock) else already_recorded(step)
        row_id = started[0]
        for done, statement in enumerate(statements):
            if done and stop():  # a signal between two statements: the next one is not sent
                return cancelled_before(step, statement, done, total, conn, row_id)
            # Written before the statement is sent (from now on it may have completed), and only while the run
            # still holds its lock: a run that lost it sends nothing more.
            if done and not update_progress(conn, progress_note(done, total, statement), row_id, lock):
                raise lock_lost(step, (done, total))
            failure = with_lock_retries(conn, settings, [statement], stop,
                                        lambda s=statement: run_one_statement(conn, step, settings, s, lock))
            if failure:
                failure = replace(failure, statements_done=done, statements_total=total)
                update_progress(conn, failure.describe(), row_id, lock)
                return failure
            completed = done + 1
        finish_progress(conn, step, row_id, lock, total, supersede)
        return None
    except psycopg2.Error as err:
        if is_connection_gone(conn, err):
            raise connection_lost(step, (completed, total)) from None
        raise server_failure(conn, err, f"recording the progress of {step.version}") from None
    except ConfigError as err:  # lost inside a statement: say how far the migration got
        if err.code != "connection_lost":
            raise
        raise connection_lost(step, (completed, total)) from None
    finally:
        if not conn.closed:
            reset_session(conn)
            conn.autocommit = False


def update_progress(conn: Connection, note: str, row_id: int, lock: RunnerLock) -> bool:
    """Write the progress note; return False (writing nothing) when the run no longer holds its lock."""
    with conn.cursor() as cur:
        cur.execute(tool_sql(UPDATE_PROGRESS), {"note": note, "id": row_id} | lock.guard())
        return cur.fetchone() is not None


def cancelled_before(step: Step, statement: Statement, done: int, total: int, conn: Connection,
                     row_id: int) -> StepFailed:
    """The failure of a statement-by-statement migration stopped by a signal before its next statement."""
    failure = StepFailed(step.version, step.migration.name, step.direction, "57014",
                         f"cancelled by a signal before statement {done + 1} was sent", statement.line,
                         step.migration.path, done, total)
    with conn.cursor() as cur:
        cur.execute(tool_sql(UPDATE_PROGRESS_UNGUARDED), (failure.describe(), row_id))
    return failure


def finish_progress(conn: Connection, step: Step, row_id: int, lock: RunnerLock, total: int,
                    supersede: bool) -> None:
    """Turn the progress row into the success row, unless the history already has one or the lock is gone."""
    finish = (SUPERSEDE_SUCCESS if supersede else "") + FINISH_PROGRESS
    try:
        with conn.cursor() as cur:
            cur.execute(tool_sql(finish), {**history_row(step), "id": row_id} | lock.guard())
            written = cur.fetchone() is not None
    except psycopg2.Error as err:
        if err.pgcode == UNIQUE_VIOLATION and err.diag.constraint_name == history_index_name():
            raise already_recorded(step) from None
        raise
    if not written:
        raise lock_lost(step, (total, total))


def reset_session(conn: Connection) -> None:
    """Undo what a statement-by-statement migration left in the session (its statements ran in autocommit)."""
    try:
        with conn.cursor() as cur:
            cur.execute(RESET_SESSION)
    except psycopg2.Error:
        pass  # the connection is gone or broken: nothing will run on it


def progress_note(done: int, total: int, running: Statement | None = None) -> str:
    note = f"interrupted: {done} of {total} statements completed"
    if running is not None:
        note += f"; statement {done + 1} (line {running.line}) was running and may have completed"
    return note + "; the runner stopped before finishing"


def run_one_statement(conn: Connection, step: Step, settings: RunSettings, statement: Statement,
                      lock: RunnerLock) -> StepFailed | None:
    """Run one statement outside a transaction under the migration's timeouts, which apply to it alone.

    Behind a pooler the timeouts are not set: a session SET would outlive the statement on a server connection
    that a transaction pool hands to other clients.
    """
    index_table = concurrent_index_table(statement)
    invalid_before = invalid_indexes_on(conn, index_table) if index_table else set()
    lock_ms, statement_ms = settings.for_migration(step.migration)
    try:
        with conn.cursor() as cur:
            if not lock.behind_pooler:
                cur.execute(SET_TIMEOUTS.format(lock=int(lock_ms), statement=int(statement_ms)))
            try:
                cur.execute(statement.sql)
            finally:
                if not conn.closed and not lock.behind_pooler:
                    cur.execute(RESET_TIMEOUTS)  # the history row and the next steps run without them
        failure = None
    except psycopg2.Error as err:
        failure = describe_failure(conn, err, step, statement.sql, statement.line)
    if index_table:
        failure = check_index_build(conn, step, statement, index_table, invalid_before, failure,
                                    lock.behind_pooler)
    return failure


def describe_failure(conn: Connection, err: psycopg2.Error, step: Step, sent: str, line_before: int) -> StepFailed:
    """Turn a server error into a StepFailed naming SQLSTATE, message and the file line; a lost link is fatal."""
    if is_connection_gone(conn, err):  # server gone or session terminated
        raise connection_lost(step) from None
    position = err.diag.statement_position
    line = line_before + sent[: int(position) - 1].count("\n") if position else None
    if line is not None and line < step.migration.section(step.direction)[1]:
        line = None  # the error was in our own SET prefix, not in the file
    message = err.diag.message_primary or first_line(str(err))
    return StepFailed(step.version, step.migration.name, step.direction, err.pgcode, message, line,
                      step.migration.path)
