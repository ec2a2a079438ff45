"""Confirm-then-execute: a plan id runs exactly the previewed plan, and any change since refuses with plan_changed."""
import json

import pytest

from conftest import history, migration, query, tables

A = "20260101_000000_a.sql"
B = "20260102_000000_b.sql"
FILES = {A: migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
         B: migration("CREATE TABLE b (id int);", "DROP TABLE b;")}


def run_json(run_script, name, *args, db_url):
    result = run_script(name, *args, "--json", db_url=db_url)
    return result.returncode, json.loads(result.stdout)


def test_plan_and_dry_run_agree_on_the_id_and_a_matching_id_executes(db_url, migrations_dir, run_script):
    directory = str(migrations_dir(FILES))
    _, planned = run_json(run_script, "plan", "--migrations-dir", directory, db_url=db_url)
    _, preview = run_json(run_script, "apply", "--dry-run", "--migrations-dir", directory, db_url=db_url)
    assert planned["plan_id"] == preview["plan_id"]
    code, applied = run_json(run_script, "apply", "--plan-id", preview["plan_id"], "--migrations-dir", directory,
                             db_url=db_url)
    assert code == 0 and applied["applied"] == ["20260101_000000_a", "20260102_000000_b"]
    assert {"a", "b"} <= tables(db_url)


def add_file(directory, db_url, run_script):
    (directory / "20260103_000000_c.sql").write_text(migration("CREATE TABLE c (id int);", "DROP TABLE c;"))


def edit_pending_file(directory, db_url, run_script):
    (directory / B).write_text(migration("CREATE TABLE b (id bigint);", "DROP TABLE b;"))


def another_runner_applied(directory, db_url, run_script):
    assert run_script("apply", "--target", "20260101_000000_a", "--migrations-dir", str(directory),
                      db_url=db_url).returncode == 0


@pytest.mark.parametrize("change", [add_file, edit_pending_file, another_runner_applied],
                         ids=["new file", "edited file", "another runner applied"])
def test_apply_refuses_a_changed_plan_and_executes_nothing(db_url, migrations_dir, run_script, change):
    directory = migrations_dir(FILES)
    _, preview = run_json(run_script, "apply", "--dry-run", "--migrations-dir", str(directory), db_url=db_url)
    change(directory, db_url, run_script)
    before = (history(db_url), tables(db_url))
    code, doc = run_json(run_script, "apply", "--plan-id", preview["plan_id"], "--migrations-dir", str(directory),
                         db_url=db_url)
    assert code == 3
    assert doc["error"]["code"] == "plan_changed" and doc["error"]["hint"]
    assert (history(db_url), tables(db_url)) == before


def test_rollback_with_the_id_of_a_step_rolled_back_since_the_preview_rolls_back_nothing_more(db_url, migrations_dir,
                                                                                               run_script):
    directory = str(migrations_dir(FILES))
    assert run_script("apply", "--migrations-dir", directory, db_url=db_url).returncode == 0
    _, preview = run_json(run_script, "rollback", "--dry-run", "--migrations-dir", directory, db_url=db_url)
    assert run_script("rollback", "--migrations-dir", directory, db_url=db_url).returncode == 0
    before = history(db_url)
    code, doc = run_json(run_script, "rollback", "--plan-id", preview["plan_id"], "--migrations-dir", directory,
                         db_url=db_url)
    # The confirmed plan (roll back the newest) has run to the end: a retried call, never a rollback of the next one.
    assert code == 0 and doc["retried"] is True and doc["rolled_back"] == []
    assert history(db_url) == before and "a" in tables(db_url)


def test_rollback_with_matching_id_and_same_to_executes(db_url, migrations_dir, run_script):
    directory = str(migrations_dir(FILES))
    assert run_script("apply", "--migrations-dir", directory, db_url=db_url).returncode == 0
    _, preview = run_json(run_script, "rollback", "--dry-run", "--to", "20260101_000000_a",
                          "--migrations-dir", directory, db_url=db_url)
    code, doc = run_json(run_script, "rollback", "--to", "20260101_000000_a", "--plan-id", preview["plan_id"],
                         "--migrations-dir", directory, db_url=db_url)
    assert code == 0 and doc["rolled_back"] == ["20260102_000000_b"]
    assert "b" not in tables(db_url) and "a" in tables(db_url)


def test_human_output_shows_the_plan_id(db_url, migrations_dir, run_script):
    directory = str(migrations_dir(FILES))
    _, preview = run_json(run_script, "apply", "--dry-run", "--migrations-dir", directory, db_url=db_url)
    for name, args in (("plan", ()), ("apply", ("--dry-run",))):
        result = run_script(name, *args, "--migrations-dir", directory, db_url=db_url)
        assert preview["plan_id"] in result.stdout
    assert query(db_url, "SELECT to_regclass('schema_migrations')") == [(None,)]
