"""The --json contract of issue 2: exactly one JSON document on stdout with schema_version 1, command, ok,
error on failure, and each command's documented keys. Progress and logs never reach stdout."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import history, migration, tables

A, B, C, M, F = ("20260101_000000_a", "20260102_000000_b", "20260103_000000_c", "20260104_000000_m",
                 "20260105_000000_f")
TWO = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;", name="Create A"),
       f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;")}
THREE_FAILING = {**TWO, f"{F}.sql": migration("CREATE TABLE f (id int);\nSELECT 1/0;", "DROP TABLE f;")}


def one_document(stdout: str) -> dict[str, Any]:
    """Return stdout parsed as JSON, failing unless it is exactly one JSON object and nothing else."""
    document, end = json.JSONDecoder().raw_decode(stdout.lstrip())
    assert stdout.lstrip()[end:].strip() == "", f"more than one document on stdout:\n{stdout}"
    assert isinstance(document, dict)
    return document


def assert_envelope(document: dict[str, Any], command: str, ok: bool) -> None:
    assert type(document["schema_version"]) is int and document["schema_version"] == 1
    assert document["command"] == command
    assert document["ok"] is ok
    if ok:
        assert document.get("error") is None
    else:
        error = document["error"]
        assert all(isinstance(error[key], str) and error[key] for key in ("code", "message", "hint")), error


def assert_version_objects(items: list[Any]) -> list[str]:
    """Every list item is an object carrying a string version and name; return the versions."""
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item, dict) and isinstance(item["version"], str) and isinstance(item["name"], str), item
    return [item["version"] for item in items]


PLAN_KEYS = ("applied", "pending", "drift", "missing", "out_of_order", "failed")


def test_plan_json_lists_every_category_as_objects_with_version_and_name(db_url, migrations_dir, run_script):
    directory = migrations_dir({**TWO, f"{M}.sql": migration("CREATE TABLE m (id int);", "DROP TABLE m;"),
                                f"{F}.sql": migration("SELECT 1/0;", "SELECT 1;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 1
    (directory / f"{C}.sql").write_text(TWO[f"{C}.sql"] + "-- edited\n")            # drift
    (directory / f"{M}.sql").unlink()                                                 # missing
    (directory / f"{B}.sql").write_text(migration("CREATE TABLE b (id int);"))        # pending, out of order
    before = history(db_url)

    result = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)

    document = one_document(result.stdout)
    assert_envelope(document, "plan", ok=document["ok"])
    lists = {key: assert_version_objects(document[key]) for key in PLAN_KEYS}
    assert lists == {"applied": [A, C, M], "pending": [B, F], "drift": [C], "missing": [M],
                     "out_of_order": [B], "failed": [F]}
    names = {item["version"]: item["name"] for key in PLAN_KEYS for item in document[key]}
    assert names == {A: "Create A", B: "b", C: "c", M: "m", F: "f"}
    assert history(db_url) == before
    assert result.returncode == 3, "plan exits 3 when it finds drift or missing files"


def test_plan_json_on_a_fresh_database_lists_everything_pending(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    result = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "plan", ok=True)
    assert {key: assert_version_objects(document[key]) for key in PLAN_KEYS} == {
        "applied": [], "pending": [A, C], "drift": [], "missing": [], "out_of_order": [], "failed": []}
    assert tables(db_url) == set()


def test_apply_json_lists_the_versions_applied_in_this_run(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "apply", ok=True)
    assert document["applied"] == [A, C]
    assert document["failed"] is None
    assert document["dry_run"] is False
    assert history(db_url) == [(A, "up", "success"), (C, "up", "success")]


def test_apply_json_with_nothing_pending_applies_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "apply", ok=True)
    assert (document["applied"], document["failed"], document["dry_run"]) == ([], None, False)
    assert history(db_url) == [(A, "up", "success"), (C, "up", "success")]


def test_apply_dry_run_json_applies_nothing_and_says_dry_run(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    result = run_script("apply", "--migrations-dir", str(directory), "--dry-run", "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "apply", ok=True)
    assert (document["applied"], document["failed"], document["dry_run"]) == ([], None, True)
    assert tables(db_url) == set()


def test_apply_json_names_the_failed_migration_and_its_error(db_url, migrations_dir, run_script):
    directory = migrations_dir(THREE_FAILING)

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 1
    document = one_document(result.stdout)
    assert_envelope(document, "apply", ok=False)
    assert document["applied"] == [A, C]
    assert document["dry_run"] is False
    failed = document["failed"]
    assert failed["version"] == F
    assert isinstance(failed["error"], str) and "division by zero" in failed["error"]
    assert history(db_url) == [(A, "up", "success"), (C, "up", "success"), (F, "up", "failed")]
    assert "f" not in tables(db_url)


def test_rollback_json_lists_versions_in_the_order_undone(db_url, migrations_dir, run_script):
    directory = migrations_dir({**TWO, f"{M}.sql": migration("CREATE TABLE m (id int);", "DROP TABLE m;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0

    result = run_script("rollback", "--migrations-dir", str(directory), "--to", A, "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "rollback", ok=True)
    assert document["rolled_back"] == [M, C]
    assert document["dry_run"] is False
    assert tables(db_url) == {"a", "schema_migrations"}


def test_rollback_dry_run_json_rolls_back_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0

    result = run_script("rollback", "--migrations-dir", str(directory), "--dry-run", "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "rollback", ok=True)
    assert (document["rolled_back"], document["dry_run"]) == ([], True)
    assert history(db_url) == [(A, "up", "success"), (C, "up", "success")]


def test_rollback_json_with_nothing_applied_rolls_back_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    result = run_script("rollback", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "rollback", ok=True)
    assert (document["rolled_back"], document["dry_run"]) == ([], False)
    assert history(db_url) == []


def test_generate_json_gives_the_path_and_version_of_the_new_file(migrations_dir, run_script, tmp_path):
    directory = tmp_path / "new_dir"

    result = run_script("generate", "--migrations-dir", str(directory), "--name", "add_users",
                        "--up", "CREATE TABLE users (id int);", "--down", "DROP TABLE users;", "--json")

    assert result.returncode == 0, result.stderr
    document = one_document(result.stdout)
    assert_envelope(document, "generate", ok=True)
    path = Path(document["path"])
    assert path.is_file() and path.parent.resolve() == directory.resolve()
    assert document["version"] == path.stem and path.stem.endswith("_add_users")
    assert "CREATE TABLE users (id int);" in path.read_text()


REFUSALS = {  # command, edit an applied file first?, exit code: failures still print one document with error
    "apply_with_drift": (("apply",), True, 3),
    "rollback_with_drift": (("rollback",), True, 3),
    "apply_unknown_target": (("apply", "--target", "20990101_000000_nope"), False, 2),
    "rollback_to_unknown_version": (("rollback", "--to", "20990101_000000_nope"), False, 2),
    "rollback_to_unapplied_version": (("rollback", "--to", B), False, 2),
}


@pytest.mark.parametrize(("command", "drift", "exit_code"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_refusals_print_one_document_with_an_error_and_nothing_done(command, drift, exit_code, db_url,
                                                                    migrations_dir, run_script):
    directory = migrations_dir(TWO)
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{B}.sql").write_text(migration("CREATE TABLE b (id int);", "DROP TABLE b;"))
    if drift:
        (directory / f"{C}.sql").write_text(TWO[f"{C}.sql"] + "-- edited\n")
    before = history(db_url)

    result = run_script(command[0], "--migrations-dir", str(directory), *command[1:], "--json", db_url=db_url)

    assert result.returncode == exit_code, result.stdout
    document = one_document(result.stdout)
    assert_envelope(document, command[0], ok=False)
    assert document.get("applied" if command[0] == "apply" else "rolled_back", []) == []
    assert history(db_url) == before
    assert tables(db_url) == {"a", "c", "schema_migrations"}


WITH_M = {**TWO, f"{M}.sql": migration("CREATE TABLE m (id int);", "DROP TABLE m;")}
RUNS = {  # command, files, applied first?, exit code, history afterwards
    "apply": (("apply",), WITH_M, False, 0, [(A, "up", "success"), (C, "up", "success"), (M, "up", "success")]),
    "apply_failing": (("apply",), THREE_FAILING, False, 1,
                      [(A, "up", "success"), (C, "up", "success"), (F, "up", "failed")]),
    "rollback_to": (("rollback", "--to", A), WITH_M, True, 0,
                    [(A, "up", "success"), (C, "up", "success"), (M, "up", "success"),
                     (M, "down", "success"), (C, "down", "success")]),
}


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize(("command", "files", "apply_first", "exit_code", "after"), list(RUNS.values()), ids=list(RUNS))
def test_progress_goes_to_stderr_never_into_the_json_document(command, files, apply_first, exit_code, after, as_json,
                                                              db_url, migrations_dir, run_script):
    directory = migrations_dir(files)
    if apply_first:
        assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0

    result = run_script(command[0], "--migrations-dir", str(directory), *command[1:],
                        *(["--json"] if as_json else []), db_url=db_url)

    assert result.returncode == exit_code, result.stderr
    if as_json:
        document = one_document(result.stdout)       # nothing but the document on stdout
        assert document["command"] == command[0]
    else:
        assert result.stdout.strip() and not result.stdout.lstrip().startswith("{")
        assert "Traceback" not in result.stderr
    assert history(db_url) == after
