"""apply --forget-failed VERSION acknowledges the failed attempts of a version whose file is gone by appending one
'forgotten' row; plan stops listing them. A version with a file or without a failed attempt is refused (exit 2)."""
from __future__ import annotations

import json

from terminal_helpers import module_db, query, run  # noqa: F401  (module_db: a fixture)

BAD = "20260101_000000_bad"


def rows(url: str, schema: str) -> list[tuple]:
    return query(url, f"SELECT id, version, direction, status, error_message FROM {schema}.schema_migrations "
                      "ORDER BY id")


def test_a_failed_attempt_of_a_deleted_file_is_acknowledged_by_one_appended_row(module_db, tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / f"{BAD}.sql").write_text("-- DIRECTION: up\nSELECT 1/0;\n")
    args = ("--migrations-dir", str(directory), "--history-schema", "forget")
    assert run("apply", *args, db_url=module_db).returncode == 1

    refused = run("apply", *args, "--forget-failed", BAD, db_url=module_db)
    assert refused.returncode == 2 and "still has a file" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr

    (directory / f"{BAD}.sql").unlink()
    before = rows(module_db, "forget")
    assert "FAILED   " + BAD in run("plan", *args, db_url=module_db).stdout
    preview = run("apply", *args, "--forget-failed", BAD, "--dry-run", db_url=module_db)
    assert preview.returncode == 0 and preview.stdout.startswith("Would forget")
    assert rows(module_db, "forget") == before

    done = run("apply", *args, "--forget-failed", BAD, "--json", db_url=module_db)
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["forgotten"] == {"version": BAD, "failed_attempt_ids": [before[0][0]]}
    after = rows(module_db, "forget")
    assert after[:-1] == before  # append-only: the failed row is untouched
    assert after[-1][1:4] == (BAD, "up", "forgotten") and after[-1][4].startswith("forgotten: failed attempt(s)")

    plan = run("plan", *args, "--json", db_url=module_db)
    assert plan.returncode == 0 and json.loads(plan.stdout)["failed"] == []
    assert "FAILED" not in run("plan", *args, db_url=module_db).stdout

    again = run("apply", *args, "--forget-failed", BAD, db_url=module_db)
    assert again.returncode == 2 and "has no failed attempt to forget" in again.stderr
    assert rows(module_db, "forget") == after


def test_a_failed_attempt_that_committed_some_statements_is_not_forgotten(module_db, tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    first, partial = "20260101_000000_first", "20260102_000000_partial"
    (directory / f"{first}.sql").write_text("-- TRANSACTION: none\n-- DIRECTION: up\nSELECT 1/0;\nSELECT 1;\n")
    (directory / f"{partial}.sql").write_text("-- TRANSACTION: none\n-- DIRECTION: up\nCREATE TABLE kept (id int);\n"
                                              "SELECT 1/0;\nCREATE TABLE never (id int);\n")
    args = ("--migrations-dir", str(directory), "--history-schema", "forget_partial")
    assert run("apply", *args, "--target", first, db_url=module_db).returncode == 1
    (directory / f"{first}.sql").unlink()
    assert run("apply", *args, db_url=module_db).returncode == 1  # 1 of 3 statements completed
    assert run("apply", *args, db_url=module_db).returncode == 1  # the retry stops at once: "kept" exists
    (directory / f"{partial}.sql").unlink()
    before = rows(module_db, "forget_partial")
    assert [r[4].rpartition("(")[2] for r in before] == ["0 of 2 statements completed, not rolled back)",
                                                         "1 of 3 statements completed, not rolled back)",
                                                         "0 of 3 statements completed, not rolled back)"]

    # The newest attempt committed nothing, but the one before did: forgetting both would erase that trace.
    for dry_run in (("--dry-run",), ()):
        refused = run("apply", *args, "--forget-failed", partial, *dry_run, db_url=module_db)
        assert refused.returncode == 2, refused.stdout
        assert f"attempt {before[1][0]} of {partial} stopped part way" in refused.stderr
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "Traceback" not in refused.stderr and "--baseline " + partial in refused.stderr
        document = json.loads(run("apply", *args, "--forget-failed", partial, "--json", *dry_run,
                                  db_url=module_db).stdout)
        assert document["error"]["code"] == "not_forgettable" and "git checkout" in document["error"]["hint"]
    assert rows(module_db, "forget_partial") == before
    assert query(module_db, "SELECT to_regclass('kept') IS NOT NULL, to_regclass('never') IS NULL") == [(True, True)]

    # A first statement that failed committed nothing: that attempt is forgotten as any other.
    assert run("apply", *args, "--forget-failed", first, db_url=module_db).returncode == 0
    assert rows(module_db, "forget_partial")[-1][1:4] == (first, "up", "forgotten")
