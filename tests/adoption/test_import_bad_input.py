"""Bad import inputs end in one line with a code and exit 2 (3 for a non-empty target without --merge), and write
nothing; --merge adds to a directory and keeps what was already imported identically."""
from __future__ import annotations

import json

import pytest

from foreign_tools import json_of, run_import
from migration_core.parsing import parse_migration_file

GOLANG = {"1_a.up.sql": "CREATE TABLE a (id int);\n", "1_a.down.sql": "DROP TABLE a;\n"}
CASES = [
    ("missing_folder", "golang-migrate", None, 2, "bad_source"),
    ("dbmate_file_without_down_block", "dbmate", {"20240101000000_x.sql": "-- migrate:up\nSELECT 1;\n"}, 2,
     "bad_source"),
    ("two_files_one_version", "golang-migrate", {**GOLANG, "01_b.up.sql": "CREATE TABLE b (id int);\n"}, 2,
     "version_collision"),
    ("version_that_cannot_map", "goose", {"123456789012_x.sql": "-- +goose Up\nSELECT 1;\n"}, 2,
     "version_collision"),
    ("goose_sql_before_up", "goose", {"00001_x.sql": "SELECT 1;\n-- +goose Up\nSELECT 2;\n"}, 2, "bad_source"),
    ("goose_envsub", "goose", {"00001_x.sql": "-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${X}';\n"}, 2, "bad_source"),
    ("sql_syntax_error", "flyway", {"V1__x.sql": "CREATE TABLE (;\n"}, 2, "bad_source"),
    ("unknown_tool", "liquibase", {}, 2, "usage"),
]


@pytest.mark.parametrize("tool, files, exit_code, code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code_and_nothing_is_written(run_script, tmp_path, tool, files,
                                                                         exit_code, code):
    source = tmp_path / "source"
    if files is not None:
        source.mkdir()
        for name, text in files.items():
            (source / name).write_text(text)
    target = tmp_path / "migrations"

    human = run_script("import", "--from", tool, str(source), "--migrations-dir", str(target))
    machine = run_script("import", "--from", tool, str(source), "--migrations-dir", str(target), "--json")

    assert human.returncode == machine.returncode == exit_code
    assert human.stdout == "" and len(human.stderr.strip().splitlines()) == 1 and human.stderr.startswith("error: ")
    assert json.loads(machine.stdout)["error"]["code"] == code
    assert not target.exists()


def test_a_non_empty_target_is_refused_without_merge_and_merge_keeps_what_is_already_there(run_script, tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "golang-migrate", target).returncode == 0
    before = {p.name: p.read_text() for p in target.iterdir() if p.suffix == ".sql"}

    refused = run_import(run_script, "golang-migrate", target, "--json")
    merged = run_import(run_script, "golang-migrate", target, "--merge", "--json")

    assert refused.returncode == 3 and json_of(refused)["error"]["code"] == "target_not_empty"
    assert merged.returncode == 0, merged.stderr
    assert {m["status"] for m in json_of(merged)["migrations"]} == {"unchanged"}
    assert {p.name: p.read_text() for p in target.iterdir() if p.suffix == ".sql"} == before
    assert len(json.loads((target / "import_map.json").read_text())["imports"]) == 2


def test_an_empty_up_file_becomes_a_noop_up_and_the_file_parses(run_script, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "7_emptied_fix.up.sql").write_text("-- the data fix ran long ago\n")
    (source / "7_emptied_fix.down.sql").write_text("")
    target = tmp_path / "migrations"

    result = run_script("import", "--from", "golang-migrate", str(source), "--migrations-dir", str(target))

    assert result.returncode == 0, result.stderr
    text = (target / "20000101_000007_emptied_fix.sql").read_text()
    assert "-- DIRECTION: up\n-- noop: empty up in the golang-migrate source (7_emptied_fix.up.sql)\n" in text
    migration = parse_migration_file(target / "20000101_000007_emptied_fix.sql")
    assert migration.noop("up") and migration.noop("down")  # both recorded no-ops, the migration reversible


def test_a_dry_run_writes_nothing_and_shows_the_mapping(run_script, tmp_path):
    target = tmp_path / "migrations"

    result = run_import(run_script, "golang-migrate", target, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "1 -> 20000101_000001_create_users.sql" in result.stdout and "Nothing written (dry run)" in result.stdout
    assert not target.exists()


def test_adopting_before_importing_says_to_import_first(run_script, tmp_path):
    result = run_import(run_script, "goose", tmp_path / "not_yet", "--adopt", "--json")

    assert result.returncode == 2
    error = json_of(result)["error"]
    assert error["code"] == "no_migrations_dir" and error["hint"].startswith("Import first")
