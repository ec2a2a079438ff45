"""Parallel runners: the advisory lock makes every migration run exactly once; previews never take the lock.

Real subprocesses against one database, in the spirit of yoyo's 20-thread test (STYLE.md 5.7).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import SCRIPTS, history, migration, query, tables
from migration_core.lock import LOCK_KEY

RUNNERS = 6
COUNT = 20
VERSIONS = [f"20260101_{i:06d}_create_t{i:02d}" for i in range(COUNT)]
FILES = {f"{v}.sql": migration(f"CREATE TABLE t{i:02d} (id int);\nSELECT pg_sleep(0.02);", f"DROP TABLE t{i:02d};")
         for i, v in enumerate(VERSIONS)}
TABLES = {f"t{i:02d}" for i in range(COUNT)}


def start_apply(db_url: str, directory: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--migrations-dir", str(directory),
                             "--json", "--lock-timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


@pytest.fixture
def lock_holder(db_url: str) -> Iterator[psycopg2.extensions.connection]:
    """Yield a session that holds the migration advisory lock on the test database."""
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        yield conn
    finally:
        conn.close()


def test_six_runners_started_at_once_apply_every_migration_exactly_once(db_url, migrations_dir, tmp_path):
    directory = migrations_dir(FILES)

    runners = [start_apply(db_url, directory, tmp_path) for _ in range(RUNNERS)]
    outputs = [runner.communicate(timeout=300) for runner in runners]

    for runner, (stdout, stderr) in zip(runners, outputs):
        assert runner.returncode == 0, stdout + stderr
    documents = [json.loads(stdout) for stdout, _ in outputs]
    assert all(d["ok"] is True and d["failed"] is None for d in documents)
    applied_by_runs = [v for d in documents for v in d["applied"]]
    assert sorted(applied_by_runs) == VERSIONS  # each version applied by exactly one runner
    assert history(db_url) == [(v, "up", "success") for v in VERSIONS]
    assert query(db_url, "SELECT version, count(*) FROM schema_migrations WHERE status = 'success' "
                         "GROUP BY version HAVING count(*) <> 1") == []
    assert tables(db_url) == TABLES | {"schema_migrations"}


def test_six_runners_after_a_rollback_reapply_exactly_once(db_url, migrations_dir, tmp_path, run_script):
    directory = migrations_dir(FILES)
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    assert run_script("rollback", "--migrations-dir", str(directory), "--to", VERSIONS[9],
                      db_url=db_url).returncode == 0

    runners = [start_apply(db_url, directory, tmp_path) for _ in range(RUNNERS)]
    outputs = [runner.communicate(timeout=300) for runner in runners]

    assert [r.returncode for r in runners] == [0] * RUNNERS, outputs
    applied_by_runs = [v for stdout, _ in outputs for v in json.loads(stdout)["applied"]]
    assert sorted(applied_by_runs) == VERSIONS[10:]
    rows = query(db_url, "SELECT version, direction FROM schema_migrations WHERE status = 'success' ORDER BY id")
    assert rows == ([(v, "up") for v in VERSIONS[:10]] + [(v, "down") for v in reversed(VERSIONS[10:])]
                    + [(v, "up") for v in VERSIONS[10:]])
    assert tables(db_url) == TABLES | {"schema_migrations"}


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_apply_gives_up_with_exit_3_while_another_session_holds_the_lock(as_json, db_url, migrations_dir,
                                                                         run_script, lock_holder):
    directory = migrations_dir(FILES)

    result = run_script("apply", "--migrations-dir", str(directory), "--lock-timeout", "1",
                        *(["--json"] if as_json else []), db_url=db_url, timeout=60)

    assert result.returncode == 3
    if as_json:
        document = json.loads(result.stdout)
        assert document["ok"] is False
        assert document["error"]["code"] == "lock_timeout"
        assert "lock" in document["error"]["message"]
    else:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        # Said once while waiting, then the one-line error, both naming the holder.
        assert len(lines) == 2 and lines[0].startswith("Waiting up to 1s for the runner lock"), result.stderr
        assert lines[1].startswith("error:") and "lock" in lines[1] and "connected since 20" in lines[1]
    assert history(db_url) == []
    assert tables(db_url) <= {"schema_migrations"}


def test_rollback_gives_up_with_exit_3_while_another_session_holds_the_lock(db_url, migrations_dir, run_script):
    directory = migrations_dir(FILES)
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    before = history(db_url)
    holder = psycopg2.connect(db_url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        result = run_script("rollback", "--migrations-dir", str(directory), "--lock-timeout", "1", "--json",
                            db_url=db_url, timeout=60)
    finally:
        holder.close()

    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["code"] == "lock_timeout"
    assert history(db_url) == before
    assert tables(db_url) == TABLES | {"schema_migrations"}


def test_apply_runs_once_the_lock_is_released(db_url, migrations_dir, run_script, lock_holder):
    directory = migrations_dir(FILES)
    blocked = run_script("apply", "--migrations-dir", str(directory), "--lock-timeout", "1", db_url=db_url, timeout=60)
    lock_holder.close()

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert blocked.returncode == 3
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == VERSIONS
    assert history(db_url) == [(v, "up", "success") for v in VERSIONS]


PREVIEWS = {  # command, and what its output must show: the pending versions, or the exact SQL it would run
    "plan": (("plan",), [VERSIONS[10], VERSIONS[19]]),
    "apply_dry_run": (("apply", "--dry-run", "--lock-timeout", "1"), ["CREATE TABLE t10", "CREATE TABLE t19"]),
    "rollback_dry_run": (("rollback", "--dry-run", "--lock-timeout", "1"), ["DROP TABLE t09"]),
}


@pytest.mark.parametrize(("command", "shows"), list(PREVIEWS.values()), ids=list(PREVIEWS))
def test_previews_do_not_wait_for_the_lock(command, shows, db_url, migrations_dir, run_script):
    directory = migrations_dir(FILES)
    assert run_script("apply", "--migrations-dir", str(directory), "--target", VERSIONS[9],
                      db_url=db_url).returncode == 0
    before = query(db_url, "SELECT * FROM schema_migrations ORDER BY id")
    holder = psycopg2.connect(db_url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        # plan has no --lock-timeout (default 60 s elsewhere); the subprocess timeout only guards against a hang.
        result = run_script(command[0], "--migrations-dir", str(directory), *command[1:], db_url=db_url, timeout=30)
    finally:
        holder.close()

    assert result.returncode == 0, result.stdout + result.stderr
    for text in shows:
        assert text in result.stdout
    assert "error:" not in result.stderr
    assert query(db_url, "SELECT * FROM schema_migrations ORDER BY id") == before
    assert tables(db_url) == {f"t{i:02d}" for i in range(10)} | {"schema_migrations"}
