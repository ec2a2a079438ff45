"""A dbmate folder (db/migrations/VERSION_name.sql with '-- migrate:up' / '-- migrate:down', transaction:false)
imports as this tool's files, and its history (version varchar PRIMARY KEY, a row per applied version) is adopted."""
from __future__ import annotations

from conftest import query
from foreign_tools import DBMATE_DDL, SOURCES, adopt_and_continue, json_of, run_import, source_sql

VERSIONS = ["20240101_120000_create_users", "20240102_090000_index_user_email", "20240103_100000_create_posts"]


def test_dbmate_timestamps_keep_their_time_and_transaction_false_becomes_transaction_none(run_script, tmp_path):
    target = tmp_path / "migrations"

    result = run_import(run_script, "dbmate", target, "--json")

    assert result.returncode == 0, result.stderr
    assert [(m["source_version"], m["version"]) for m in json_of(result)["migrations"]] == [
        ("20240101120000", VERSIONS[0]), ("20240102090000", VERSIONS[1]), ("20240103100000", VERSIONS[2])]
    index = (target / f"{VERSIONS[1]}.sql").read_text()
    assert "\n-- TRANSACTION: none\n" in index and "transaction:false" in index
    assert "migrate:up" not in index.split("-- DIRECTION: up")[1]  # the directive lines are not SQL here
    assert (target / f"{VERSIONS[0]}.sql").read_text().endswith("-- DIRECTION: down\nDROP TABLE users;\n")


def test_dbmate_history_is_adopted_then_the_rest_applies_and_rolls_back_past_the_boundary(run_script, db_url,
                                                                                          tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, source_sql("dbmate", "20240101120000_create_users.sql", "up"))
    query(db_url, source_sql("dbmate", "20240102090000_index_user_email.sql", "up"))  # CONCURRENTLY: on its own
    query(db_url, DBMATE_DDL + "; INSERT INTO schema_migrations (version) VALUES ('20240101120000'), "
                               "('20240102090000')")

    adopt_and_continue(run_script, db_url, target, "dbmate", "schema_migrations", VERSIONS[:2], VERSIONS[2:],
                       rollback_to=VERSIONS[0])

    assert query(db_url, "SELECT to_regclass('posts'), to_regclass('users_email_idx')") == [(None, None)]
    # the renamed table's primary key follows it, so this tool's table has its own
    assert query(db_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'schema_migrations_before_adoption'") \
        == [("schema_migrations_before_adoption_pkey",)]


def test_versions_dbmate_applied_that_the_folder_lacks_are_refused_by_name_and_nothing_changes(run_script, db_url,
                                                                                              tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, DBMATE_DDL + "; INSERT INTO schema_migrations (version) VALUES ('20231231000000'), "
                               "('20240101120000')")

    result = run_import(run_script, "dbmate", target, "--adopt", db_url=db_url)

    assert result.returncode == 3
    assert "error: dbmate applied version(s) 20231231000000, which have no imported file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert query(db_url, "SELECT count(*) FROM schema_migrations") == [(2,)]
    assert query(db_url, "SELECT to_regclass('schema_migrations_before_adoption')") == [(None,)]
    assert SOURCES["dbmate"].parent.name == "db"  # the fixture keeps dbmate's own layout: db/migrations


def test_with_another_history_table_name_dbmates_schema_migrations_is_still_found_and_adopted(run_script, db_url,
                                                                                             tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "dbmate", target).returncode == 0
    query(db_url, source_sql("dbmate", "20240101120000_create_users.sql", "up"))
    query(db_url, DBMATE_DDL + "; INSERT INTO schema_migrations (version) VALUES ('20240101120000')")

    result = run_import(run_script, "dbmate", target, "--adopt", "--history-table", "app_history", db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert query(db_url, "SELECT version FROM app_history") == [(VERSIONS[0],)]
    assert query(db_url, "SELECT count(*) FROM schema_migrations_before_adoption") == [(1,)]
    plan = run_script("plan", "--migrations-dir", str(target), "--history-table", "app_history", "--json",
                      db_url=db_url)
    assert plan.returncode == 0 and [m["version"] for m in json_of(plan)["pending"]] == VERSIONS[1:]
