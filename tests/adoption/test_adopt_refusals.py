"""Adoption refuses, changing nothing, when what it would record is not what was previewed, when the history is
another tool's than --from says, when there is none, or when this tool's history is already beside it; a dry run
writes nothing and takes no lock; a real one locks the other tool's table before reading it."""
from __future__ import annotations

import threading
import time

import psycopg2
from conftest import query
from foreign_tools import DBMATE_DDL, SOURCES, json_of, run_import

DBMATE_HISTORY = DBMATE_DDL + "; INSERT INTO schema_migrations (version) VALUES ('20240101120000')"


def test_a_plan_id_from_before_the_other_tool_applied_more_is_refused_as_plan_changed(run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL); " + DBMATE_HISTORY)
    unconfirmed = run_script("import", "--from", "dbmate", str(SOURCES["dbmate"]), "--migrations-dir", str(target),
                             "--adopt", "--json", db_url=db_url, env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"})
    assert unconfirmed.returncode == 2 and json_of(unconfirmed)["error"]["code"] == "plan_id_required"
    preview = json_of(run_import(run_script, "dbmate", target, "--adopt", "--dry-run", "--json", db_url=db_url))
    assert preview["adopted"] == ["20240101_120000_create_users"]
    query(db_url, "INSERT INTO schema_migrations (version) VALUES ('20240102090000')")  # dbmate ran one more

    result = run_import(run_script, "dbmate", target, "--adopt", "--plan-id", preview["plan_id"], "--json",
                        db_url=db_url)

    assert result.returncode == 3
    assert json_of(result)["error"]["code"] == "plan_changed"
    assert query(db_url, "SELECT count(*) FROM schema_migrations") == [(2,)]  # still dbmate's table
    assert query(db_url, "SELECT to_regclass('schema_migrations_before_adoption')") == [(None,)]


def test_a_history_of_another_tool_than_from_names_is_a_usage_error_and_nothing_changes(run_script, db_url,
                                                                                        tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "golang-migrate", target).returncode == 0
    query(db_url, DBMATE_HISTORY)

    result = run_import(run_script, "golang-migrate", target, "--adopt", db_url=db_url)

    assert result.returncode == 2
    assert result.stderr.startswith("error: The history table public.schema_migrations looks like dbmate's, not "
                                    "golang-migrate's") and len(result.stderr.strip().splitlines()) == 1
    assert query(db_url, "SELECT version FROM schema_migrations") == [("20240101120000",)]


def test_adopting_where_no_other_tool_keeps_history_is_refused_and_creates_nothing(run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "goose", target).returncode == 0

    result = run_import(run_script, "goose", target, "--adopt", "--json", db_url=db_url)

    assert result.returncode == 3
    assert json_of(result)["error"]["code"] == "nothing_to_adopt"
    assert query(db_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_adopting_twice_is_refused_the_second_time(run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL); " + DBMATE_HISTORY)
    assert run_import(run_script, "dbmate", target, "--adopt", db_url=db_url).returncode == 0

    again = run_import(run_script, "dbmate", target, "--adopt", "--json", db_url=db_url)

    assert again.returncode == 3 and json_of(again)["error"]["code"] == "nothing_to_adopt"
    assert "already there" in json_of(again)["error"]["message"]
    assert query(db_url, "SELECT count(*) FROM schema_migrations") == [(1,)]


def test_an_adoption_that_fails_part_way_leaves_the_other_tools_table_as_it_was(run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    # a relation already named like this tool's history index: creating the history fails after the rename
    query(db_url, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL); " + DBMATE_HISTORY
          + "; CREATE TABLE idx_schema_migrations_version_dir (x int)")

    result = run_import(run_script, "dbmate", target, "--adopt", db_url=db_url)

    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "already exists" in result.stderr
    assert query(db_url, "SELECT version FROM schema_migrations") == [("20240101120000",)]  # dbmate's, untouched
    assert query(db_url, "SELECT to_regclass('schema_migrations_before_adoption'), "
                         "to_regclass('schema_migrations_snapshots')") == [(None, None)]


def test_with_this_tools_history_already_beside_dbmates_adoption_is_refused_as_nothing_to_adopt(run_script, db_url,
                                                                                                 tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, DBMATE_HISTORY)
    applied = run_script("apply", "--migrations-dir", str(target), "--history-table", "app_history", db_url=db_url)
    assert applied.returncode == 0, applied.stderr  # both tools now keep a history here

    result = run_import(run_script, "dbmate", target, "--adopt", "--history-table", "app_history", "--json",
                        db_url=db_url)

    assert result.returncode == 3 and "Traceback" not in result.stderr
    error = json_of(result)["error"]
    assert error["code"] == "nothing_to_adopt" and "\n" not in error["message"]
    assert error["message"].startswith("This tool's history public.app_history already exists beside dbmate's "
                                       "public.schema_migrations")
    assert query(db_url, "SELECT version FROM schema_migrations") == [("20240101120000",)]
    assert query(db_url, "SELECT count(*) FROM app_history") == [(3,)]
    assert query(db_url, "SELECT to_regclass('schema_migrations_before_adoption')") == [(None,)]


WAITING_LOCK = """
SELECT l.mode FROM pg_locks l
WHERE l.relation = 'schema_migrations'::regclass AND NOT l.granted AND l.pid <> pg_backend_pid()
"""


def wait_for_waiting_lock(url: str, seconds: float = 30) -> list[tuple]:
    """Return the lock modes other sessions wait for on schema_migrations, once there is one (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = query(url, WAITING_LOCK)
        if waiting:
            return waiting
        time.sleep(0.05)
    return []


def test_adoption_locks_the_other_tools_table_before_reading_it_so_a_version_dbmate_records_meanwhile_is_adopted(
        run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL); " + DBMATE_HISTORY)
    dbmate = psycopg2.connect(db_url)  # a dbmate still running: it has recorded a version, not committed yet
    try:
        with dbmate.cursor() as cur:
            cur.execute("INSERT INTO schema_migrations (version) VALUES ('20240102090000')")
        outcome = {}
        adopting = threading.Thread(target=lambda: outcome.update(result=run_import(
            run_script, "dbmate", target, "--adopt", "--json", db_url=db_url)))
        adopting.start()
        waiting = wait_for_waiting_lock(db_url)
        dbmate.commit()  # within adoption's lock timeout: it goes on, and reads the row dbmate recorded
    finally:
        dbmate.close()
    adopting.join(timeout=60)

    assert waiting == [("ExclusiveLock",)]  # the LOCK before the read (not the rename's AccessExclusiveLock)
    result = outcome["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert json_of(result)["adopted"] == ["20240101_120000_create_users", "20240102_090000_index_user_email"]
    assert query(db_url, "SELECT count(*) FROM schema_migrations_before_adoption") == [(2,)]
