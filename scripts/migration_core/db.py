"""All database access but running a step: connect, the history tables, tool-statement errors.

With runner.py and lock.py, the only modules that import psycopg2. Driver errors are converted to MigrationError here,
at the boundary. Every statement of the tool names its schema ({history}, {snapshots}, pg_catalog functions):
migration SQL may change search_path, role and settings, and the tool must not follow (see reset_session).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg2
from psycopg2 import sql

from . import config, history_shape
from .config import describe_target
from .errors import ConfigError, MigrationError, Refused, ServerError
from .model import HistoryRow, Step

# The connection that runs migrations; the lock connection adds "-lock", read-only ones (plan, dry runs) "-read".
APPLICATION_NAME = "migration-assistant"
MAX_NOTICES = 1000  # per step: a migration that raises a million notices must not exhaust memory

CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {schema}"
CREATE_HISTORY_TABLE = """
CREATE TABLE {history} (
    id SERIAL PRIMARY KEY,
    version VARCHAR(64) NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now(),
    direction VARCHAR(8) NOT NULL,
    status VARCHAR(16) NOT NULL,
    error_message TEXT
);
CREATE UNIQUE INDEX {history_index} ON {history} (version, direction) WHERE status = 'success';
"""
# Existence is checked first and the table created only when missing: a role that may write the history but does
# not own it cannot run CREATE ... IF NOT EXISTS on an existing table ("must be owner").
TABLE_EXISTS = "SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(%s) || '.' || pg_catalog.quote_ident(%s))"
SCHEMA_EXISTS = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s"
SELECT_HISTORY = """
SELECT id, version, name, checksum, applied_at, direction, status, error_message
FROM {history} WHERE status <> 'superseded' ORDER BY id
"""
# A success row steps aside for a new one of its pair only when the version's newest success is the other
# direction (applied, then rolled back: it may be applied again). A version already applied (or already rolled back)
# keeps its row, so the INSERT below hits the partial unique index: a double apply is refused, never recorded. A run
# sends it only for a pair that had a success row in the history it read under the lock: without one there is
# nothing to supersede, and a row written by hand since then is refused by the index as well.
SUPERSEDE_SUCCESS = """
UPDATE {history} SET status = 'superseded'
WHERE version = %(version)s AND direction = %(direction)s AND status = 'success'
  AND (SELECT h.direction FROM {history} h WHERE h.version = %(version)s AND h.status = 'success'
       ORDER BY h.id DESC LIMIT 1) <> %(direction)s;
"""
# True while the run still holds the runner lock: the statements guarded by it write nothing once the lock is lost
# (the success row fails instead, runner.py), and the caller rolls the migration back or sends nothing more. The
# lock's transaction (lock.py) also holds the run key exclusively, so a try to share the key fails exactly while that
# transaction lives; once it has ended (lock connection ended by anyone, idle timeout, network) the try succeeds, and
# its shared lock goes with the statement's transaction. It never waits, costs less than a pg_locks read, and unlike
# a pid check cannot be passed by a new session that got the old pid. The work connection's own locks never count;
# only another session holding the key fools it: a migration that ends the lock connection and takes the key from a
# third one (dblink), which could as well write the history directly. A sub-SELECT: tried once, not once per row.
LOCK_STILL_HELD = " (SELECT NOT pg_catalog.pg_try_advisory_xact_lock_shared(%(run_key)s)) "
# Baseline rows get distinct, ordered times (one microsecond apart), and an accepted checksum keeps the time of the
# row it replaces, so the application order never changes.
RECORD_NOTED_SUCCESS = """
INSERT INTO {history} (version, name, checksum, applied_at, direction, status, error_message)
VALUES (%(version)s, %(name)s, %(checksum)s,
        COALESCE(%(applied_at)s, pg_catalog.now() + %(position)s * interval '1 microsecond'), 'up', 'success', %(note)s)
"""
SUPERSEDE_ACCEPTED = """
UPDATE {history} SET status = 'superseded' WHERE version = %(version)s AND direction = 'up' AND status = 'success'
"""
RECORD_FAILURE = """
INSERT INTO {history} (version, name, checksum, direction, status, error_message)
VALUES (%(version)s, %(name)s, %(checksum)s, %(direction)s, 'failed', %(error_message)s)
"""
# apply --forget-failed: acknowledges the failed rows of the version before it (plan stops listing them).
RECORD_FORGOTTEN = """
INSERT INTO {history} (version, name, checksum, direction, status, error_message)
VALUES (%(version)s, %(name)s, %(checksum)s, %(direction)s, 'forgotten', %(note)s)
"""
# A non-transactional migration's row: written first as failed, kept current, turned into the success row. Its
# statements commit one by one, so the guards run before the first: the lock is held, and the version is not
# already in the state this step would put it in (applied for up, rolled back or never applied for down).
START_PROGRESS = """
INSERT INTO {history} (version, name, checksum, direction, status, error_message)
SELECT %(version)s, %(name)s, %(checksum)s, %(direction)s, 'failed', %(error_message)s
WHERE COALESCE((SELECT h.direction FROM {history} h WHERE h.version = %(version)s AND h.status = 'success'
                ORDER BY h.id DESC LIMIT 1), 'down') <> %(direction)s
  AND """ + LOCK_STILL_HELD + " RETURNING id"
UPDATE_PROGRESS_UNGUARDED = "UPDATE {history} SET error_message = %s WHERE id = %s"
UPDATE_PROGRESS = ("UPDATE {history} SET error_message = %(note)s WHERE id = %(id)s AND " + LOCK_STILL_HELD
                   + " RETURNING id")
# Sent after SUPERSEDE_SUCCESS when the history read under the lock has a success row of the pair (runner.py).
FINISH_PROGRESS = """
UPDATE {history} SET status = 'success', error_message = NULL, applied_at = pg_catalog.now()
WHERE id = %(id)s AND """ + LOCK_STILL_HELD + " RETURNING id"
# Everything a migration can leave in its session, undone before the tool writes its row or runs the next migration:
# each migration runs as if in a fresh session, and nothing leaks to other clients through a transaction pool.
RESET_SESSION = """
CLOSE ALL; RESET ALL; RESET SESSION AUTHORIZATION; RESET ROLE; DISCARD TEMP; DISCARD SEQUENCES; DEALLOCATE ALL;
UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all();
"""
SET_LOCAL_TIMEOUTS = "SET LOCAL lock_timeout = {lock}; SET LOCAL statement_timeout = {statement}"
SELECT_INVALID_INDEXES = """
SELECT n.nspname, t.relname, c.relname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast_)?temp_'
ORDER BY 1, 2, 3
"""
FIND_EXCLUSIVE_HOLDERS = """
SELECT DISTINCT a.pid, a.application_name, a.state, l.mode, l.relation::pg_catalog.regclass::text
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
ORDER BY a.pid LIMIT 5
"""

Connection = psycopg2.extensions.connection
CONNECTION_GONE = ("57P",)  # terminated, shut down (08xxx may come from a migration's own dblink/postgres_fdw)


def tool_sql(template: str, schema: str | None = None) -> sql.Composed:
    """Return one of the tool's statements with the history schema's tables filled in, quoted."""
    return named_tool_sql(template, schema or config.history_schema(), config.history_table())


@lru_cache(maxsize=None)
def named_tool_sql(template: str, schema: str, table: str) -> sql.Composed:
    """tool_sql for given names (--history-schema, --history-table), cached: plan builds the same few each run."""
    return sql.SQL(template).format(schema=sql.Identifier(schema),
                                    history=sql.Identifier(schema, table),
                                    snapshots=sql.Identifier(schema, table + config.SNAPSHOT_SUFFIX),
                                    history_index=sql.Identifier(history_index_name(table)))


def history_index_name(table: str | None = None) -> str:
    """Return the name of the partial unique index that refuses a double record: one per history table."""
    return f"idx_{table or config.history_table()}_version_dir"


def connect(url: str, *, read_only: bool = False, label: str = "DB_URL", role: str = "") -> Connection:
    """Open a connection; every failure becomes a ConfigError that names no password.

    No libpq startup `options` are sent (PgBouncer rejects them): read-only work runs in BEGIN READ ONLY
    transactions instead, which the server enforces. label names where the URL came from in messages.
    """
    url = config.normalise_db_url(url, label)
    query = config.parse_db_url(url, label).query
    keywords: dict[str, object] = {}
    if not config.query_values(query, "application_name"):
        keywords["application_name"] = APPLICATION_NAME + (role or ("-read" if read_only else ""))
    if not config.query_values(query, "connect_timeout"):
        keywords["connect_timeout"] = 10
    try:
        conn = psycopg2.connect(url, **keywords)
    except psycopg2.OperationalError as err:
        raise classify_connect_error(str(err), url, label) from None
    except psycopg2.Error as err:
        raise ConfigError(f"{label} is malformed: {first_line(str(err))}", code="bad_db_url",
                          hint="Use the form postgresql://user:password@host:5432/dbname.") from None
    if read_only:
        conn.set_session(readonly=True)  # psycopg2 opens each transaction with BEGIN READ ONLY
    conn.notices = deque(maxlen=MAX_NOTICES)
    return conn


def own_application_name(conn: Connection) -> str | None:
    """Return the name the tool gave a connection in pg_stat_activity; None when the URL set its own."""
    name = conn.get_dsn_parameters().get("application_name")
    return name if name == APPLICATION_NAME else None


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


def is_connection_gone(conn: Connection, err: psycopg2.Error) -> bool:
    """Return whether an error means our session is gone (terminated, server stopped, network lost)."""
    return bool(conn.closed) or (err.pgcode or "").startswith(CONNECTION_GONE) or (
        err.pgcode is None and isinstance(err, psycopg2.OperationalError))


def server_failure(conn: Connection, err: psycopg2.Error, doing: str) -> MigrationError:
    """Describe a failure of one of the tool's own statements: what it is, its SQLSTATE, and what to do."""
    state = err.pgcode
    if is_connection_gone(conn, err):
        return ConfigError(f"The connection to PostgreSQL was lost while {doing}.", code="connection_lost",
                           hint="Check the server, then run python scripts/plan_migrations.py to see the state.")
    message = f"{(err.diag.message_primary or first_line(str(err))).rstrip('.')} (SQLSTATE {state}, while {doing})."
    schema = config.history_schema()
    if state == "42501":
        return ConfigError(f"Permission denied: {message}", code="permission_denied", sqlstate=state,
                           hint=f"Grant the role SELECT, INSERT, UPDATE on {schema}.{config.history_table()} and "
                                f"{schema}.{config.snapshot_table()} and USAGE on their sequences, or use their owner.")
    if state == "25006":
        return ConfigError(f"The server is read-only: {message}", code="read_only", sqlstate=state,
                           hint="Point DB_URL at the primary (not a replica), and check default_transaction_read_only "
                                "for this role and database.")
    if state == "57014":
        return ServerError(f"A statement of the tool was cancelled: {message}", code="statement_timeout",
                           sqlstate=state, hint="Check statement_timeout in DB_URL's options and the role's and "
                                                "database's settings; raise or unset it for migrations.")
    if state == "55P03":
        return ServerError(f"A statement of the tool waited too long for a lock: {message}", code="lock_not_available",
                           sqlstate=state, hint="Another session holds a lock the tool needs; wait for it, then run "
                                                "the command again.")
    return ServerError(f"The server refused a statement of the tool: {message}", sqlstate=state,
                       hint="Fix the cause the server names, then run python scripts/plan_migrations.py.")


@contextmanager
def server_errors(conn: Connection, doing: str, details: Callable[[], dict[str, Any]] = dict) -> Iterator[None]:
    """Turn a driver error raised in the block into the MigrationError it stands for, with partial results."""
    try:
        yield
    except psycopg2.Error as err:
        error = server_failure(conn, err, doing)
        error.details.update(details())
        raise error from None
    except MigrationError as err:
        for key, value in details().items():
            err.details.setdefault(key, value)
        raise


def set_local_timeouts(conn: Connection, lock_ms: int, statement_ms: int) -> None:
    """Bound every query of the current transaction: a read never waits behind a table lock without end."""
    with conn.cursor() as cur:
        cur.execute(SET_LOCAL_TIMEOUTS.format(lock=int(lock_ms), statement=int(statement_ms)))


def history_table_exists(conn: Connection, table: str | None = None) -> bool:
    with conn.cursor() as cur:
        cur.execute(TABLE_EXISTS, (config.history_schema(), table or config.history_table()))
        return cur.fetchone()[0] is not None


def ensure_schema_table(conn: Connection) -> None:
    """Create the history schema, table and partial unique index when missing, and commit; refuse (changing
    nothing) when another tool's history is in its place (history_shape)."""
    if not history_shape.check_history_place(conn):
        create_history_table(conn)
    conn.commit()


def create_history_table(conn: Connection) -> None:
    """Create the history schema (when missing), table and index; no check, no commit (adoption calls it in its
    own transaction, after moving the other tool's table aside)."""
    with conn.cursor() as cur:
        if not schema_exists(cur):
            cur.execute(tool_sql(CREATE_SCHEMA))
        cur.execute(tool_sql(CREATE_HISTORY_TABLE))


def schema_exists(cur: Any) -> bool:
    cur.execute(SCHEMA_EXISTS, (config.history_schema(),))
    return cur.fetchone() is not None


def load_history(conn: Connection) -> list[HistoryRow] | None:
    """Return every non-superseded history row in id order, or None when there is no history table.

    Reads in the caller's transaction (a read-only one for plan), which the caller ends. Another tool's history in
    its place is refused (foreign_history_table); that check is the existence check, so it costs no round trip.
    """
    if not history_shape.check_history_place(conn):
        return None
    with conn.cursor() as cur:
        cur.execute(tool_sql(SELECT_HISTORY))
        return [HistoryRow(*row) for row in cur.fetchall()]


def find_invalid_indexes(conn: Connection) -> list[dict[str, str]]:
    """Return the user's INVALID indexes (left by a failed CREATE INDEX CONCURRENTLY): schema, table, index."""
    with conn.cursor() as cur:
        cur.execute(SELECT_INVALID_INDEXES)
        return [{"schema": s, "table": t, "index": i} for s, t, i in cur.fetchall()]


def describe_exclusive_holders(conn: Connection) -> str:
    """Name the sessions holding ACCESS EXCLUSIVE locks in this database (what a catalog read waits behind)."""
    with conn.cursor() as cur:
        cur.execute(FIND_EXCLUSIVE_HOLDERS)
        rows = cur.fetchall()
    if not rows:
        return "the session holding it was gone by the time it was looked up"
    return "; ".join(f"pid {pid} ({app or 'no application_name'}, {state}) holds {mode} on {relation}"
                     for pid, app, state, mode, relation in rows)


def record_failure(conn: Connection, row: dict[str, str], description: str) -> None:
    """Roll the failed migration back, then write its failed row in a transaction of its own."""
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(tool_sql(RECORD_FAILURE), {**row, "error_message": description})
    conn.commit()


def record_forgotten(conn: Connection, row: dict[str, str]) -> None:
    """Append the row that acknowledges a version's failed attempts (apply --forget-failed), and commit."""
    with conn.cursor() as cur:
        cur.execute(tool_sql(RECORD_FORGOTTEN), row)
    conn.commit()


def insert_noted_successes(conn: Connection, rows: list[dict[str, Any]], accepted: bool) -> None:
    """Write success rows that record a migration without running it (baseline, accepted checksum), in conn's
    transaction (the caller commits)."""
    with conn.cursor() as cur:
        for position, row in enumerate(rows):
            # An accepted checksum replaces the applied row; a baseline row replaces only a rolled-back one.
            cur.execute(tool_sql(SUPERSEDE_ACCEPTED if accepted else SUPERSEDE_SUCCESS), {**row, "direction": "up"})
            cur.execute(tool_sql(RECORD_NOTED_SUCCESS), {**row, "position": position})


def already_recorded(step: Step) -> Refused:
    """The refusal when the history already has the row this run was about to write (another run wrote it)."""
    state = "applied" if step.direction == "up" else "rolled back"
    return Refused(f"Migration {step.version} is already recorded as {state} (by another run or by hand); this "
                   f"run's {step.direction} of it was not recorded.", code="already_recorded",
                   hint="Run python scripts/plan_migrations.py to see the state before running anything again.")


def take_notices(conn: Connection) -> list[str]:
    """Return and clear the NOTICE/WARNING messages the server sent since the last call."""
    notices = [n.rstrip("\n") for n in conn.notices]
    conn.notices.clear()
    return notices


def connection_lost(step: Step, progress: tuple[int, int] | None = None) -> ConfigError:
    """Say what a lost connection did to the running step: all undone, or (statement by statement) how far it got."""
    if progress is None:
        effect = "its transaction was rolled back by the server, so nothing of it was applied."
    else:
        done, total = progress
        effect = (f"it ran statement by statement: {done} of {total} statements had completed and stay applied"
                  + (f"; statement {done + 1} was running and may have completed." if done < total else "."))
    return ConfigError(
        f"The connection to PostgreSQL was lost while running {step.version} ({step.direction}); {effect}",
        code="connection_lost",
        hint="Check the server, then run python scripts/plan_migrations.py and run the command again.")
