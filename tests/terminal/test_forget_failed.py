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
