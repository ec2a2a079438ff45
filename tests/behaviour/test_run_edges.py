"""Edges of a run found in review: settings that must not outlive their migration, signals between lock retries,
repairs that must not hide schema drift, dry runs that take no lock, read-only plans whatever the URL says."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg2

from conftest import SCRIPTS, history, migration, query, tables
from migration_core.lock import LOCK_KEY

A = "20260101_000000_create_a"
B = "20260102_000000_divide"
C = "20260103_000000_add_c"


def test_a_failed_non_transactional_migration_does_not_leave_its_timeouts_behind(db_url, migrations_dir,
                                                                                  run_script):
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
        f"{B}.sql": "-- TRANSACTION: none\n-- STATEMENT_TIMEOUT: 1ms\n" + migration("SELECT 1 / 0;"),
    })
    result = run_script("apply", "--json", "--migrations-dir", str(directory), db_url=db_url)
    doc = json.loads(result.stdout)
    assert result.returncode == 1
    assert doc["error"]["code"] == "migration_failed" and doc["failed"]["sqlstate"] == "22012"
    assert doc["applied"] == [A]
    assert "a" in tables(db_url)
    # The snapshot after the run was taken without the 1 ms statement timeout: exactly one, for [A].
    assert query(db_url, "SELECT applied_versions FROM schema_migrations_snapshots") == [([A],)]


def test_a_signal_while_waiting_to_retry_a_lock_stops_the_run(db_url, migrations_dir):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    env = {**os.environ, "DB_URL": db_url}
    apply = [sys.executable, str(SCRIPTS / "apply_migrations.py"), "--json", "--migrations-dir", str(directory)]
    assert subprocess.run(apply, env=env, capture_output=True).returncode == 0
    (directory / f"{C}.sql").write_text(migration("ALTER TABLE a ADD COLUMN c int;", "ALTER TABLE a DROP COLUMN c;"))
    blocker = psycopg2.connect(db_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT * FROM a")  # an open transaction holding ACCESS SHARE on a
        runner = subprocess.Popen([*apply, "--lock-timeout-ms", "200", "--allow-risk"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # past the first lock timeout, inside the pause before the retry
        runner.send_signal(signal.SIGINT)
        out, err = runner.communicate(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()
    doc = json.loads(out)
    assert runner.returncode == 1 and doc["error"]["code"] == "interrupted", err
    assert doc["applied"] == []
    assert query(db_url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'a' "
                         "AND column_name = 'c'") == [(0,)]
    assert (C, "up", "success") not in history(db_url)


def test_accepting_a_checksum_refuses_while_the_schema_drifted(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    query(db_url, "CREATE TABLE sneaky (id int)")
    (directory / f"{A}.sql").write_text(migration("CREATE TABLE a (id int); -- reviewed", "DROP TABLE a;"))
    before = history(db_url)
    result = run_script("apply", "--accept-checksum", A, "--json", "--migrations-dir", str(directory),
                        db_url=db_url)
    assert result.returncode == 3 and json.loads(result.stdout)["error"]["code"] == "schema_drift"
    assert history(db_url) == before


def test_a_baseline_dry_run_takes_no_lock_and_writes_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    holder = psycopg2.connect(db_url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        result = run_script("apply", "--baseline", A, "--dry-run", "--lock-timeout", "5", "--json",
                            "--migrations-dir", str(directory), db_url=db_url)
    finally:
        holder.close()
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["dry_run"] is True and doc["baselined"] == [A]
    assert history(db_url) == [] and tables(db_url) == set()


def test_plan_stays_read_only_when_the_url_sets_its_own_options(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    separator = "&" if "?" in db_url else "?"
    url = f"{db_url}{separator}options=-csearch_path%3Dpublic"
    sys.path.insert(0, str(SCRIPTS))
    from migration_core import db
    conn = db.connect(url, read_only=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW transaction_read_only")  # BEGIN READ ONLY: no startup options (PgBouncer)
            read_only = cur.fetchone()[0]
            cur.execute("SHOW search_path")
            search_path = cur.fetchone()[0]
    finally:
        conn.close()
    assert (read_only, search_path) == ("on", "public")
    result = run_script("plan", "--migrations-dir", str(directory), db_url=url)
    assert result.returncode == 0 and history(db_url) == []
