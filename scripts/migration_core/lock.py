"""The runner lock, and signals that cancel what the server is doing.

The lock lives on a connection of its own that never runs user SQL, so nothing in a migration can release it
(pg_advisory_unlock_all, DISCARD ALL). It is a transaction-level advisory lock held in an open transaction: that
holds in PgBouncer's transaction pooling too (the open transaction pins one server connection), where a
session-level lock would be taken on one server connection and looked for on another. The same transaction also
holds an exclusive lock on a random key of its own run (the run key): the work connection checks that the lock is
still held by trying to share that key (db.LOCK_STILL_HELD), which fails exactly while the lock's transaction lives.
"""
from __future__ import annotations

import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import Refused

# Advisory locks are per database, so one constant key serialises all runners of one database.
LOCK_KEY = 7_361_027_501
# A bigint key shows in pg_locks as (classid, objid) = its high and low 32 bits, objsubid 1.
LOCK_CLASSID, LOCK_OBJID = LOCK_KEY >> 32, LOCK_KEY & 0xFFFF_FFFF
# idle_in_transaction_session_timeout would end the lock's idle transaction (and so the lock) during a long
# migration; turned off for this transaction only. pg_backend_pid() is the real server process, which behind a
# pooler differs from the one libpq was told at connect time.
TRY_LOCK = """
SET LOCAL idle_in_transaction_session_timeout = 0;
SELECT pg_catalog.pg_try_advisory_xact_lock(%s), pg_catalog.pg_backend_pid();
"""
# The run key: taken in the runner lock's transaction, so it lives and ends with the lock (also behind a pooler, where
# a session-level lock would stay on the pooled server connection after the run).
TAKE_RUN_KEY = "SELECT pg_catalog.pg_try_advisory_xact_lock(%s)"
RUN_KEY_TRIES = 8
NO_TRANSACTION_TIMEOUT = "SET LOCAL transaction_timeout = 0;"  # PostgreSQL 17+: it would end the lock's transaction
FIND_LOCK_HOLDER = """
SELECT a.pid, a.application_name, a.client_addr::text, a.state, (pg_catalog.now() - a.xact_start)::text,
       pg_catalog.to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
       pg_catalog.to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
"""
# A runner killed while the server ran its statement leaves that statement running (the server notices the dead
# client only when it next talks to it), while the lock, on its idle connection, is released at once. Such an
# orphan can still commit a statement of a `-- TRANSACTION: none` migration: wait for it as for a held lock.
FIND_ORPHANS = """
SELECT pid, state, (pg_catalog.now() - query_start)::text, pg_catalog.left(query, 80) FROM pg_catalog.pg_stat_activity
WHERE datname = pg_catalog.current_database() AND application_name = %s AND state = 'active'
  AND pid <> pg_catalog.pg_backend_pid()
"""
T = TypeVar("T")


@dataclass(frozen=True)
class RunnerLock:
    """The held lock: the server process holding it, whether a pooler stands between us and the server, and the
    run key held with it."""

    pid: int
    behind_pooler: bool
    run_key: int

    def guard(self) -> dict[str, int]:
        """Return the parameters of db.LOCK_STILL_HELD: history rows are written only while the lock is held."""
        return {"run_key": self.run_key}


@contextmanager
def runner_lock(lock_conn: Any, timeout_s: float, work_application_name: str | None,
                waiting: Callable[[str], None] = lambda _: None) -> Iterator[RunnerLock]:
    """Hold the runner lock for the block on lock_conn; wait up to timeout_s, then refuse naming the holder.

    Orphaned statements of a killed runner (connections named work_application_name still active) count as
    holders too; None when the URL names the connection itself, which other clients may share. waiting(text) is
    told once, when the first try fails, who holds the lock and how long this run will wait.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    told = False
    with lock_conn.cursor() as cur:
        while True:
            cur.execute((NO_TRANSACTION_TIMEOUT if lock_conn.server_version >= 170000 else "") + TRY_LOCK,
                        (LOCK_KEY,))
            got, pid = cur.fetchone()
            expired = time.monotonic() >= deadline
            holder = "" if got or not expired else describe_holder(cur)  # named once, in the refusal
            if got and work_application_name:
                cur.execute(FIND_ORPHANS, (work_application_name,))
                holder = describe_orphans(cur.fetchall())
            if got and not holder:
                break
            if not told and not expired and timeout_s > 0:  # said once: the holder, looked up this one time
                holder_now = holder or describe_holder(cur)
                told = True
            else:
                holder_now = ""
            # End the try's transaction (releasing the lock if we got it) before waiting.
            lock_conn.rollback()
            if holder_now:
                waiting(f"Waiting up to {timeout_s:g}s for the runner lock held by another run: {holder_now} ...")
            if expired:
                raise Refused(f"Another migration run holds the lock on this database (waited {timeout_s:g}s): "
                              f"{holder}.", code="lock_timeout",
                              hint="Wait for the other run to finish, then run the command again "
                                   "(or raise --lock-timeout).")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.5)
    try:
        with lock_conn.cursor() as cur:
            run_key = take_run_key(cur)
        yield RunnerLock(pid, behind_pooler=pid != lock_conn.get_backend_pid(), run_key=run_key)
    finally:
        if not lock_conn.closed:
            try:
                lock_conn.rollback()  # ends the transaction, and with it the lock
            except Exception:  # the lock connection died: the server released the lock already
                pass


def take_run_key(cur: Any) -> int:
    """Take an exclusive lock on a fresh random key in the runner lock's transaction; return the key.

    A key some other session happens to hold (1 in 2**64) is skipped for another one.
    """
    for _ in range(RUN_KEY_TRIES):
        key = secrets.randbits(64) - (1 << 63)  # any bigint
        if key != LOCK_KEY:
            cur.execute(TAKE_RUN_KEY, (key,))
            if cur.fetchone()[0]:
                return key
    raise Refused(f"Could not take a run key: {RUN_KEY_TRIES} random advisory lock keys were all held by other "
                  "sessions.", code="lock_timeout", hint="Check what takes advisory locks on this database, "
                                                         "then run the command again.")


def describe_orphans(rows: list[tuple[Any, ...]]) -> str:
    return "; ".join(f"pid {pid} is still running a statement of a runner that is gone ({age.split('.')[0]}: "
                     f"{query.strip()!r}); wait for it or end it with SELECT pg_terminate_backend({pid})"
                     for pid, _state, age, query in rows)


def describe_holder(cur: Any) -> str:
    """Return who holds the runner lock: pid, application, client, state, and how long its run has been going."""
    cur.execute(FIND_LOCK_HOLDER, (LOCK_CLASSID, LOCK_OBJID))
    rows = cur.fetchall()
    if not rows:
        return "the holder finished just now; run the command again"
    return "; ".join(f"pid {pid} ({app or 'no application_name'}, from {addr or 'local socket'}, {state}, "
                     + (f"running since {since}, for {age.split('.')[0]})" if since and age else
                        f"connected since {connected})")  # a session-level lock: no transaction to date it by
                     for pid, app, addr, state, age, since, connected in rows)


@contextmanager
def handling_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Send SIGINT and SIGTERM to handler inside the block; the previous handlers come back after it."""
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


@contextmanager
def cancel_on_signal(conns: list[Any]) -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a server-side cancel, so Ctrl-C stops a long query instead of waiting for it."""
    received: list[int] = []

    def cancel(signum: int, _frame: object) -> None:
        received.append(signum)
        for conn in conns:
            if not conn.closed:
                conn.cancel()  # the running statement fails with 57014 and its transaction rolls back

    with handling_signals(cancel):
        yield received


def run_in_worker(work: Callable[[], T], between_waits: Callable[[], None] = lambda: None,
                  wait_s: float = 0.1) -> T:
    """Run work in a thread while the main thread waits, so signal handlers run at once.

    libpq blocks in C, where Python cannot run a handler; a worker keeps queries at full blocking speed while the
    main thread, waiting in short joins (calling between_waits after each), can cancel them (psycopg2's cancel()
    is safe from another thread).
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
        worker.join(wait_s)
        if worker.is_alive():
            between_waits()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]
