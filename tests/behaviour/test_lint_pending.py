"""Silencing and an applied history (issue 10, item 6): lint --pending judges only the files not yet applied to
DB_URL's database, so a project with an existing history can pass CI; and a `-- risk: ignore` comment added to an
already-applied file is drift, which the refusal's hint says in so many words."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import SCRIPTS, history, migration, tables

A, B, C = "20260101_000000_create_items", "20260102_000000_index_items", "20260103_000000_index_items_again"
ITEMS = migration("CREATE TABLE items (id int, name text);", "DROP TABLE items;")
INDEX_ON_ITEMS = migration("CREATE INDEX idx_items_name ON items (name);", "DROP INDEX idx_items_name;")
SECOND_INDEX = migration("CREATE INDEX idx_items_id ON items (id);", "DROP INDEX idx_items_id;")
IGNORE = "-- risk: ignore adding_index_non_concurrently because items is tiny\n"
PENDING = ("import sys; from pathlib import Path; from migration_core import commands; "
           "print(' '.join(sorted(commands.pending_versions(Path(sys.argv[1])))))")


def pending_versions(directory: Path, db_url: str) -> list[str]:
    """Call commands.pending_versions in a fresh process, as lint --pending does."""
    env = {k: v for k, v in os.environ.items() if k not in ("DB_URL", "MIGRATIONS_SCHEMA")} | {"DB_URL": db_url}
    done = subprocess.run([sys.executable, "-c", PENDING, str(directory)], cwd=SCRIPTS, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_pending_versions_are_the_files_not_yet_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": ITEMS, f"{B}.sql": INDEX_ON_ITEMS})
    assert run_script("apply", "--migrations-dir", str(directory), "--allow-risk", db_url=db_url).returncode == 0
    (directory / f"{C}.sql").write_text(SECOND_INDEX, encoding="utf-8")

    assert pending_versions(directory, db_url) == [C]


def test_pending_versions_on_a_fresh_database_are_every_file_and_nothing_is_created(db_url, migrations_dir):
    directory = migrations_dir({f"{A}.sql": ITEMS, f"{B}.sql": INDEX_ON_ITEMS})

    assert pending_versions(directory, db_url) == [A, B]
    assert tables(db_url) == set() and history(db_url) == []


def test_a_risk_ignore_comment_added_to_an_applied_file_is_drift_and_the_hint_says_so(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": ITEMS, f"{B}.sql": INDEX_ON_ITEMS})
    assert run_script("apply", "--migrations-dir", str(directory), "--allow-risk", db_url=db_url).returncode == 0
    (directory / f"{B}.sql").write_text(INDEX_ON_ITEMS.replace("CREATE INDEX", IGNORE + "CREATE INDEX"))
    (directory / f"{C}.sql").write_text(SECOND_INDEX, encoding="utf-8")

    applied = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert applied.returncode == 3 and plan.returncode == 3
    for document in (json.loads(applied.stdout), json.loads(plan.stdout)):
        assert document["error"]["code"] == "drift_detected"
        assert "risk: ignore" in document["error"]["hint"] and "--accept-checksum" in document["error"]["hint"]
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]


def test_lint_pending_judges_only_the_files_not_yet_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": ITEMS, f"{B}.sql": INDEX_ON_ITEMS})
    assert run_script("apply", "--migrations-dir", str(directory), "--allow-risk", db_url=db_url).returncode == 0
    (directory / f"{C}.sql").write_text(migration("CREATE TABLE other (id int);", "DROP TABLE other;"))
    before = history(db_url)

    everything = run_script("lint", "--migrations-dir", str(directory), "--json", db_url=db_url)
    pending = run_script("lint", "--migrations-dir", str(directory), "--pending", "--json", db_url=db_url)

    assert everything.returncode == 3, "offline, B's index on an existing table is a high finding"
    assert pending.returncode == 0, pending.stdout
    assert [m["version"] for m in json.loads(pending.stdout)["migrations"]] == [C]
    assert history(db_url) == before


def test_lint_pending_still_fails_on_a_risky_file_to_come(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": ITEMS})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{C}.sql").write_text(SECOND_INDEX, encoding="utf-8")

    result = run_script("lint", "--migrations-dir", str(directory), "--pending", "--json", db_url=db_url)

    assert result.returncode == 3, result.stdout
    document = json.loads(result.stdout)
    assert document["error"]["code"] == "risk_found"
    assert [(m["version"], m["risk"]) for m in document["migrations"]] == [(C, "high")]
