"""Faults (issue 6): many runners at once, a runner killed with SIGKILL mid-migration (transactional and not), and a
server-side disconnect in the middle of a non-transactional migration. Real subprocesses on a real server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import conftest
from conftest import SCRIPTS, history, migration, query

RUNNERS = 8
COUNT = 50


def tables(url: str) -> set[str]:
    """The public tables, leaving out companion tables the tool may keep beside schema_migrations."""
    return {t for t in conftest.tables(url) if not t.startswith("schema_migrations_")}


def start_apply(db_url: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--json",
                             "--migrations-dir", str(directory), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def apply_now(db_url: str, directory: Path, *args: str) -> tuple[int, dict, str]:
    runner = start_apply(db_url, directory, *args)
    out, err = runner.communicate(timeout=120)
    return runner.returncode, json.loads(out), err


# ---- many runners at once -----------------------------------------------------------------------------------

def many_migrations() -> tuple[dict[str, str], list[str], set[str], set[str]]:
    """50 migrations: tables, plus every tenth a non-transactional concurrent index on the table before it."""
    files, versions, created, indexes = {}, [], set(), set()
    for i in range(COUNT):
        version = f"20260301_{i:06d}_step_{i:02d}"
        versions.append(version)
        if i % 10 == 9:
            files[f"{version}.sql"] = "-- TRANSACTION: none\n" + migration(
                f"CREATE INDEX CONCURRENTLY idx_t{i - 1:02d} ON t{i - 1:02d} (id);",
                f"DROP INDEX CONCURRENTLY idx_t{i - 1:02d};")
            indexes.add(f"idx_t{i - 1:02d}")
        else:
            files[f"{version}.sql"] = migration(f"CREATE TABLE t{i:02d} (id int);\nINSERT INTO t{i:02d} VALUES ({i});",
                                                f"DROP TABLE t{i:02d};")
            created.add(f"t{i:02d}")
    return files, versions, created, indexes


def test_eight_runners_started_at_once_on_fifty_migrations_apply_each_exactly_once(db_url, migrations_dir):
    files, versions, created, indexes = many_migrations()
    directory = migrations_dir(files)

    runners = [start_apply(db_url, directory, "--lock-timeout", "300") for _ in range(RUNNERS)]
    outputs = [runner.communicate(timeout=600) for runner in runners]

    assert [runner.returncode for runner in runners] == [0] * RUNNERS, outputs
    documents = [json.loads(out) for out, _ in outputs]
    assert all(doc["ok"] is True and doc["failed"] is None for doc in documents)
    applied_by_runs = [version for doc in documents for version in doc["applied"]]
    assert sorted(applied_by_runs) == versions  # every version applied by exactly one runner
    assert query(db_url, "SELECT version, count(*) FROM schema_migrations GROUP BY version "
                         "HAVING count(*) <> 1 OR bool_or(status <> 'success')") == []
    assert history(db_url) == [(version, "up", "success") for version in versions]
    assert tables(db_url) == created | {"schema_migrations"}
    assert query(db_url, "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "WHERE c.relname LIKE 'idx_t%%' ORDER BY 1") == [(name, True) for name in sorted(indexes)]


# ---- a runner killed with SIGKILL ---------------------------------------------------------------------------

FAST = "20260101_000000_fast"
SLOW = "20260102_000000_slow"
# The sleep reads its length from a table the test controls: 30 s while the runner is killed, 0 for the rerun,
# so the rerun runs the very same file.
GATE = "CREATE TABLE fault_gate (seconds float); INSERT INTO fault_gate VALUES (30)"


def open_gate(db_url: str) -> None:
    query(db_url, "UPDATE fault_gate SET seconds = 0")


def wait_for_sleeping_runner(db_url: str, runner: subprocess.Popen[str]) -> int:
    """Return the server pid of the runner's session once it is inside the slow statement."""
    for _ in range(1000):
        found = query(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'migration-assistant' "
                              "AND state = 'active' AND query LIKE '%%pg_sleep%%'")
        if found:
            return found[0][0]
        assert runner.poll() is None, runner.communicate()
        time.sleep(0.02)
    raise AssertionError("the runner never reached the slow statement")


def kill_runner(runner: subprocess.Popen[str]) -> None:
    os.kill(runner.pid, signal.SIGKILL)
    runner.communicate(timeout=30)
    assert runner.returncode == -signal.SIGKILL


def end_orphaned_session(db_url: str, pid: int) -> None:
    """Terminate the server session the killed runner left behind, and wait until it is gone."""
    assert query(db_url, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    for _ in range(1000):
        if not query(db_url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
            return
        time.sleep(0.02)
    raise AssertionError(f"server session {pid} never went away")


def test_a_runner_killed_inside_a_transactional_migration_leaves_nothing_of_it_and_the_next_run_completes(
        db_url, migrations_dir, run_script):
    query(db_url, GATE)
    directory = migrations_dir({
        f"{FAST}.sql": migration("CREATE TABLE fast (id int);", "DROP TABLE fast;"),
        f"{SLOW}.sql": migration("CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\n"
                                 "SELECT pg_sleep(seconds) FROM fault_gate;", "DROP TABLE half;"),
    })
    runner = start_apply(db_url, directory)
    pid = wait_for_sleeping_runner(db_url, runner)

    kill_runner(runner)

    # The orphaned session still sleeps, holding its open transaction and the runner lock: nothing is visible.
    assert tables(db_url) == {"fault_gate", "fast", "schema_migrations"}
    assert history(db_url) == [(FAST, "up", "success")]
    blocked = run_script("apply", "--migrations-dir", str(directory), "--json", "--lock-timeout", "1", db_url=db_url)
    assert blocked.returncode == 3 and json.loads(blocked.stdout)["error"]["code"] == "lock_timeout"

    end_orphaned_session(db_url, pid)

    assert tables(db_url) == {"fault_gate", "fast", "schema_migrations"}  # its transaction died with it
    assert history(db_url) == [(FAST, "up", "success")]  # no success row, and no row at all for SLOW
    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert plan.returncode == 0 and [p["version"] for p in json.loads(plan.stdout)["pending"]] == [SLOW]

    open_gate(db_url)
    code, doc, err = apply_now(db_url, directory)

    assert code == 0, err
    assert doc["applied"] == [SLOW] and doc["failed"] is None
    assert query(db_url, "SELECT id FROM half") == [(1,)]
    assert history(db_url) == [(FAST, "up", "success"), (SLOW, "up", "success")]


NON_TRANSACTIONAL = (
    "-- TRANSACTION: none\n"
    "-- DIRECTION: up\n"
    "CREATE TABLE IF NOT EXISTS x (id int);\n"
    "SELECT pg_sleep(seconds) FROM fault_gate;\n"
    "CREATE TABLE IF NOT EXISTS y (id int);\n"
    "\n"
    "-- DIRECTION: down\n"
    "DROP TABLE IF EXISTS y;\n"
    "DROP TABLE IF EXISTS x;\n"
)


def test_a_runner_killed_inside_a_non_transactional_migration_leaves_an_accurate_count_and_the_next_run_completes(
        db_url, migrations_dir, run_script):
    query(db_url, GATE)
    directory = migrations_dir({f"{FAST}.sql": migration("CREATE TABLE fast (id int);", "DROP TABLE fast;"),
                                f"{SLOW}.sql": NON_TRANSACTIONAL})
    runner = start_apply(db_url, directory)
    pid = wait_for_sleeping_runner(db_url, runner)

    kill_runner(runner)
    end_orphaned_session(db_url, pid)

    assert tables(db_url) == {"fault_gate", "fast", "schema_migrations", "x"}  # statement 1 ran; 3 never did
    assert history(db_url) == [(FAST, "up", "success"), (SLOW, "up", "failed")]
    note = query(db_url, "SELECT error_message FROM schema_migrations WHERE version = %s", (SLOW,))[0][0]
    assert note.startswith("interrupted: 1 of 3 statements completed")
    plan = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert plan.returncode == 0, plan.stderr
    assert f"FAILED   {SLOW} (up)" in plan.stdout and "1 of 3 statements completed" in plan.stdout
    assert f"pending  {SLOW}" in plan.stdout

    open_gate(db_url)
    code, doc, err = apply_now(db_url, directory)

    assert code == 0, err
    assert doc["applied"] == [SLOW]
    assert tables(db_url) == {"fault_gate", "fast", "schema_migrations", "x", "y"}
    assert history(db_url) == [(FAST, "up", "success"), (SLOW, "up", "failed"), (SLOW, "up", "success")]
    plan_doc = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    assert plan_doc["failed"] == [] and plan_doc["pending"] == []


def test_a_connection_dropped_inside_a_non_transactional_migration_reports_the_completed_statements(
        db_url, migrations_dir):
    query(db_url, GATE)
    directory = migrations_dir({f"{FAST}.sql": migration("CREATE TABLE fast (id int);", "DROP TABLE fast;"),
                                f"{SLOW}.sql": NON_TRANSACTIONAL})
    runner = start_apply(db_url, directory)
    pid = wait_for_sleeping_runner(db_url, runner)

    query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))
    out, err = runner.communicate(timeout=30)

    doc = json.loads(out)
    assert runner.returncode == 4
    assert doc["error"]["code"] == "connection_lost" and SLOW in doc["error"]["message"]
    assert doc["applied"] == [FAST]
    assert "Traceback" not in err
    assert tables(db_url) == {"fault_gate", "fast", "schema_migrations", "x"}
    note = query(db_url, "SELECT error_message FROM schema_migrations WHERE version = %s", (SLOW,))[0][0]
    assert note.startswith("interrupted: 1 of 3 statements completed")
    # Statement 1 did run and stays: the message must say so, not that nothing of the migration was applied.
    assert "nothing of it was applied" not in doc["error"]["message"], doc["error"]["message"]
    assert "1 of 3" in doc["error"]["message"], doc["error"]["message"]


def test_ctrl_c_inside_a_non_transactional_migration_reports_the_completed_statements(db_url, migrations_dir):
    query(db_url, GATE)
    directory = migrations_dir({f"{FAST}.sql": migration("CREATE TABLE fast (id int);", "DROP TABLE fast;"),
                                f"{SLOW}.sql": NON_TRANSACTIONAL})
    runner = start_apply(db_url, directory)
    wait_for_sleeping_runner(db_url, runner)

    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=30)

    doc = json.loads(out)
    assert runner.returncode == 1
    assert doc["error"]["code"] == "interrupted" and doc["applied"] == [FAST]
    assert "Traceback" not in err
    assert tables(db_url) == {"fault_gate", "fast", "schema_migrations", "x"}
    assert history(db_url) == [(FAST, "up", "success"), (SLOW, "up", "failed")]
    note = query(db_url, "SELECT error_message FROM schema_migrations WHERE version = %s", (SLOW,))[0][0]
    assert note.startswith("SQLSTATE 57014") and note.endswith("(1 of 3 statements completed, not rolled back)")
    # Statement 1 stays applied: the message must not say the migration was rolled back.
    assert "rolled back" not in doc["error"]["message"] or "not rolled back" in doc["error"]["message"], \
        doc["error"]["message"]
    assert "1 of 3" in doc["error"]["message"], doc["error"]["message"]
