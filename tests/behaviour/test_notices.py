"""RAISE NOTICE / WARNING from a migration reaches the user (issue 9): on stderr for humans, per version in JSON,
for transactional and `-- TRANSACTION: none` migrations alike; the tool's own statements add no noise.
Real subprocesses on a real server.
"""
from __future__ import annotations

import json

import pytest

from conftest import history, migration

A = "20260101_000000_say_hello"
B = "20260102_000000_quiet"
RAISES = "DO $$ BEGIN RAISE NOTICE 'hello %', 1; RAISE WARNING 'careful'; END $$;"
KINDS = {"transactional": migration(RAISES + "\nCREATE TABLE said (id int);", "DROP TABLE said;"),
         "non_transactional": "-- TRANSACTION: none\n" + migration(RAISES + "\nCREATE TABLE said (id int);",
                                                                   "DROP TABLE said;")}


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
def test_human_apply_shows_the_migrations_notices_and_warnings_on_stderr(kind, db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": KINDS[kind]})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello 1" in result.stderr and "careful" in result.stderr, result.stderr
    assert result.stderr.index("hello 1") < result.stderr.index("careful")
    assert "hello 1" not in result.stdout  # stdout stays the run's summary
    assert history(db_url) == [(A, "up", "success")]


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
def test_json_apply_lists_the_notices_of_each_migration_under_its_version(kind, db_url, migrations_dir,
                                                                          run_script):
    directory = migrations_dir({f"{A}.sql": KINDS[kind],
                                f"{B}.sql": migration("CREATE TABLE quiet (id int);", "DROP TABLE quiet;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)  # one document: the notices did not leak onto stdout as text
    assert doc["applied"] == [A, B]
    said = doc["notices"][A]
    assert len(said) == 2, said
    assert "NOTICE" in said[0] and "hello 1" in said[0], said
    assert "WARNING" in said[1] and "careful" in said[1], said
    assert not doc["notices"].get(B), doc["notices"]  # a quiet migration has none
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]


def test_the_tools_own_statements_add_no_notices_on_a_second_run(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": KINDS["transactional"]})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    directory = migrations_dir({f"{B}.sql": migration("CREATE TABLE quiet (id int);", "DROP TABLE quiet;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["applied"] == [B]
    assert not any(doc["notices"].values()), doc["notices"]  # e.g. no "relation already exists, skipping"
    assert "already exists" not in result.stderr and "hello 1" not in result.stderr
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]
