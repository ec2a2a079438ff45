"""A folder imported from golang-migrate applies, rolls all the way back (rollback --to the first version, then a
plain rollback for the first one), applies again, and plan is clean at the end."""
from __future__ import annotations

import re

from conftest import ROOT, history, query, tables
from foreign_tools import json_of, run_import

VERSIONS = ["20000101_000001_create_users", "20000101_000002_add_user_name", "20000101_000003_backfill_names",
            "20000101_000004_index_user_email"]


def test_an_imported_golang_migrate_folder_applies_rolls_all_the_way_back_and_applies_again(run_script, db_url,
                                                                                            tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "golang-migrate", target).returncode == 0

    def run(*args: str):
        result = run_script(*args, "--migrations-dir", str(target), db_url=db_url)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("apply")
    assert query(db_url, "SELECT indexname FROM pg_indexes WHERE indexname = 'users_email_idx'") == [
        ("users_email_idx",)]
    run("rollback", "--to", VERSIONS[0])
    run("rollback")  # the first migration: rollback with no --to undoes the latest applied one
    assert tables(db_url) == {"schema_migrations"}
    assert [v for v, d, s in history(db_url) if d == "down" and s == "success"] == VERSIONS[::-1]
    run("apply")
    plan = json_of(run("plan", "--json"))

    assert [r["version"] for r in plan["applied"]] == VERSIONS and plan["pending"] == []
    assert plan["schema_check"] == "clean" and plan["drift"] == [] and plan["failed"] == []
    assert tables(db_url) == {"schema_migrations", "users"}
    # the reverse path: the documented query lists the applied versions in order, from plain SQL
    documented = re.search(r"```sql\n(SELECT version, name, applied_at.*?)```",
                           (ROOT / "docs" / "switching.md").read_text(), re.DOTALL)
    assert [r[0] for r in query(db_url, documented[1])] == VERSIONS
