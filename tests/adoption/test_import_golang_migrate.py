"""A golang-migrate folder (N_name.up.sql / N_name.down.sql) imports as this tool's files, and its history table
(version bigint, dirty boolean: one row, the current version) is adopted in one reviewed command."""
from __future__ import annotations

import json

from conftest import query
from foreign_tools import GOLANG_MIGRATE_DDL, adopt_and_continue, json_of, run_import, source_sql

ADOPTED = ["20000101_000001_create_users", "20000101_000002_add_user_name"]
PENDING = ["20000101_000003_backfill_names", "20000101_000004_index_user_email"]


def test_golang_migrate_folder_imports_in_order_with_its_wrapper_empty_down_and_marker_translated(run_script,
                                                                                                 tmp_path):
    target = tmp_path / "migrations"

    result = run_import(run_script, "golang-migrate", target, "--json")

    assert result.returncode == 0, result.stderr
    document = json_of(result)
    assert [(m["source_version"], m["version"]) for m in document["migrations"]] == [
        ("1", ADOPTED[0]), ("2", ADOPTED[1]), ("3", PENDING[0]), ("4", PENDING[1])]
    assert sorted(p.name for p in target.iterdir()) == sorted([v + ".sql" for v in ADOPTED + PENDING]
                                                              + ["import_map.json"])
    saved = json.loads((target / "import_map.json").read_text())
    assert saved["imports"][0]["versions"] == {"1": ADOPTED[0], "2": ADOPTED[1], "3": PENDING[0], "4": PENDING[1]}
    wrapped = (target / f"{ADOPTED[1]}.sql").read_text()
    assert "BEGIN;" not in wrapped and "COMMIT;" not in wrapped and "ADD COLUMN name text;" in wrapped
    assert "-- DIRECTION: down\n-- noop: empty down in the golang-migrate source (3_backfill_names.down.sql)\n" in \
        (target / f"{PENDING[0]}.sql").read_text()
    assert "\n-- TRANSACTION: none\n" in (target / f"{PENDING[1]}.sql").read_text()
    lint = run_script("lint", "--migrations-dir", str(target))
    assert lint.returncode == 0, lint.stdout + lint.stderr  # every imported file parses as lint reads it


def test_golang_migrate_history_is_adopted_then_the_rest_applies_and_rolls_back_past_the_boundary(
        run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "golang-migrate", target).returncode == 0
    query(db_url, source_sql("golang-migrate", "1_create_users.up.sql")
          + "INSERT INTO users (email) VALUES ('ann@example.com');"
          + source_sql("golang-migrate", "2_add_user_name.up.sql")
          + GOLANG_MIGRATE_DDL + "; INSERT INTO schema_migrations (version, dirty) VALUES (2, false)")

    adopt_and_continue(run_script, db_url, target, "golang-migrate", "schema_migrations", ADOPTED, PENDING,
                       rollback_to=ADOPTED[0])

    assert query(db_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' "
                         "ORDER BY ordinal_position") == [("id",), ("email",)]  # the adopted 2's down ran
    assert query(db_url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_email_idx'") == [(0,)]


def test_a_dirty_golang_migrate_history_is_refused_naming_the_version_and_nothing_changes(run_script, db_url,
                                                                                          tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "golang-migrate", target).returncode == 0
    query(db_url, GOLANG_MIGRATE_DDL + "; INSERT INTO schema_migrations (version, dirty) VALUES (2, true)")

    result = run_import(run_script, "golang-migrate", target, "--adopt", "--json", db_url=db_url)

    assert result.returncode == 3
    error = json_of(result)["error"]
    assert error["code"] == "foreign_history_dirty" and "version 2 is dirty" in error["message"]
    assert query(db_url, "SELECT version, dirty FROM schema_migrations") == [(2, True)]
    assert query(db_url, "SELECT to_regclass('schema_migrations_before_adoption'), "
                         "to_regclass('schema_migrations_snapshots')") == [(None, None)]
