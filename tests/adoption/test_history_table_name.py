"""--history-table NAME / MIGRATIONS_TABLE name the history table (the flag wins); the snapshot table follows it.

Two names can share one schema (their indexes are named after them), suggested commands repeat the name, and a
name that is not plain lowercase SQL is a usage error before anything connects.
"""
from __future__ import annotations

import json

import pytest

from conftest import migration, query

A = "20260101_000000_create_items"
B = "20260102_000000_create_more"
FILES_A = {f"{A}.sql": migration("CREATE TABLE items (id int);", "DROP TABLE items;")}
FILES_B = {f"{B}.sql": migration("CREATE TABLE more_items (id int);", "DROP TABLE more_items;")}
TOOL_RELATIONS = """
SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'i') AND c.relname NOT LIKE '%%items%%' ORDER BY 1
"""


def relations(db_url: str, schema: str = "public") -> list[str]:
    return [r[0] for r in query(db_url, TOOL_RELATIONS, (schema,))]


def rows(db_url: str, table: str) -> list[tuple[str, str, str]]:
    return query(db_url, f"SELECT version, direction, status FROM {table} ORDER BY id")


def test_the_flag_names_the_history_and_snapshot_tables_and_wins_over_the_environment(
        db_url, migrations_dir, run_script):
    folder = str(migrations_dir(FILES_A))
    env = {"MIGRATIONS_TABLE": "env_history"}
    result = run_script("apply", "--migrations-dir", folder, "--history-table", "app_history", env=env,
                        db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert relations(db_url) == ["app_history", "app_history_pkey", "app_history_snapshots",
                                 "app_history_snapshots_pkey", "idx_app_history_version_dir"]
    assert rows(db_url, "app_history") == [(A, "up", "success")]
    assert query(db_url, "SELECT count(*) FROM app_history_snapshots") == [(1,)]

    # MIGRATIONS_TABLE alone: the environment's name, where nothing is applied yet
    result = run_script("plan", "--migrations-dir", folder, "--json", env=env, db_url=db_url)
    assert [m["version"] for m in json.loads(result.stdout)["pending"]] == [A]
    assert "env_history" not in relations(db_url)  # plan creates nothing

    result = run_script("rollback", "--migrations-dir", folder, "--json", env={"MIGRATIONS_TABLE": "app_history"},
                        db_url=db_url)
    assert result.returncode == 0, result.stdout
    assert rows(db_url, "app_history")[-1] == (A, "down", "success")
    assert "schema_migrations" not in relations(db_url)


def test_suggested_commands_repeat_the_history_table_and_schema(db_url, migrations_dir, run_script):
    result = run_script("plan", "--migrations-dir", str(migrations_dir(FILES_A)), "--json", "--history-schema",
                        "tool", "--history-table", "app_history", db_url=db_url)
    assert result.returncode == 0, result.stdout
    document = json.loads(result.stdout)
    assert "--history-schema tool --history-table app_history" in document["next_command"]


def test_two_history_tables_share_one_schema_each_with_its_own_index_and_snapshots(
        db_url, migrations_dir, run_script):
    first = run_script("apply", "--migrations-dir", str(migrations_dir(FILES_A, "a")), "--history-table",
                       "first_history", db_url=db_url)
    second = run_script("apply", "--migrations-dir", str(migrations_dir(FILES_B, "b")), "--history-table",
                        "second_history", "--history-schema", "public", db_url=db_url)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert {"idx_first_history_version_dir", "idx_second_history_version_dir", "first_history_snapshots",
            "second_history_snapshots"} <= set(relations(db_url))
    assert rows(db_url, "first_history") == [(A, "up", "success")]
    assert rows(db_url, "second_history") == [(B, "up", "success")]
    # each unique index guards its own table: a second success row of B is refused in second_history only
    duplicate = ("INSERT INTO {} (version, name, checksum, direction, status) "
                 f"VALUES ('{B}', 'x', 'x', 'up', 'success')")
    query(db_url, duplicate.format("first_history"))
    with pytest.raises(Exception, match="idx_second_history_version_dir"):
        query(db_url, duplicate.format("second_history"))
    query(db_url, f"DELETE FROM first_history WHERE version = '{B}'")

    result = run_script("rollback", "--migrations-dir", str(migrations_dir(FILES_B, "b")), "--history-table",
                        "second_history", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert rows(db_url, "second_history")[-1] == (B, "down", "success")
    assert rows(db_url, "first_history") == [(A, "up", "success")]


def test_a_bad_history_table_name_is_a_one_line_usage_error_before_connecting(db_url, migrations_dir, run_script):
    folder = str(migrations_dir(FILES_A))
    for name in ["Schema_Migrations", "1history", 'a"b', "x" * 47, ""]:
        result = run_script("apply", "--migrations-dir", folder, f"--history-table={name}", "--json", db_url=db_url)
        assert result.returncode == 2, result.stdout
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "usage" and "lowercase letters" in error["message"]
    human = run_script("apply", "--migrations-dir", folder, env={"MIGRATIONS_TABLE": "my-history"}, db_url=db_url)
    assert human.returncode == 2 and len(human.stderr.strip().splitlines()) == 1, human.stderr
    assert "Traceback" not in human.stderr and "MIGRATIONS_TABLE 'my-history'" in human.stderr
    assert relations(db_url) == []


def test_the_longest_name_allowed_fits_every_derived_name(db_url, migrations_dir, run_script):
    name = "h" * 46
    result = run_script("apply", "--migrations-dir", str(migrations_dir(FILES_A)), "--history-table", name,
                        db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert {name, f"{name}_snapshots", f"idx_{name}_version_dir"} <= set(relations(db_url))
