"""A run that has to wait for the runner lock says so once, naming the holder (pid, application_name, since when);
the lock_timeout error names it too."""
from __future__ import annotations

import json

import psycopg2

from terminal_helpers import migration_files, module_db, run  # noqa: F401  (module_db: a fixture)

LOCK_KEY = 7_361_027_501


def hold_runner_lock(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url, application_name="other-deploy")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s), pg_backend_pid()", (LOCK_KEY,))
    return conn


def test_waiting_for_the_lock_is_said_once_with_the_holder_and_the_timeout_names_it(module_db, tmp_path):
    migration_files(tmp_path / "m", 1, prefix="lw")
    holder = hold_runner_lock(module_db)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        result = run("apply", "--migrations-dir", str(tmp_path / "m"), "--lock-timeout", "1.5", db_url=module_db)
        as_json = run("apply", "--migrations-dir", str(tmp_path / "m"), "--lock-timeout", "0.5", "--json",
                      db_url=module_db)
    finally:
        holder.close()

    assert result.returncode == 3
    waiting = [line for line in result.stderr.splitlines() if line.startswith("Waiting")]
    assert len(waiting) == 1, result.stderr
    assert f"pid {pid} (other-deploy" in waiting[0] and "running since 20" in waiting[0] and "UTC" in waiting[0]
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: Another migration run holds the lock") and f"pid {pid} (other-deploy" in error
    assert "since 20" in error
    assert result.stdout == ""
    document = json.loads(as_json.stdout)
    assert document["error"]["code"] == "lock_timeout" and f"pid {pid}" in document["error"]["message"]
    assert as_json.stderr == ""  # with --json, the waiting note is not printed
    assert run("plan", "--migrations-dir", str(tmp_path / "m"), "--json",
               db_url=module_db).stdout.count('"version"') == 1  # nothing applied
