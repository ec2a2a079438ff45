"""Pure tests of migration_core.parsing: file names, section markers, names, checksums and error lines."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from migration_core import parsing
from migration_core.errors import InvalidMigrationFile, UsageError

FILE = Path("20260101_000000_create_users.sql")


def parse(text: str):
    return parsing.parse_migration_text(text, FILE, "create_users")


# ---- markers -------------------------------------------------------------------------------------------

MARKER_SPELLINGS = {
    "canonical": ("-- DIRECTION: up", "-- DIRECTION: down"),
    "lower_case": ("-- direction: up", "-- direction: down"),
    "mixed_case": ("-- Direction: UP", "-- dIrEcTiOn: Down"),
    "no_spaces": ("--DIRECTION:up", "--DIRECTION:down"),
    "extra_spaces": ("  --   DIRECTION  :   up   ", "\t-- DIRECTION :down\t"),
}


@pytest.mark.parametrize(("up_marker", "down_marker"), list(MARKER_SPELLINGS.values()), ids=list(MARKER_SPELLINGS))
def test_markers_are_recognised_in_any_case_and_spacing(up_marker, down_marker):
    migration = parse(f"{up_marker}\nCREATE TABLE users (id int);\n{down_marker}\nDROP TABLE users;\n")

    assert migration.up_sql.strip() == "CREATE TABLE users (id int);"
    assert migration.down_sql is not None and migration.down_sql.strip() == "DROP TABLE users;"
    assert migration.reversible


MARKER_TEXT_INSIDE_SQL = {
    "in_a_string": "SELECT '-- DIRECTION: down';",
    "after_a_statement": "CREATE TABLE users (id int); -- DIRECTION: down",
    "in_a_longer_comment": "-- see -- DIRECTION: down in the docs",
}


@pytest.mark.parametrize("line", list(MARKER_TEXT_INSIDE_SQL.values()), ids=list(MARKER_TEXT_INSIDE_SQL))
def test_marker_text_inside_a_line_is_sql_not_a_marker(line):
    migration = parse(f"-- DIRECTION: up\nCREATE TABLE t (id int);\n{line}\n")

    assert line in migration.up_sql
    assert migration.down_sql is None
    assert not migration.reversible


def test_up_runs_to_the_down_marker_and_down_runs_to_the_end():
    migration = parse("-- DIRECTION: up\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
                      "-- DIRECTION: down\nDROP TABLE b;\nDROP TABLE a;\n")

    assert migration.up_sql == "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
    assert migration.down_sql == "DROP TABLE b;\nDROP TABLE a;\n"


DOWN_WITHOUT_SQL = {
    "no_down_section": "-- DIRECTION: up\nCREATE TABLE t (id int);\n",
    "empty_down_section": "-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\n",
    "blank_down_section": "-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\n\n   \n",
    "line_comments_only": "-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\n-- cannot be undone\n",
    "block_comment_only": "-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\n/* gone,\nno way back */\n",
}


@pytest.mark.parametrize("text", list(DOWN_WITHOUT_SQL.values()), ids=list(DOWN_WITHOUT_SQL))
def test_a_down_section_without_sql_means_irreversible(text):
    migration = parse(text)

    assert migration.down_sql is None
    assert not migration.reversible


HEADERS = {
    "line_comments_and_blank_lines": "-- Author: someone\n\n-- Ticket: DB-42\n",
    "one_line_block_comment": "/* Author: someone */\n",
    "multi_line_block_comment": "/* Author: someone\n   Ticket: DB-42 */\n",
}


@pytest.mark.parametrize("header", list(HEADERS.values()), ids=list(HEADERS))
def test_header_comments_before_the_first_marker_are_allowed(header):
    migration = parse(f"{header}-- DIRECTION: up\nSELECT 1;\n")

    assert migration.up_sql.strip() == "SELECT 1;"


# ---- names ---------------------------------------------------------------------------------------------

NAMES = {
    "header": ("-- MIGRATION: Create the users table\n", "Create the users table"),
    "header_any_case": ("-- migration:   add users  \n", "add users"),
    "no_header_uses_description": ("", "create_users"),
    "header_after_a_comment": ("-- a note\n-- MIGRATION: named later\n", "named later"),
}


@pytest.mark.parametrize(("header", "name"), list(NAMES.values()), ids=list(NAMES))
def test_migration_name_comes_from_the_header_or_defaults_to_the_description(header, name):
    migration = parse(f"{header}-- DIRECTION: up\nSELECT 1;\n")

    assert migration.name == name
    assert migration.version == "20260101_000000_create_users"


def test_parse_migration_file_defaults_the_name_to_the_description_of_the_file_name(tmp_path):
    path = tmp_path / "20260208_120000_create_users_table.sql"
    path.write_text("-- DIRECTION: up\nCREATE TABLE users (id int);\n", encoding="utf-8")

    migration = parsing.parse_migration_file(path)

    assert (migration.version, migration.name, migration.path) == ("20260208_120000_create_users_table",
                                                                   "create_users_table", path)


# ---- checksums -----------------------------------------------------------------------------------------

LF_TEXT = "-- MIGRATION: users\n-- DIRECTION: up\nCREATE TABLE users (id int);\n-- DIRECTION: down\nDROP TABLE users;\n"


def test_checksum_is_sha256_hex_of_the_text():
    assert parsing.compute_checksum(LF_TEXT) == hashlib.sha256(LF_TEXT.encode("utf-8")).hexdigest()


def test_crlf_checksum_equals_lf_checksum():
    assert parsing.compute_checksum(LF_TEXT.replace("\n", "\r\n")) == parsing.compute_checksum(LF_TEXT)


def test_a_crlf_file_parses_like_its_lf_twin(tmp_path):
    lf_path = tmp_path / "lf" / "20260101_000000_users.sql"
    crlf_path = tmp_path / "crlf" / "20260101_000000_users.sql"
    lf_path.parent.mkdir()
    crlf_path.parent.mkdir()
    lf_path.write_bytes(LF_TEXT.encode())
    crlf_path.write_bytes(LF_TEXT.replace("\n", "\r\n").encode())

    lf, crlf = parsing.parse_migration_file(lf_path), parsing.parse_migration_file(crlf_path)

    assert crlf.checksum == lf.checksum
    assert (crlf.name, crlf.up_sql, crlf.down_sql) == (lf.name, lf.up_sql, lf.down_sql)
    assert "\r" not in crlf.up_sql + (crlf.down_sql or "")


def test_any_other_change_changes_the_checksum():
    assert parsing.compute_checksum(LF_TEXT + "-- edited\n") != parsing.compute_checksum(LF_TEXT)
    assert parsing.compute_checksum(LF_TEXT.replace("users", "Users")) != parsing.compute_checksum(LF_TEXT)


# ---- errors name the file and the line -----------------------------------------------------------------

INVALID_TEXTS = {
    "no_up_section": ("-- MIGRATION: x\n-- DIRECTION: down\nDROP TABLE t;\n", r":\d+: .*up"),
    "no_marker_at_all": ("-- only a comment\n", r":\d+: .*up"),
    "empty_file": ("", r":\d+: .*up"),
    "up_with_comments_only": ("-- DIRECTION: up\n-- todo\n/* later */\n-- DIRECTION: down\nSELECT 1;\n",
                              r":\d+: .*empty"),
    "up_with_blank_lines_only": ("-- MIGRATION: x\n-- DIRECTION: up\n\n\n", r":\d+: .*empty"),
    "repeated_up": ("-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: up\nSELECT 2;\n", ":3: .*repeated"),
    "repeated_down": ("-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: down\nSELECT 2;\n-- DIRECTION: down\nSELECT 3;\n",
                      ":5: .*repeated"),
    "unknown_direction": ("-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: sideways\nSELECT 2;\n", ":3: .*sideways"),
    "empty_direction": ("-- DIRECTION: up\nSELECT 1;\n-- DIRECTION:\nSELECT 2;\n", ":3: "),
    "sql_before_first_marker": ("-- MIGRATION: x\n\nCREATE TABLE early (id int);\n-- DIRECTION: up\nSELECT 1;\n",
                                ":3: .*before"),
    "up_after_down": ("-- DIRECTION: down\nDROP TABLE t;\n-- DIRECTION: up\nCREATE TABLE t (id int);\n",
                      ":3: .*up"),
    "up_after_down_after_up": ("-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: down\nSELECT 2;\n"
                               "-- DIRECTION: up\nSELECT 3;\n", ":5: "),
}


@pytest.mark.parametrize(("text", "where"), list(INVALID_TEXTS.values()), ids=list(INVALID_TEXTS))
def test_invalid_sections_raise_naming_file_and_line(text, where):
    with pytest.raises(InvalidMigrationFile, match="20260101_000000_create_users\\.sql" + where):
        parse(text)


def test_line_numbers_count_crlf_lines_like_lf_lines():
    with pytest.raises(InvalidMigrationFile, match="create_users\\.sql:3: "):
        parse("-- DIRECTION: up\r\nSELECT 1;\r\n-- DIRECTION: up\r\nSELECT 2;\r\n")


def test_invalid_utf8_raises_naming_file_and_line(tmp_path):
    path = tmp_path / "20260101_000000_bad_bytes.sql"
    path.write_bytes(b"-- DIRECTION: up\nCREATE TABLE t (id int);\nCOMMENT ON TABLE t IS '\xff\xfe';\n")

    with pytest.raises(InvalidMigrationFile, match=r"20260101_000000_bad_bytes\.sql:3: .*UTF-8"):
        parsing.parse_migration_file(path)


CONTROL_CHARACTERS = {
    "nul": ("\x00", "U+0000 (NUL)"),
    "bell": ("\x07", "U+0007 (BEL)"),
    "vertical_tab": ("\x0b", "U+000B (VT)"),
    "form_feed": ("\x0c", "U+000C (FF)"),
    "escape": ("\x1b", "U+001B (ESC)"),
    "delete": ("\x7f", "U+007F (DEL)"),
    "c1_next_line": ("\x85", "U+0085 (C1 control)"),
}


@pytest.mark.parametrize(("char", "named"), list(CONTROL_CHARACTERS.values()), ids=list(CONTROL_CHARACTERS))
def test_a_control_character_is_invalid_naming_file_line_and_character(char, named):
    text = f"-- DIRECTION: up\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);{char} DROP TABLE t;\n"

    with pytest.raises(InvalidMigrationFile, match=re.escape(f"create_users.sql:3: control character {named} "
                                                             "at column 26")):
        parse(text)


def test_tab_and_every_kind_of_line_break_are_allowed():
    migration = parse("-- DIRECTION: up\r\nSELECT\t1;\rSELECT 2;\n")

    assert migration.up_sql == "SELECT\t1;\nSELECT 2;\n"


def test_a_nul_byte_in_a_file_on_disk_is_invalid_not_a_truncated_migration(tmp_path):
    path = tmp_path / "20260101_000000_nul.sql"
    path.write_bytes(b"-- DIRECTION: up\nCREATE TABLE a (id int);\x00\nDROP TABLE important;\n")

    with pytest.raises(InvalidMigrationFile, match=r"20260101_000000_nul\.sql:2: control character U\+0000"):
        parsing.parse_migration_file(path)


def test_invalid_migration_file_exits_2():
    assert InvalidMigrationFile("x").exit_code == 2


# ---- file names ----------------------------------------------------------------------------------------

BAD_NAMES = {
    "letters_in_timestamp": "2026010a_000000_users.sql",
    "short_date": "2026011_000000_users.sql",
    "no_time": "20260101_users.sql",
    "no_description": "20260101_000000.sql",
    "empty_description": "20260101_000000_.sql",
    "uppercase_description": "20260101_000000_Users.sql",
    "dash_in_description": "20260101_000000_add-users.sql",
    "space_in_description": "20260101_000000_add users.sql",
    "dot_in_description": "20260101_000000_add.users.sql",
    "no_underscore_after_time": "20260101_000000users.sql",
    "version_of_65_characters": "20260101_000000_" + "x" * 49 + ".sql",
}


@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_a_sql_file_with_a_bad_name_is_an_error_naming_the_file(name, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "20260101_000000_good.sql").write_text("-- DIRECTION: up\nSELECT 1;\n")
    (directory / name).write_text("-- DIRECTION: up\nSELECT 1;\n")

    with pytest.raises(InvalidMigrationFile, match=name.replace(".", r"\.")):
        parsing.list_migration_files(directory)


GOOD_NAMES = {
    "digits_in_description": "20260101_000000_add_2fa_v2.sql",
    "single_letter": "20260101_000000_a.sql",
    "version_of_64_characters": "20260101_000000_" + "x" * 48 + ".sql",
}


@pytest.mark.parametrize("name", list(GOOD_NAMES.values()), ids=list(GOOD_NAMES))
def test_good_names_are_accepted(name, tmp_path):
    path = tmp_path / name
    path.write_text("-- DIRECTION: up\nSELECT 1;\n")

    assert parsing.parse_migration_file(path).version == name[:-4]


def test_listing_ignores_other_files_and_orders_by_version(tmp_path):
    for name in ["20260102_000000_b.sql", "README.md", ".gitkeep", "20260101_120000_a.sql", "notes.txt",
                 "20260101_000000_z.sql"]:
        (tmp_path / name).write_text("-- DIRECTION: up\nSELECT 1;\n")
    (tmp_path / "subdir").mkdir()
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere")

    names = [p.name for p in parsing.list_migration_files(tmp_path)]

    assert names == ["20260101_000000_z.sql", "20260101_120000_a.sql", "20260102_000000_b.sql"]


def test_a_symbolic_link_to_a_migration_file_is_listed_and_read_through(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "users.sql").write_text("-- DIRECTION: up\nCREATE TABLE users (id int);\n")
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "20260101_000000_users.sql").symlink_to(shared / "users.sql")

    [path] = parsing.list_migration_files(directory)

    assert parsing.parse_migration_file(path).up_sql == "CREATE TABLE users (id int);\n"


def make_dangling_link(path: Path) -> None:
    path.symlink_to(path.parent / "gone.sql")


def make_link_loop(path: Path) -> None:
    path.symlink_to(path.parent / "loop_b.link")
    (path.parent / "loop_b.link").symlink_to(path)


def make_link_to_a_directory(path: Path) -> None:
    (path.parent / "folder").mkdir()
    path.symlink_to(path.parent / "folder")


ENTRIES_NAMED_LIKE_MIGRATIONS = {
    "dangling_symlink": (make_dangling_link, "is a symbolic link to .*gone\\.sql, which does not exist"),
    "directory": (lambda path: path.mkdir(), "is a directory"),
    "symlink_to_a_directory": (make_link_to_a_directory, "is a directory"),
    "symlink_loop": (make_link_loop, "is a symbolic link that cannot be followed"),
    "fifo": (lambda path: os.mkfifo(path), "is not a regular file"),
}


@pytest.mark.parametrize(("make", "problem"), list(ENTRIES_NAMED_LIKE_MIGRATIONS.values()),
                         ids=list(ENTRIES_NAMED_LIKE_MIGRATIONS))
def test_an_entry_named_like_a_migration_that_is_no_file_is_an_error_never_skipped(make, problem, tmp_path):
    (tmp_path / "20260101_000000_good.sql").write_text("-- DIRECTION: up\nSELECT 1;\n")
    make(tmp_path / "20260102_000000_b.sql")

    with pytest.raises(InvalidMigrationFile, match=r"20260102_000000_b\.sql: " + problem) as raised:
        parsing.list_migration_files(tmp_path)
    assert raised.value.exit_code == 2


def test_an_unreadable_migration_file_is_invalid_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "20260101_000000_locked.sql"
    path.write_text("-- DIRECTION: up\nSELECT 1;\n")

    real_open = os.open

    def refuse(name, *args, **kwargs):
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)
    monkeypatch.setattr(os, "open", refuse)  # root reads any file: chmod 000 would prove nothing

    with pytest.raises(InvalidMigrationFile, match=r"20260101_000000_locked\.sql: cannot be read \(Permission"):
        parsing.parse_migration_file(path)
    with pytest.raises(InvalidMigrationFile, match=r"20260101_000000_locked\.sql: cannot be read \(Permission"):
        parsing.load_migrations(tmp_path)


def test_listing_a_missing_directory_is_a_usage_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_dir"

    with pytest.raises(UsageError, match="no_such_dir") as raised:
        parsing.list_migration_files(missing)
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("name", ["../x", "Add_users", "add-users", "", "add users", "a/b", "x.sql"],
                         ids=["parent_path", "uppercase", "dash", "empty", "space", "slash", "dot"])
def test_generate_names_outside_a_z_0_9_underscore_are_rejected(name):
    with pytest.raises(UsageError) as raised:
        parsing.check_name(name)
    assert raised.value.exit_code == 2


def test_generate_name_of_lowercase_digits_and_underscores_is_accepted():
    assert parsing.check_name("add_users_2") == "add_users_2"
