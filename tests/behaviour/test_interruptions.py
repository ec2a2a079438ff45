"""A run stopped part way (Ctrl-C, SIGTERM, a dropped connection) leaves no half-applied migration behind."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRIPTS, history, migration, query, tables

FAST = "20260101_000000_fast.sql"
SLOW = "20260102_000000_slow.sql"
FILES = {FAST: migration("CREATE TABLE fast (id int);", "DROP TABLE fast;"),
         SLOW: migration("CREATE TABLE slow (id int);\nSELECT pg_sleep(30);", "DROP TABLE slow;")}


def start_apply(db_url, directory):
    env = {**os.environ, "DB_URL": db_url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--json",
                             "--migrations-dir", str(directory)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_slow_statement(db_url):
    """Return the server pid of the runner once it is inside the slow migration."""
    for _ in range(200):
        rows = query(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'migration-assistant' "
                             "AND query LIKE '%%pg_sleep%%' AND state = 'active'")
        if rows:
            return rows[0][0]
        time.sleep(0.05)
    raise AssertionError("the runner never reached the slow migration")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_cancels_the_running_migration_and_keeps_earlier_ones(db_url, migrations_dir, sig):
    runner = start_apply(db_url, migrations_dir(FILES))
    wait_for_slow_statement(db_url)
    runner.send_signal(sig)
    out, err = runner.communicate(timeout=20)
    document = json.loads(out)
    assert runner.returncode == 1
    assert document["error"]["code"] == "interrupted" and document["applied"] == ["20260101_000000_fast"]
    assert "Traceback" not in err
    assert "fast" in tables(db_url) and "slow" not in tables(db_url)
    assert history(db_url) == [("20260101_000000_fast", "up", "success"),
                               ("20260102_000000_slow", "up", "failed")]


def test_a_connection_dropped_by_the_server_is_exit_4_and_nothing_half_applied(db_url, migrations_dir):
    runner = start_apply(db_url, migrations_dir(FILES))
    pid = wait_for_slow_statement(db_url)
    query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))
    out, err = runner.communicate(timeout=20)
    document = json.loads(out)
    assert runner.returncode == 4
    assert document["error"]["code"] == "connection_lost" and "20260102_000000_slow" in document["error"]["message"]
    assert document["applied"] == ["20260101_000000_fast"]
    assert "Traceback" not in err
    assert "slow" not in tables(db_url)
    assert history(db_url) == [("20260101_000000_fast", "up", "success")]


def test_the_next_run_completes_after_an_interruption(db_url, migrations_dir, run_script):
    directory = migrations_dir(FILES)
    runner = start_apply(db_url, directory)
    wait_for_slow_statement(db_url)
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=20)
    (directory / SLOW).write_text(migration("CREATE TABLE slow (id int);", "DROP TABLE slow;"))
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "slow" in tables(db_url)
