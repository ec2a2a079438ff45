"""plan and dry runs never wait behind a table lock (issue 9): a session holding ACCESS EXCLUSIVE on a table makes
the live-schema check skip (naming that session) instead of hanging, and Ctrl-C ends a plan that waits.
Real subprocesses on a real server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import SCRIPTS, migration, query

A = "20260101_000000_create_t_and_v"
B = "20260102_000000_create_more"
FILES = {f"{A}.sql": migration("CREATE TABLE t (id int);\nCREATE VIEW v AS SELECT id FROM t;",
                               "DROP VIEW v;\nDROP TABLE t;"),
         f"{B}.sql": migration("CREATE TABLE more (id int);", "DROP TABLE more;")}
QUICK_S = 15  # what "finishes" means here; a hang would take minutes


@pytest.fixture
def applied_dir(db_url: str, migrations_dir, run_script) -> Path:
    """Return a migrations directory whose first migration (t and a view over it) is applied; B is pending."""
    directory = migrations_dir(FILES)
    result = run_script("apply", "--migrations-dir", str(directory), "--target", A, db_url=db_url, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


@pytest.fixture
def table_locker(db_url: str) -> Iterator[int]:
    """Yield the pid of a session holding ACCESS EXCLUSIVE on t in an open transaction.

    A committed GRANT first changes the catalog fingerprint (not the schema): the live-schema check must then take
    the full snapshot, which meets the lock."""
    query(db_url, "GRANT SELECT ON t TO PUBLIC")
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            cur.execute("SELECT pg_backend_pid()")
            yield cur.fetchone()[0]
    finally:
        conn.close()


def run_timed(run_script, *args: str, db_url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_script(*args, db_url=db_url, timeout=30)
    return result, time.monotonic() - started


def test_plan_skips_the_schema_check_behind_a_table_lock_and_names_the_session_holding_it(
        db_url, applied_dir, run_script, table_locker):
    result, elapsed = run_timed(run_script, "plan", "--migrations-dir", str(applied_dir), "--json", db_url=db_url)

    assert elapsed < QUICK_S, f"plan took {elapsed:.1f}s"
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema_check"] == "skipped"
    assert str(table_locker) in doc["schema_check_reason"], doc["schema_check_reason"]
    assert [p["version"] for p in doc["pending"]] == [B]
    assert [r["version"] for r in doc["applied"]] == [A]


def test_human_plan_behind_a_table_lock_says_why_the_check_was_skipped(db_url, applied_dir, run_script,
                                                                        table_locker):
    result, elapsed = run_timed(run_script, "plan", "--migrations-dir", str(applied_dir), db_url=db_url)

    assert elapsed < QUICK_S, f"plan took {elapsed:.1f}s"
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(table_locker) in result.stdout + result.stderr
    assert f"pending  {B}" in result.stdout


def test_a_dry_run_behind_a_table_lock_finishes_names_the_session_and_touches_nothing(db_url, applied_dir,
                                                                                      run_script, table_locker):
    before = query(db_url, "SELECT * FROM public.schema_migrations ORDER BY id")

    result, elapsed = run_timed(run_script, "apply", "--migrations-dir", str(applied_dir), "--dry-run", "--json",
                                db_url=db_url)

    assert elapsed < QUICK_S, f"the dry run took {elapsed:.1f}s"
    assert result.returncode in (0, 3), result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc.get("error", {}).get("code") != "unexpected_error"
    assert str(table_locker) in result.stdout, doc  # the skipped check, or the refusal, names the session
    assert "Traceback" not in result.stderr
    assert query(db_url, "SELECT * FROM public.schema_migrations ORDER BY id") == before
    assert query(db_url, "SELECT to_regclass('public.more') IS NULL") == [(True,)]


@pytest.mark.parametrize("wait", [(), ("--lock-timeout-ms", "60000")], ids=["default_wait", "long_wait"])
def test_ctrl_c_ends_a_plan_waiting_behind_a_table_lock_within_seconds(wait, db_url, applied_dir, table_locker):
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    plan = subprocess.Popen([sys.executable, str(SCRIPTS / "plan_migrations.py"), "--migrations-dir",
                             str(applied_dir), "--json", *wait],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        waiting = []
        while time.monotonic() < deadline and plan.poll() is None and not waiting:
            waiting = query(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                                    "'migration-assistant-read' AND wait_event_type = 'Lock'")
            time.sleep(0.02)
        assert waiting, f"plan never waited for the lock: {plan.poll()} {plan.communicate(timeout=30)}"

        plan.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = plan.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if plan.poll() is None:
            plan.kill()
            plan.communicate(timeout=10)

    assert elapsed < 5, f"plan took {elapsed:.1f}s to stop after Ctrl-C"
    assert plan.returncode not in (0, None), out + err
    assert json.loads(out)["error"]["code"] == "interrupted"
    assert "Traceback" not in err
    # Its server session is gone or no longer waiting: nothing keeps queueing behind the lock.
    time.sleep(0.2)
    assert query(db_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'migration-assistant%%' "
                         "AND wait_event_type = 'Lock'") == [(0,)]
