"""A section holding only comments, one of them `-- noop: REASON`, is a recorded no-op.

A no-op down makes the migration reversible (an empty down still means irreversible); its rollback runs nothing and
is recorded like any other. A no-op up (in a `-- TRANSACTION: none` file too) is applied and recorded the same way.
A noop without a reason, or beside SQL, is an invalid file; a truly empty up stays an error whose hint names the form.
"""
from __future__ import annotations

import json

import pytest

from conftest import history, migration, query, tables

KEEP = "20260101_000000_create_items"
FIX = "20260102_000000_emptied_data_fix"
FILES = {
    f"{KEEP}.sql": migration("CREATE TABLE items (id int);",
                             "-- golang-migrate's down file was empty.\n-- noop: items stay; dropping loses data"),
    f"{FIX}.sql": "-- TRANSACTION: none\n" + migration("-- noop: the fix ran by hand in 2024",
                                                       "-- noop: nothing to undo"),
}


def test_noop_up_and_down_apply_and_roll_back_as_recorded_steps_that_run_nothing(db_url, migrations_dir,
                                                                                run_script):
    folder = str(migrations_dir(FILES))
    preview = run_script("apply", "--migrations-dir", folder, "--dry-run", "--json", db_url=db_url)
    assert preview.returncode == 0, preview.stdout
    steps = json.loads(preview.stdout)["steps"]
    assert [(s["version"], s["reversible"]) for s in steps] == [(KEEP, True), (FIX, True)]
    assert steps[1]["sql"].strip() == "-- noop: the fix ran by hand in 2024"

    applied = run_script("apply", "--migrations-dir", folder, "--json", db_url=db_url)
    assert applied.returncode == 0, applied.stdout
    assert json.loads(applied.stdout)["applied"] == [KEEP, FIX]
    assert history(db_url) == [(KEEP, "up", "success"), (FIX, "up", "success")]

    preview = run_script("rollback", "--migrations-dir", folder, "--dry-run", "--json", db_url=db_url)
    assert preview.returncode == 0, preview.stdout
    assert json.loads(preview.stdout)["steps"][0]["sql"].strip() == "-- noop: nothing to undo"
    for _ in range(2):
        result = run_script("rollback", "--migrations-dir", folder, "--json", db_url=db_url)
        assert result.returncode == 0, result.stdout
    assert history(db_url)[2:] == [(FIX, "down", "success"), (KEEP, "down", "success")]
    assert "items" in tables(db_url)  # the no-op down ran nothing
    plan = json.loads(run_script("plan", "--migrations-dir", folder, "--json", db_url=db_url).stdout)
    assert [m["version"] for m in plan["pending"]] == [KEEP, FIX] and plan["applied"] == []


@pytest.mark.parametrize("section, problem", [
    ("-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\n-- noop:\n", "without a reason"),
    ("-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\n-- noop:   \n-- more words\n",
     "without a reason"),
    ("-- DIRECTION: up\n-- noop: kept\nCREATE TABLE t (id int);\n", "beside SQL"),
    ("-- DIRECTION: up\n-- nothing here\n", "up section is empty"),
], ids=["no reason", "blank reason", "beside SQL", "empty up"])
def test_a_noop_needs_a_reason_and_no_sql_and_an_empty_up_stays_an_error(db_url, migrations_dir, run_script,
                                                                         section, problem):
    folder = str(migrations_dir({"20260103_000000_bad.sql": section}))
    result = run_script("apply", "--migrations-dir", folder, "--json", db_url=db_url)
    assert result.returncode == 2, result.stdout
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_migration"
    expected = {"without a reason": "'-- noop:' without a reason", "beside SQL": "'-- noop:' in a section that holds SQL",
                "up section is empty": "the up section is empty"}[problem]
    assert expected in error["message"] and "20260103_000000_bad.sql:" in error["message"]
    if problem == "up section is empty":
        assert "-- noop: REASON" in error["hint"]
    assert query(db_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_lint_accepts_noop_sections(migrations_dir, run_script):
    result = run_script("lint", "--migrations-dir", str(migrations_dir(FILES)), "--json")
    assert result.returncode == 0, result.stdout


def test_an_empty_down_still_means_irreversible(db_url, migrations_dir, run_script):
    folder = str(migrations_dir({f"{KEEP}.sql": migration("CREATE TABLE items (id int);", "-- nothing")}))
    assert run_script("apply", "--migrations-dir", folder, db_url=db_url).returncode == 0
    result = run_script("rollback", "--migrations-dir", folder, "--json", db_url=db_url)
    assert result.returncode == 3 and json.loads(result.stdout)["error"]["code"] == "irreversible"
