"""The design's example works as the design shows it (issue 10, item 7): migrations/ holds create_users_table and a
plain CREATE INDEX on the new users table, and they apply with default flags on an empty database; the
CONCURRENTLY form lives in examples/production/ and applies too."""
from __future__ import annotations

import json
import shutil

from conftest import ROOT, history, query, tables

USERS, INDEX = "20260208_120000_create_users_table", "20260208_121500_add_index_on_users_email"
PRODUCTION = ROOT / "examples" / "production"


def index_names(db_url: str) -> set[str]:
    return {r[0] for r in query(db_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'users'")}


def test_the_shipped_index_migration_is_the_designs_plain_create_index():
    text = (ROOT / "migrations" / f"{INDEX}.sql").read_text(encoding="utf-8")

    assert "CREATE INDEX idx_users_email ON users(email);" in text
    assert "CONCURRENTLY" not in text and "TRANSACTION:" not in text and "risk: ignore" not in text
    assert sorted(p.name for p in (ROOT / "migrations").glob("*.sql")) == [f"{USERS}.sql", f"{INDEX}.sql"]


def test_the_designs_two_migrations_apply_with_default_flags_on_an_empty_database(db_url, tmp_path, run_script):
    directory = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", directory)

    preview = json.loads(run_script("apply", "--migrations-dir", str(directory), "--dry-run", "--json",
                                    db_url=db_url).stdout)
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert preview["would_refuse"] is None and preview["run_command"] is not None
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["applied"] == [USERS, INDEX]
    assert "idx_users_email" in index_names(db_url) and "users" in tables(db_url)
    assert history(db_url) == [(USERS, "up", "success"), (INDEX, "up", "success")]


def test_the_production_form_builds_the_index_concurrently_and_applies_and_rolls_back(db_url, run_script):
    text = (PRODUCTION / f"{INDEX}.sql").read_text(encoding="utf-8")
    assert "-- TRANSACTION: none" in text and "CREATE INDEX CONCURRENTLY" in text
    assert "when" in (PRODUCTION / "README.md").read_text(encoding="utf-8").lower()

    applied = run_script("apply", "--migrations-dir", str(PRODUCTION), "--json", db_url=db_url)
    assert applied.returncode == 0, applied.stdout
    assert json.loads(applied.stdout)["applied"] == [USERS, INDEX]
    assert "idx_users_email_lower" in index_names(db_url)

    back = run_script("rollback", "--migrations-dir", str(PRODUCTION), "--json", db_url=db_url)
    assert back.returncode == 0, back.stdout
    assert "idx_users_email_lower" not in index_names(db_url) and "users" in tables(db_url)


def test_lint_of_the_pending_design_files_against_an_empty_database_finds_nothing_to_refuse(db_url, run_script):
    result = run_script("lint", "--migrations-dir", str(ROOT / "migrations"), "--pending", "--db", "--json",
                        db_url=db_url)

    assert result.returncode == 0, result.stdout
    document = json.loads(result.stdout)
    assert [m["version"] for m in document["migrations"]] == [USERS, INDEX]
    assert [m["risk"] for m in document["migrations"]] == [None, None]
    assert history(db_url) == []
