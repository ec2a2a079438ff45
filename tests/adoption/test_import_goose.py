"""A goose folder (NNNNN_name.sql with '-- +goose Up' / '-- +goose Down', StatementBegin/End, NO TRANSACTION)
imports as this tool's files, and goose_db_version (newest row per version says applied or not) is adopted."""
from __future__ import annotations

from conftest import query
from foreign_tools import GOOSE_DDL, adopt_and_continue, json_of, run_import, source_sql

VERSIONS = ["20000101_000001_create_users", "20000101_000002_touch_function", "20000101_000003_create_posts"]


def test_goose_statement_blocks_stay_whole_and_no_transaction_becomes_transaction_none(run_script, tmp_path):
    target = tmp_path / "migrations"

    result = run_import(run_script, "goose", target, "--json")

    assert result.returncode == 0, result.stderr
    assert [m["version"] for m in json_of(result)["migrations"]] == VERSIONS
    text = (target / f"{VERSIONS[1]}.sql").read_text()
    assert "\n-- TRANSACTION: none\n" in text and "+goose NO TRANSACTION" in text.split("-- DIRECTION: up")[0]
    assert "-- +goose StatementBegin\nCREATE FUNCTION touch_updated_at()" in text
    assert "    NEW.updated_at := now();\n    RETURN NEW;\nEND;\n$$;\n-- +goose StatementEnd" in text


def test_goose_history_is_adopted_then_the_function_block_runs_and_rolls_back_statement_by_statement(
        run_script, db_url, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "goose", target).returncode == 0
    query(db_url, source_sql("goose", "00001_create_users.sql", "up"))
    # goose 3 writes version 0 when it creates the table; 2 was applied, rolled back (older goose: is_applied
    # false; newer goose deletes the row) and is pending again
    query(db_url, GOOSE_DDL + "; INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), "
                              "(2, true), (2, false)")

    adopt_and_continue(run_script, db_url, target, "goose", "goose_db_version", VERSIONS[:1], VERSIONS[1:],
                       rollback_to=VERSIONS[1])

    assert query(db_url, "SELECT to_regclass('posts'), to_regprocedure('touch_updated_at()') IS NOT NULL") == [
        (None, True)]
    query(db_url, "INSERT INTO users (email) VALUES ('ann@example.com'); UPDATE users SET email = 'ann@example.org'")
    assert query(db_url, "SELECT updated_at IS NOT NULL FROM users") == [(True,)]  # the function body ran whole
    back = run_script("rollback", "--migrations-dir", str(target), db_url=db_url)  # across the adopted boundary
    assert back.returncode == 0, back.stderr
    assert query(db_url, "SELECT to_regprocedure('touch_updated_at()')") == [(None,)]
