"""The history row and COMMIT travel in one round trip: a run that lost its runner lock during a migration still
writes no row and rolls the migration back (lock_lost), and a version recorded meanwhile by another run is
still refused (already_recorded), with nothing applied."""
from __future__ import annotations

import json

from conftest import history, migration, tables

KILL_LOCK = ("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
             "WHERE application_name = 'migration-assistant-lock' AND datname = current_database();\n")


def test_a_lock_lost_inside_a_migration_rolls_it_back_and_records_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir({
        "20240101_000000_first.sql": migration("CREATE TABLE first (id int);", "DROP TABLE first;"),
        "20240101_000001_second.sql": migration(KILL_LOCK + "CREATE TABLE second (id int);", "DROP TABLE second;"),
    })
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 3, result.stdout + result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "lock_lost" and "20240101_000001_second" in error["message"]
    assert "Traceback" not in result.stderr
    assert "second" not in tables(db_url) and "first" in tables(db_url)
    assert [row for row in history(db_url) if row[2] == "success"] == [("20240101_000000_first", "up", "success")]


def test_a_row_written_by_another_run_meanwhile_is_refused_and_the_migration_rolled_back(db_url, migrations_dir,
                                                                                       run_script):
    # The migration itself writes the row another run would have written: the INSERT of the tool then fails.
    steal = ("INSERT INTO schema_migrations (version, name, checksum, direction, status) "
             "VALUES ('20240101_000000_only', 'only', 'x', 'up', 'success');\n")
    directory = migrations_dir({"20240101_000000_only.sql": migration(steal + "CREATE TABLE only_t (id int);",
                                                                      "DROP TABLE only_t;")})
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 3, result.stdout + result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "already_recorded"
    assert "only_t" not in tables(db_url)
    assert history(db_url) == []
