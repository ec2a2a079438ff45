"""Transaction control inside a migration is an invalid migration (exit 2) before anything runs: a COMMIT or ROLLBACK
in the migration's own SQL would make the history lie about what the database holds.

Also: savepoints stay allowed in a transactional migration (they do not end it), and statements that need a
transaction block are invalid in a '-- TRANSACTION: none' migration.
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import history, migration, query, tables

FILE = "20260101_000000_change.sql"
VERSION = FILE[:-4]
NONE = "-- TRANSACTION: none\n"


def refused_with(result, line: int, statement: str) -> None:
    """Assert exit 2 with one error line naming the file, the line and the statement."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert re.search(re.escape(f"{FILE}:{line}: transaction control ({statement}) is not allowed"), result.stderr), \
        result.stderr


def test_a_commit_in_the_middle_is_refused_and_leaves_nothing_behind(db_url, migrations_dir, run_script):
    # Before: CREATE TABLE a committed, SELECT 1/0 failed, and history said "failed" for a table that existed.
    directory = migrations_dir({FILE: migration("CREATE TABLE a (id int);\nCOMMIT;\nSELECT 1/0;", "DROP TABLE a;")})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    refused_with(result, 3, "COMMIT")
    assert tables(db_url) == set()
    assert history(db_url) == []


def test_a_rollback_at_the_end_is_refused_instead_of_recorded_as_success(db_url, migrations_dir, run_script):
    # Before: the ROLLBACK undid CREATE TABLE x, then the success row was written for a table that did not exist.
    directory = migrations_dir({FILE: migration("CREATE TABLE x (id int);\nROLLBACK;", "DROP TABLE x;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_migration"
    assert error["message"].endswith(f"{FILE}:3: transaction control (ROLLBACK) is not allowed in a migration.")
    assert tables(db_url) == set()
    assert history(db_url) == []


CONTROL = {
    "begin": "BEGIN", "start_transaction": "START TRANSACTION", "commit": "COMMIT", "end": "END",
    "rollback": "ROLLBACK", "abort": "ABORT", "prepare_transaction": "PREPARE TRANSACTION 'm1'",
    "commit_prepared": "COMMIT PREPARED 'm1'", "rollback_prepared": "ROLLBACK PREPARED 'm1'",
}


# Every kind in a transactional migration; under '-- TRANSACTION: none' a few (the unit tests cover every kind
# in every section: the check does not depend on the mode).
CASES = [(s, "") for s in CONTROL.values()] + [(CONTROL[k], NONE) for k in ("begin", "commit", "rollback_prepared")]


@pytest.mark.parametrize(("statement", "header"), CASES,
                         ids=[k for k in CONTROL] + [f"{k}_transaction_none" for k in ("begin", "commit",
                                                                                        "rollback_prepared")])
def test_every_transaction_control_statement_is_refused_in_either_mode(statement, header, db_url, migrations_dir,
                                                                       run_script):
    up = f"CREATE TABLE a (id int);\n{statement};\nCREATE TABLE b (id int);"
    directory = migrations_dir({FILE: header + migration(up, "DROP TABLE b;\nDROP TABLE a;")})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    refused_with(result, 3 + header.count("\n"), statement)
    assert tables(db_url) == set()
    assert history(db_url) == []


@pytest.mark.parametrize("header", ["", NONE], ids=["transactional", "transaction_none"])
def test_a_down_section_that_commits_is_refused_by_apply_and_by_rollback_and_changes_nothing(
        header, db_url, migrations_dir, run_script):
    directory = migrations_dir({FILE: header + migration("CREATE TABLE a (id int);", "DROP TABLE a;\nCOMMIT;")})
    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)  # the file is invalid as a whole
    refused_with(applied, 6 + header.count("\n"), "COMMIT")
    assert tables(db_url) == set() and history(db_url) == []
    # Recorded as applied some other way (a baseline, an older tool): rollback refuses it too.
    query(db_url, "CREATE TABLE a (id int)")
    assert run_script("apply", "--migrations-dir", str(directory), "--baseline", VERSION, db_url=db_url).returncode == 0

    result = run_script("rollback", "--migrations-dir", str(directory), db_url=db_url)

    refused_with(result, 6 + header.count("\n"), "COMMIT")
    assert tables(db_url) == {"a", "schema_migrations"}
    assert history(db_url) == [(VERSION, "up", "success")]


@pytest.mark.parametrize("script", ["plan", "lint"])
def test_plan_and_lint_report_a_pending_migration_with_transaction_control_as_invalid(script, db_url, migrations_dir,
                                                                                      run_script):
    directory = migrations_dir({FILE: NONE + migration("CREATE INDEX CONCURRENTLY i ON t (id);\nBEGIN;")})

    result = run_script(script, "--migrations-dir", str(directory), db_url=db_url)

    refused_with(result, 4, "BEGIN")
    assert history(db_url) == []


def test_a_dry_run_refuses_transaction_control_too(db_url, migrations_dir, run_script):
    directory = migrations_dir({FILE: migration("CREATE TABLE a (id int);\nEND;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--dry-run", db_url=db_url)

    refused_with(result, 3, "END")
    assert tables(db_url) == set()


def test_savepoints_in_a_transactional_migration_work_and_keep_it_one_transaction(db_url, migrations_dir, run_script):
    up = ("CREATE TABLE kept (id int);\nSAVEPOINT before_scratch;\nCREATE TABLE scratch (id int);\n"
          "ROLLBACK TO SAVEPOINT before_scratch;\nRELEASE SAVEPOINT before_scratch;\nCREATE TABLE also_kept (id int);")
    directory = migrations_dir({FILE: migration(up, "DROP TABLE also_kept;\nDROP TABLE kept;")})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert tables(db_url) == {"kept", "also_kept", "schema_migrations"}
    assert history(db_url) == [(VERSION, "up", "success")]


def test_a_failure_after_a_savepoint_still_rolls_back_the_whole_migration(db_url, migrations_dir, run_script):
    up = "CREATE TABLE a (id int);\nSAVEPOINT s;\nCREATE TABLE b (id int);\nRELEASE SAVEPOINT s;\nSELECT 1/0;"
    directory = migrations_dir({FILE: migration(up, "DROP TABLE b;\nDROP TABLE a;")})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 1, result.stderr
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(VERSION, "up", "failed")]


NEEDS_A_BLOCK = {  # the rest of the list: tests/unit/test_statement_classes.py
    "savepoint": ("SAVEPOINT s", "SAVEPOINT"),
    "rollback_to": ("ROLLBACK TO SAVEPOINT s", "ROLLBACK TO SAVEPOINT"),
    "lock_table": ("LOCK TABLE a", "LOCK TABLE"),
    "set_local": ("SET LOCAL lock_timeout = '1s'", "SET LOCAL"),
}


@pytest.mark.parametrize(("sql", "name"), list(NEEDS_A_BLOCK.values()), ids=list(NEEDS_A_BLOCK))
def test_a_statement_needing_a_transaction_block_is_refused_under_transaction_none(sql, name, db_url, migrations_dir,
                                                                                   run_script):
    up = f"CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n{sql};"
    directory = migrations_dir({FILE: NONE + migration(up, "DROP TABLE a;")})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 2, result.stderr
    assert f"{FILE}:5: {name} needs a transaction block" in result.stderr
    assert tables(db_url) == set()
    assert history(db_url) == []
