"""What happens at a migration's edges: errors raised at commit time, sections with nothing to run, and other
sessions of the tool that are not a killed runner's orphans (issue 9)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg2

from conftest import SCRIPTS, history, migration, query, tables

A = "20260101_000000_parent_child"
B = "20260102_000000_more"


def test_a_deferred_constraint_violated_at_commit_is_the_migrations_failure_not_a_double_apply(
        db_url, migrations_dir, run_script):
    up = ("CREATE TABLE parent (id int PRIMARY KEY);\n"
          "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
          "INSERT INTO child VALUES (1);")
    directory = migrations_dir({f"{A}.sql": migration(up, "DROP TABLE child;\nDROP TABLE parent;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["error"]["code"] == "migration_failed", result.stdout
    assert doc["failed"]["sqlstate"] == "23503"
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(A, "up", "failed")]


def test_a_statement_by_statement_section_of_only_a_semicolon_is_invalid(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": "-- TRANSACTION: none\n" + migration(";")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 2, result.stdout
    assert json.loads(result.stdout)["error"]["code"] == "invalid_migration"
    assert "holds no statement" in json.loads(result.stdout)["error"]["message"]
    assert history(db_url) == []


def test_a_plan_waiting_behind_a_lock_is_not_taken_for_a_killed_runners_orphan(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE t (id int);\nCREATE VIEW v AS SELECT * FROM t;",
                                                      "DROP VIEW v;\nDROP TABLE t;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{B}.sql").write_text(migration("CREATE TABLE other (id int);", "DROP TABLE other;"))
    holder = psycopg2.connect(db_url)
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    plan = None
    # A committed GRANT changes the catalog fingerprint without changing the schema, so plan must take the full
    # snapshot, and waits behind the table lock.
    query(db_url, "GRANT SELECT ON t TO PUBLIC")
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        plan = subprocess.Popen([sys.executable, str(SCRIPTS / "plan_migrations.py"), "--migrations-dir",
                                 str(directory), "--lock-timeout-ms", "20000"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not query(
                db_url, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'migration-assistant-read' "
                        "AND state = 'active' AND wait_event_type = 'Lock'"):
            time.sleep(0.05)
        assert time.monotonic() < deadline, "plan never waited behind the table lock"

        # The plan is active and waiting; an apply of a migration that does not touch t goes ahead.
        started = time.monotonic()
        result = run_script("apply", "--migrations-dir", str(directory), "--json", "--lock-timeout", "3",
                            "--allow-schema-drift", db_url=db_url)
    finally:
        holder.close()
        if plan is not None:
            plan.communicate(timeout=60)
    # It did not wait for the plan as for an orphan: B ran at once. (Recording the schema snapshot afterwards then
    # meets the same table lock, within its lock timeout, and says so, listing what was applied.)
    doc = json.loads(result.stdout)
    assert doc["applied"] == [B], result.stdout
    assert result.returncode == 0 or doc["error"]["code"] == "lock_not_available", result.stdout
    assert time.monotonic() - started < 15
    assert ("other",) in query(db_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
