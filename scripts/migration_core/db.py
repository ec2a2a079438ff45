"""All database access: connect, the history table, the advisory lock, running one step.

The only module that imports psycopg2. Driver errors are converted to MigrationError here, at the boundary.
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import psycopg2

from .config import describe_target
from .errors import ConfigError, Refused
from .model import HistoryRow, Step, StepFailed

APPLICATION_NAME = "migration-assistant"
# Advisory locks are per database, so one constant key serialises all runners of one database.
LOCK_KEY = 7_361_027_501

CREATE_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    id SERIAL PRIMARY KEY,
    version VARCHAR(64) NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    direction VARCHAR(8) NOT NULL,
    status VARCHAR(16) NOT NULL,
    error_message TEXT
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_schema_migrations_version_dir
    ON schema_migrations(version, direction)
    WHERE status = 'success';
"""
HISTORY_TABLE_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
SELECT_HISTORY = """
SELECT id, version, name, checksum, applied_at, direction, status, error_message
FROM schema_migrations WHERE status <> 'superseded' ORDER BY id
"""
# The old success row of the pair steps aside so the partial unique index admits the new one. Each statement
# below that starts with it is sent as one query: one round trip, run by the server as one implicit transaction.
SUPERSEDE_SUCCESS = """
UPDATE schema_migrations SET status = 'superseded'
WHERE version = %(version)s AND direction = %(direction)s AND status = 'success';
"""
RECORD_SUCCESS = SUPERSEDE_SUCCESS + """
INSERT INTO schema_migrations (version, name, checksum, direction, status)
VALUES (%(version)s, %(name)s, %(checksum)s, %(direction)s, 'success');
"""
# Baseline and accepted checksums are success rows whose error_message column carries a note saying so. An
# accepted checksum keeps the applied_at of the row it supersedes, so the application order does not change.
RECORD_NOTED_SUCCESS = SUPERSEDE_SUCCESS + """
INSERT INTO schema_migrations (version, name, checksum, applied_at, direction, status, error_message)
VALUES (%(version)s, %(name)s, %(checksum)s, COALESCE(%(applied_at)s, now()), 'up', 'success', %(note)s);
"""
RECORD_FAILURE = """
INSERT INTO schema_migrations (version, name, checksum, direction, status, error_message)
VALUES (%(version)s, %(name)s, %(checksum)s, %(direction)s, 'failed', %(error_message)s)
"""
# A non-transactional migration's row: written first as failed, kept current, turned into the success row.
START_PROGRESS = RECORD_FAILURE + " RETURNING id"
UPDATE_PROGRESS = "UPDATE schema_migrations SET error_message = %s WHERE id = %s"
FINISH_PROGRESS = SUPERSEDE_SUCCESS + """
UPDATE schema_migrations SET status = 'success', error_message = NULL, applied_at = now() WHERE id = %(id)s;
"""
RESET_TIMEOUTS = "RESET lock_timeout; RESET statement_timeout"
FIND_BLOCKERS = """
SELECT DISTINCT a.pid, a.application_name, a.state, extract(epoch FROM now() - a.query_start)::int,
       split_part(a.query, E'\\n', 1), l.mode, l.relation::regclass::text
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND l.relation = ANY (ARRAY(SELECT to_regclass(name) FROM unnest(%s::text[]) AS name))
ORDER BY a.pid
"""
TRY_ADVISORY_LOCK = "SELECT pg_try_advisory_lock(%s)"
ADVISORY_UNLOCK = "SELECT pg_advisory_unlock(%s)"

Connection = psycopg2.extensions.connection
T = TypeVar("T")


def connect(url: str, *, read_only: bool = False, label: str = "DB_URL") -> Connection:
    """Open a connection; every failure becomes a ConfigError that names no password.

    label names where the URL came from in messages: DB_URL, or the option that gave it (--against).
    """
    try:
        query = parse_qs(urlsplit(url).query)
        well_formed = url.startswith(("postgresql://", "postgres://"))
    except ValueError:
        well_formed = False
    if not well_formed:
        raise ConfigError(f"{label} is not a valid PostgreSQL URL.", code="bad_db_url",
                          hint="Use the form postgresql://user:password@host:5432/dbname.")
    options: dict[str, object] = {}
    if "application_name" not in query:
        options["application_name"] = APPLICATION_NAME
    if "connect_timeout" not in query:
        options["connect_timeout"] = 10
    if read_only:
        # Enforced by the server, set in the startup packet: plan and dry runs cannot write, at no extra round trip.
        # Added to the URL's own options, if any (the keyword wins over the URL's).
        options["options"] = " ".join([*query.get("options", []), "-c default_transaction_read_only=on"])
    try:
        conn = psycopg2.connect(url, **options)
    except psycopg2.OperationalError as err:
        raise classify_connect_error(str(err), url, label) from None
    except psycopg2.Error as err:
        raise ConfigError(f"{label} is malformed: {first_line(str(err))}", code="bad_db_url",
                          hint="Use the form postgresql://user:password@host:5432/dbname.") from None
    conn.autocommit = read_only  # read-only work needs no BEGIN round trip
    return conn


def classify_connect_error(text: str, url: str, label: str = "DB_URL") -> ConfigError:
    """Turn libpq's connect failure into a ConfigError with a stable code and a next step."""
    reason = text.strip().split("failed: ")[-1].split("\n")[0].replace("FATAL:  ", "")
    target = describe_target(url, label)
    if "authentication failed" in text or ("role" in text and "does not exist" in text) or "pg_hba.conf" in text:
        return ConfigError(f"Authentication to {target} failed: {reason}.", code="auth_failed",
                           hint=f"Check the user name and password in {label}.")
    if "database" in text and "does not exist" in text:
        return ConfigError(f"Cannot connect to {target}: {reason}.", code="db_not_found",
                           hint=f"Create the database (createdb) or fix the database name in {label}.")
    if "could not translate host name" in text:
        return ConfigError(f"Cannot reach PostgreSQL at {target}: unknown host ({reason}).", code="db_unreachable",
                           hint=f"Check the host name in {label} and your DNS or network.")
    if "invalid" in text or "unrecognized" in text or "missing" in text:
        return ConfigError(f"{label} is malformed: {reason}.", code="bad_db_url",
                           hint="Use the form postgresql://user:password@host:5432/dbname.")
    return ConfigError(f"Cannot reach PostgreSQL at {target}: {reason}.", code="db_unreachable",
                       hint=f"Check that the server is running and that host and port in {label} are right.")


def first_line(text: str) -> str:
    return text.strip().split("\n")[0]


def ensure_schema_table(conn: Connection) -> None:
    """Create schema_migrations and its partial unique index if they do not exist."""
    with conn.cursor() as cur:
        cur.execute(CREATE_HISTORY_TABLE)
    conn.commit()


def load_history(conn: Connection) -> list[HistoryRow] | None:
    """Return every non-superseded history row in id order, or None when there is no history table."""
    with conn.cursor() as cur:
        cur.execute(HISTORY_TABLE_EXISTS)
        if not cur.fetchone()[0]:
            return None
        cur.execute(SELECT_HISTORY)
        rows = [HistoryRow(*row) for row in cur.fetchall()]
    if not conn.autocommit:
        conn.commit()
    return rows


@contextmanager
def advisory_lock(conn: Connection, timeout_s: float) -> Iterator[None]:
    """Hold the migration lock for the block; wait up to timeout_s, then refuse."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    with conn.cursor() as cur:
        while True:
            cur.execute(TRY_ADVISORY_LOCK, (LOCK_KEY,))
            if cur.fetchone()[0]:
                break
            # End the try's transaction before waiting: an idle transaction holding a snapshot would make the
            # running runner's CREATE INDEX CONCURRENTLY wait for us, while we wait for it.
            conn.rollback()
            if time.monotonic() >= deadline:
                raise Refused(f"Another migration run holds the lock on this database (waited {timeout_s:g}s).",
                              code="lock_timeout",
                              hint="Wait for the other run to finish, then run the command again "
                                   "(or raise --lock-timeout).")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    conn.commit()
    try:
        yield
    finally:
        if not conn.closed:
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute(ADVISORY_UNLOCK, (LOCK_KEY,))
            conn.commit()


@contextmanager
def cancel_on_signal(conn: Connection) -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a server-side cancel, so Ctrl-C stops a long migration instead of waiting."""
    received: list[int] = []

    def cancel(signum: int, _frame: object) -> None:
        received.append(signum)
        conn.cancel()  # the running statement fails with 57014 and its transaction rolls back

    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_in_worker(work: Callable[[], T]) -> T:
    """Run work in a thread while the main thread waits, so signal handlers run at once.

    libpq blocks in C, where Python cannot run a handler; a worker keeps queries at full blocking speed while the
    main thread, waiting in short joins, can cancel them (psycopg2's cancel() is safe from another thread).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as err:  # handed to the main thread, which raises it
            outcome["error"] = err

    worker = threading.Thread(target=target, name="migration-runner", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]


def record_failure(conn: Connection, row: dict[str, str], failure: StepFailed) -> None:
    """Roll the failed migration back, then write its failed row in a transaction of its own."""
    try:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(RECORD_FAILURE, {**row, "error_message": failure.describe()})
        conn.commit()
    except psycopg2.Error:
        if conn.closed:
            raise ConfigError("The connection to PostgreSQL was lost while recording a failed migration.",
                              code="connection_lost",
                              hint="Run python scripts/plan_migrations.py to check the state.") from None
        raise


def record_noted_successes(conn: Connection, rows: list[dict[str, str]]) -> None:
    """Write success rows that record a migration without running it (baseline, accepted checksum), atomically."""
    with conn.cursor() as cur:
        for row in rows:
            cur.execute(RECORD_NOTED_SUCCESS, {**row, "direction": "up"})
    conn.commit()


def connection_lost(step: Step, progress: tuple[int, int] | None = None) -> ConfigError:
    """Say what a lost connection did to the running step: all undone, or (statement by statement) how far it got."""
    if progress is None:
        effect = "its transaction was rolled back by the server, so nothing of it was applied."
    else:
        effect = (f"it ran statement by statement: {progress[0]} of {progress[1]} statements had completed and "
                  "stay applied (the one running was rolled back).")
    return ConfigError(
        f"The connection to PostgreSQL was lost while running {step.version} ({step.direction}); {effect}",
        code="connection_lost",
        hint="Check the server, then run python scripts/plan_migrations.py and run the command again.")
