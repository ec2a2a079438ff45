"""Behind PgBouncer (issue 9): every command works in session and in transaction pooling, parallel runners still
apply each migration once, and a migration's session settings never reach the other clients of the pool.

PgBouncer runs as most installs configure it (tests/pgbouncer.py): it refuses the startup `options` parameter, and in
transaction pooling consecutive transactions of one client may run on different server connections.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import SCRIPTS, history, migration, query, tables
from pgbouncer import pgbouncer

A = "20260101_000000_create_a"
B = "20260102_000000_create_b"
RUNNERS = 5
COUNT = 20
VERSIONS = [f"20260201_{i:06d}_create_t{i:02d}" for i in range(COUNT)]
CLIENTS = 8  # more than the server connections one apply leaves in the pool, so every one of them is looked at
ROUNDS = 3


@pytest.fixture(scope="module")
def session_pooler(pg_server: str) -> Iterator[Callable[[str], str]]:
    """Yield a function turning a database URL into the same database through PgBouncer in session pooling."""
    with pgbouncer(pg_server, "session") as bouncer:
        yield bouncer.url


@pytest.fixture(scope="module")
def transaction_pooler(pg_server: str) -> Iterator[Callable[[str], str]]:
    """Yield a function turning a database URL into the same database through PgBouncer in transaction pooling."""
    with pgbouncer(pg_server, "transaction") as bouncer:
        yield bouncer.url


@pytest.fixture(params=["session", "transaction"])
def pooled(request: pytest.FixtureRequest, db_url: str) -> str:
    """Return the URL of this test's fresh database through PgBouncer, once per pool mode."""
    return request.getfixturevalue(f"{request.param}_pooler")(db_url)


def run_json(run_script, name: str, directory: Path, url: str, *args: str) -> dict:
    """Run a script with --json through `url`, assert exit 0, and return its document."""
    result = run_script(name, "--migrations-dir", str(directory), "--json", *args, db_url=url, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def start_apply(url: str, directory: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--migrations-dir", str(directory),
                             "--json", "--lock-timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


def wait_all(runners: list[subprocess.Popen[str]], timeout: float = 90) -> list[tuple[str, str]]:
    """Return (stdout, stderr) of every runner; kill them all if any overruns, so none outlives the test."""
    try:
        return [runner.communicate(timeout=timeout) for runner in runners]
    finally:
        for runner in runners:
            if runner.poll() is None:
                runner.kill()
                runner.wait(timeout=10)


def index_state(url: str, index: str) -> list[tuple[bool, bool]]:
    """[(valid, ready)] of the index, [] when it does not exist."""
    return query(url, "SELECT i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                      "WHERE c.relname = %s", (index,))


def settings_seen_by_clients(url: str) -> list[tuple[int, str, str]]:
    """Open CLIENTS connections at once, each in its own transaction, and return (backend pid, search_path,
    statement_timeout) from each: concurrent transactions take every idle server connection of the pool."""
    conns = [psycopg2.connect(url) for _ in range(CLIENTS)]
    try:
        seen = []
        for conn in conns:
            with conn.cursor() as cur:  # psycopg2 opens a transaction and keeps it open until rollback
                cur.execute("SELECT pg_backend_pid(), current_setting('search_path'), "
                            "current_setting('statement_timeout')")
                seen.append(cur.fetchone())
        for conn in conns:
            conn.rollback()
        return seen
    finally:
        for conn in conns:
            conn.close()


def test_plan_apply_by_plan_id_rollback_and_generate_work_through_pgbouncer(pooled, db_url, migrations_dir,
                                                                            run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
                                f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")})

    planned = run_json(run_script, "plan", directory, pooled)
    assert [p["version"] for p in planned["pending"]] == [A, B]
    preview = run_json(run_script, "apply", directory, pooled, "--dry-run")
    assert preview["plan_id"] == planned["plan_id"]
    assert history(db_url) == [] and tables(db_url) == set()  # neither plan nor the dry run wrote anything

    assert run_json(run_script, "apply", directory, pooled, "--plan-id", preview["plan_id"])["applied"] == [A, B]
    replanned = run_json(run_script, "plan", directory, pooled)
    assert replanned["pending"] == [] and [a["version"] for a in replanned["applied"]] == [A, B]
    assert run_json(run_script, "rollback", directory, pooled)["rolled_back"] == [B]

    generated = run_json(run_script, "generate", directory, pooled, "--name", "create_c",
                         "--up", "CREATE TABLE c (id int);", "--down", "DROP TABLE c;")
    c = generated["version"]
    assert run_json(run_script, "apply", directory, pooled)["applied"] == [B, c]

    final = run_json(run_script, "plan", directory, pooled)
    assert final["pending"] == [] and [a["version"] for a in final["applied"]] == [A, B, c]
    assert [(v, d) for v, d, _ in history(db_url)] == [(A, "up"), (B, "up"), (B, "down"), (B, "up"), (c, "up")]
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}


def test_a_non_transactional_migration_builds_a_valid_index_concurrently_through_pgbouncer(
        pooled, db_url, migrations_dir, run_script):
    index = "20260102_000000_index_items"
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE items (id int);\nINSERT INTO items SELECT generate_series(1, 1000);",
                              "DROP TABLE items;"),
        f"{index}.sql": "-- TRANSACTION: none\n" + migration(
            "CREATE INDEX CONCURRENTLY idx_items_id ON items (id);", "DROP INDEX CONCURRENTLY idx_items_id;")})

    assert run_json(run_script, "apply", directory, pooled)["applied"] == [A, index]

    assert index_state(db_url, "idx_items_id") == [(True, True)]
    assert history(db_url) == [(A, "up", "success"), (index, "up", "success")]


def test_parallel_runners_through_pgbouncer_apply_every_migration_exactly_once(pooled, db_url, migrations_dir,
                                                                              tmp_path):
    directory = migrations_dir({f"{v}.sql": migration(f"CREATE TABLE t{i:02d} (id int);\nSELECT pg_sleep(0.02);",
                                                      f"DROP TABLE t{i:02d};") for i, v in enumerate(VERSIONS)})

    runners = [start_apply(pooled, directory, tmp_path) for _ in range(RUNNERS)]
    outputs = wait_all(runners)

    documents = []
    for runner, (stdout, stderr) in zip(runners, outputs):
        assert runner.returncode == 0, stdout + stderr
        document = json.loads(stdout)
        assert document["ok"] is True and document["failed"] is None, stdout + stderr
        documents.append(document)
    assert sorted(v for d in documents for v in d["applied"]) == VERSIONS  # each version applied by one runner
    assert history(db_url) == [(v, "up", "success") for v in VERSIONS]
    assert tables(db_url) == {f"t{i:02d}" for i in range(COUNT)} | {"schema_migrations"}


def test_a_migrations_session_settings_never_reach_other_clients_of_the_pool(pooled, db_url, migrations_dir,
                                                                             run_script):
    defaults = query(db_url, "SELECT current_setting('search_path'), current_setting('statement_timeout')")[0]
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE ran_on AS SELECT pg_backend_pid() AS pid;\n"
                              "SET search_path TO other;\nSET statement_timeout = 1;"),
        f"{B}.sql": migration("CREATE TABLE b AS SELECT current_setting('search_path') AS search_path, "
                              "current_setting('statement_timeout') AS statement_timeout;")})

    assert run_json(run_script, "apply", directory, pooled)["applied"] == [A, B]

    assert query(db_url, "SELECT search_path, statement_timeout FROM b") == [defaults]  # the next migration too
    ran_on = query(db_url, "SELECT pid FROM ran_on")[0][0]
    for _ in range(ROUNDS):
        seen = settings_seen_by_clients(pooled)
        assert ran_on in {pid for pid, _, _ in seen}, "the migration's server connection was not looked at"
        assert {(path, timeout) for _, path, timeout in seen} == {defaults}
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]


def test_session_state_in_a_statement_by_statement_migration_is_refused_behind_a_pooler(
        pooled, db_url, migrations_dir, run_script):
    # Each statement of such a migration commits on a server connection the pool may hand to another client, and
    # the reset after it may run on another one: a SET ROLE there would reach other clients. Refused before
    # anything runs; through a direct URL the same file applies.
    directory = migrations_dir({f"{A}.sql": "-- TRANSACTION: none\n" + migration(
        "CREATE TABLE a (id int);\nSET search_path TO public;\nCREATE INDEX CONCURRENTLY idx_a ON a (id);",
        "DROP TABLE a;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=pooled)

    doc = json.loads(result.stdout)
    assert result.returncode == 3 and doc["error"]["code"] == "pooler_session_state", result.stdout
    assert f"{A}.sql:4:" in doc["error"]["message"]
    assert history(db_url) == [] and "a" not in {t for (t,) in query(
        db_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
