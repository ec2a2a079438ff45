"""lint_migrations.py as users and CI run it: offline, no DB_URL; exit codes for --fail-on, --pg-version,
the JSON document, and bad input (issue 5)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, migration

CORPUS = ROOT / "tests" / "data" / "risk"
CLEAN = {"20260101_000000_create_users.sql": migration("CREATE TABLE users (id bigint PRIMARY KEY, email text);\n"
                                                       "CREATE INDEX users_email_idx ON users (email);",
                                                       "DROP INDEX users_email_idx;")}
RENAME = {"20260102_000000_rename_email.sql": migration("ALTER TABLE users RENAME COLUMN email TO mail;")}
INDEX = {"20260103_000000_index_email.sql": migration("SELECT 1;\nCREATE INDEX users_mail_idx ON users (mail);",
                                                      "DROP INDEX users_mail_idx;")}


def lint_json(run_script, directory: Path, *args: str) -> tuple[int, dict]:
    result = run_script("lint", "--migrations-dir", str(directory), "--json", *args)
    return result.returncode, json.loads(result.stdout)


def rules_of(document: dict) -> list[str]:
    return [f["rule"] for m in document["migrations"] for f in m["findings"] if f["ignored_reason"] is None]


def test_lint_exits_0_on_safe_migrations_and_needs_no_database(run_script, migrations_dir):
    result = run_script("lint", "--migrations-dir", str(migrations_dir(CLEAN)))

    assert result.returncode == 0, result.stderr
    assert "1 migration(s) checked for PostgreSQL 18: 0 with findings" in result.stdout
    assert result.stderr == ""


def test_lint_exits_3_on_a_high_finding_and_names_rule_file_line_and_hint(run_script, migrations_dir):
    result = run_script("lint", "--migrations-dir", str(migrations_dir(CLEAN | INDEX)))

    assert result.returncode == 3
    assert "20260103_000000_index_email  risk: high, rollback: none" in result.stdout
    assert "high     up:3     adding_index_non_concurrently: CREATE INDEX users_mail_idx" in result.stdout
    assert "hint: Use CREATE INDEX CONCURRENTLY" in result.stdout
    assert result.stderr.startswith("error: 1 risk finding(s) at or above high.")


@pytest.mark.parametrize(("fail_on", "exit_code"), [("high", 0), ("medium", 3), ("low", 3)])
def test_fail_on_sets_the_severity_that_fails(run_script, migrations_dir, fail_on, exit_code):
    code, document = lint_json(run_script, migrations_dir(CLEAN | RENAME), "--fail-on", fail_on)

    assert code == exit_code
    assert rules_of(document) == ["renaming_column"] and document["risk"] == "medium"
    assert document["ok"] is (exit_code == 0)


def test_a_silenced_finding_is_reported_with_its_reason_and_does_not_fail(run_script, migrations_dir):
    files = {"20260103_000000_index_email.sql": migration(
        "-- risk: ignore adding_index_non_concurrently because users has 40 rows\n"
        "CREATE INDEX users_mail_idx ON users (mail);")}
    code, document = lint_json(run_script, migrations_dir(files), "--fail-on", "low")

    assert code == 0
    [finding] = document["migrations"][0]["findings"]
    assert finding["ignored_reason"] == "users has 40 rows" and document["migrations"][0]["risk"] is None


@pytest.mark.parametrize(("pg_version", "flagged"), [("10", True), ("11", False), ("150000", False)])
def test_a_constant_default_is_flagged_on_postgresql_10_only(run_script, migrations_dir, pg_version, flagged):
    files = {"20260104_000000_add_status.sql": migration("ALTER TABLE users ADD COLUMN status text DEFAULT 'new';")}
    code, document = lint_json(run_script, migrations_dir(files), "--pg-version", pg_version)

    assert (code, rules_of(document)) == ((3, ["adding_column_with_default"]) if flagged else (0, []))


@pytest.mark.parametrize(("pg_version", "flagged"), [("11", True), ("9.6", True), ("12", False), ("18", False)])
def test_enum_add_value_in_a_transaction_is_flagged_before_postgresql_12(run_script, migrations_dir, pg_version,
                                                                         flagged):
    files = {"20260105_000000_add_mood.sql": migration("ALTER TYPE mood ADD VALUE 'meh';")}
    code, document = lint_json(run_script, migrations_dir(files), "--pg-version", pg_version)

    assert (code, rules_of(document)) == ((3, ["adding_enum_value_in_transaction"]) if flagged else (0, []))


def test_a_non_transactional_migration_may_add_enum_values_and_index_concurrently(run_script, migrations_dir):
    files = {"20260105_000000_add_mood.sql": "-- TRANSACTION: none\n" + migration(
        "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';\nCREATE INDEX CONCURRENTLY i ON users (mail);")}
    code, document = lint_json(run_script, migrations_dir(files), "--pg-version", "11")

    assert (code, rules_of(document)) == (0, [])
    assert document["migrations"][0]["transactional"] is False


def test_the_json_document_has_the_lint_shape(run_script, migrations_dir):
    code, document = lint_json(run_script, migrations_dir(CLEAN | RENAME | INDEX), "--pg-version", "15")

    assert code == 3
    assert set(document) == {"schema_version", "command", "ok", "migrations_dir", "pg_version", "fail_on", "live",
                             "risk", "migrations", "error"}
    assert document["live"] is False  # offline: each file judged on its own
    assert (document["schema_version"], document["command"], document["ok"]) == (1, "lint", False)
    assert (document["pg_version"], document["fail_on"], document["risk"]) == (150000, "high", "high")
    assert document["error"]["code"] == "risk_found" and document["error"]["hint"]
    assert [m["version"] for m in document["migrations"]] == [
        "20260101_000000_create_users", "20260102_000000_rename_email", "20260103_000000_index_email"]
    entry = document["migrations"][2]
    assert set(entry) == {"version", "name", "path", "transactional", "risk", "rollback_risk", "findings"}
    [finding] = entry["findings"]
    assert set(finding) == {"rule", "severity", "direction", "line", "message", "hint", "ignored_reason", "table",
                            "size", "lowered_from", "lock"}
    assert finding["lock"] == "SHARE (writes wait)"
    assert (finding["rule"], finding["severity"], finding["direction"], finding["line"], finding["table"]) == (
        "adding_index_non_concurrently", "high", "up", 3, "users")
    assert (finding["size"], finding["lowered_from"]) == (None, None)  # offline: no live size to judge by


def test_lint_of_the_corpus_reports_exactly_the_expected_findings(run_script):
    code, document = lint_json(run_script, CORPUS)
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))

    assert code == 3
    assert {Path(m["path"]).name: sorted(f["rule"] for f in m["findings"] if f["ignored_reason"] is None)
            for m in document["migrations"]} == expected


BAD_INPUT = {
    "syntax_error": ({"20260101_000000_bad.sql": "-- DIRECTION: up\nSELECT 1;\nCREATE TABEL t (id int);\n"},
                     [], "20260101_000000_bad.sql:3: SQL syntax error"),
    "silence_without_reason": ({"20260101_000000_bad.sql": "-- DIRECTION: up\n"
                                "-- risk: ignore truncating_table\nTRUNCATE t;\n"},
                               [], "20260101_000000_bad.sql:2: silencing truncating_table needs a reason"),
    "bad_file_name": ({"add_users.sql": "-- DIRECTION: up\nSELECT 1;\n"}, [], "add_users.sql: file name"),
    "no_up_section": ({"20260101_000000_bad.sql": "SELECT 1;\n"}, [], "20260101_000000_bad.sql:1"),
    "bad_pg_version": ({}, ["--pg-version", "fifteen"], "invalid PostgreSQL version 'fifteen'"),
    "bad_fail_on": ({}, ["--fail-on", "critical"], "invalid choice: 'critical'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_a_clear_line_and_no_traceback(run_script, migrations_dir, case):
    files, args, message = BAD_INPUT[case]
    result = run_script("lint", "--migrations-dir", str(migrations_dir(files)), *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_syntax_error_with_json_is_one_document_with_the_invalid_migration_code(run_script, migrations_dir):
    files = {"20260101_000000_bad.sql": "-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: down\nDROP TABEL t;\n"}
    code, document = lint_json(run_script, migrations_dir(files))

    assert code == 2
    assert document["ok"] is False and document["error"]["code"] == "invalid_migration"
    assert "20260101_000000_bad.sql:4: SQL syntax error" in document["error"]["message"]


def test_a_missing_migrations_directory_exits_2(run_script, tmp_path):
    result = run_script("lint", "--migrations-dir", str(tmp_path / "nowhere"))

    assert result.returncode == 2 and "nowhere does not exist" in result.stderr


def test_human_lint_groups_a_rule_found_many_times_and_verbose_lists_each(run_script, migrations_dir):
    files = {f"2026010{n}_000000_create_t{n}.sql": migration(f"CREATE TABLE t{n} (id int);", f"DROP TABLE t{n};")
             for n in range(1, 6)}
    directory = migrations_dir(files)

    grouped = run_script("lint", "--migrations-dir", str(directory))
    verbose = run_script("lint", "--migrations-dir", str(directory), "--verbose")

    assert grouped.returncode == verbose.returncode == 0
    assert "medium   rollback_drops_data ×5 — data written since apply is lost on rollback" in grouped.stdout
    assert "and 1 more" in grouped.stdout and grouped.stdout.count("rollback_drops_data") == 1
    assert verbose.stdout.count("rollback_drops_data: Rolling back drops the table") == 5
    assert "×5" not in verbose.stdout


def test_lint_db_without_a_database_url_is_a_configuration_error(run_script, migrations_dir):
    result = run_script("lint", "--db", "--json", "--migrations-dir", str(migrations_dir(CLEAN)),
                        env={"DB_URL": ""})

    assert result.returncode == 4, result.stdout
    assert json.loads(result.stdout)["error"]["code"] in {"no_db_url", "bad_db_url"}


@pytest.mark.parametrize("value", ["-1", "ten", "1e3"])
def test_a_bad_small_table_rows_is_a_usage_error(run_script, migrations_dir, value):
    result = run_script("lint", "--small-table-rows", value, "--migrations-dir", str(migrations_dir(CLEAN)))

    assert result.returncode == 2
    assert "--small-table-rows" in result.stderr and "rows" in result.stderr
