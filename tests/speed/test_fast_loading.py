"""Loading the migration files got faster (one Path per directory, os.read, no regex pass where a byte test says
the same) without changing anything it returns or refuses: every file, valid or not, loads to the same migration,
or to the same error, as with the parser before (kept in reference_parsing.py)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import reference_parsing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migration_core import parsing
from migration_core.errors import InvalidMigrationFile, UsageError

NAME = "20260101_000000_random.sql"
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

LINES = st.one_of(
    st.sampled_from([
        "-- DIRECTION: up", "-- DIRECTION: down", "--direction:UP", " \t-- Direction :  Down  ",
        "-- DIRECTION: ſideways", "-- DIRECTION:", "-- DIRECTION: up down", "-- dIrEcTiOn: uP", "-- DİRECTION: up",
        "-- MIGRATION: named", "-- MIGRATION:", "-- TRANSACTION: none", "-- TRANSACTION: always",
        "-- LOCK_TIMEOUT: 2s", "-- LOCK_TIMEOUT: soon", "-- STATEMENT_TIMEOUT: 10min",
        "-- STATEMENT_TIMEOUT: 99999999d", "-- noop: done by hand", "-- NOOP:", "--noop:   ", "-- nOoP: mixed case",
        "SELECT 1; -- noop: beside SQL", "", " ", "\t", "-- a comment", "/* a block", "comment */", "/* x */",
        "/* x */ SELECT 1;", "-SELECT 1;", "- 1", "/ 2", "CREATE TABLE t (a int);", "SELECT '-- DIRECTION: down';",
        "SELECT 'naïve €';", "\u00a0SELECT 1;", "\u2028", "\x85", "\x07", "\x00", "\x7f", "\x9f", "\x0b", "\x0c",
        "\ufeff", "DROP TABLE t;",
    ]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
UP_MARKERS = st.sampled_from(["-- DIRECTION: up", "--direction:UP", "\t -- Direction :  Up \t", "-- DIRECTION: up"])
DOWN_MARKERS = st.sampled_from(["-- DIRECTION: down", "--DIRECTION:down", " -- direction: DOWN  ",
                                "-- DIRECTION: down"])
NEWLINES = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])


@st.composite
def file_bytes(draw: Any) -> bytes:
    """Return the bytes of a migration file: random lines and line breaks, a BOM or not, a bad UTF-8 byte or not."""
    if draw(st.integers(0, 4)) == 0:  # anything at all
        lines = draw(st.lists(LINES, max_size=12))
    else:  # shaped like a migration, so that the section rules are reached
        lines = [*draw(st.lists(LINES, max_size=3)), draw(UP_MARKERS), *draw(st.lists(LINES, max_size=4))]
        if draw(st.booleans()):
            lines += [draw(DOWN_MARKERS), *draw(st.lists(LINES, max_size=4))]
    text = "".join(line + draw(NEWLINES) for line in lines)[: None if draw(st.booleans()) else -1]
    raw = ("\ufeff" if draw(st.integers(0, 5)) == 0 else "").encode() + text.encode("utf-8")
    if draw(st.integers(0, 7)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82"])) + raw[at:]
    return raw


def outcome(load: Callable[[], Any]) -> tuple[Any, ...]:
    """Return what a load gave: its migrations as dicts, or its error (message, hint, listed files, exit code)."""
    try:
        loaded = load()
    except (InvalidMigrationFile, UsageError) as err:
        return ("error", type(err).__name__, err.message, err.hint, getattr(err, "files", None), err.exit_code)
    return ("ok", [as_dict(m) for m in (loaded if isinstance(loaded, list) else [loaded])])


def as_dict(migration: Any) -> dict[str, Any]:
    """Return the fields of a migration (new: a Migration, whose path is made on first use; old: a dict)."""
    if isinstance(migration, dict):
        return migration
    fields = {f.name: getattr(migration, f.name) for f in dataclasses.fields(migration) if f.name != "location"}
    assert type(migration.path) is type(Path(migration.location)) and str(migration.path) == migration.location
    return fields | {"path": migration.path}


@PROPERTY
@given(file_bytes())
@example("-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: down\n".encode())
@example("\ufeff-- MIGRATION: x\r\n-- DIRECTION: up\r\nSELECT 1;\r\n".encode())
@example(b"-- DIRECTION: up\nSELECT 1;\n-- DIRECTION: down\n  /* only\n a comment */\n")
@example(b"-- DIRECTION: up\n/* x */ -- y\n")
@example(b"  -- a /* never closed\n\t--\n\n-- MIGRATION:  \n-- MIGRATION: named \n-- DIRECTION: up\nSELECT 1;\n")
@example(b"-- header\n /* a block\n  SELECT 1; */ -- then\nSELECT 2;\n-- DIRECTION: up\nSELECT 1;\n")
@example(b"-- DIRECTION: up\n-- noop: by hand\n-- DIRECTION: down\n\x85\n".replace(b"\x85", "\x85".encode()))
def test_any_file_loads_to_the_same_migration_or_error_as_before(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("m")
    (folder / NAME).write_bytes(raw)

    assert outcome(lambda: parsing.load_migrations(folder)) == \
        outcome(lambda: reference_parsing.load_migrations(folder))
    assert outcome(lambda: parsing.parse_migration_file(folder / NAME)) == \
        outcome(lambda: reference_parsing.parse_migration_file(folder / NAME))


@PROPERTY
@given(file_bytes())
def test_any_text_parses_to_the_same_migration_or_error_as_before(raw):
    text = raw.decode("utf-8", errors="replace")

    assert outcome(lambda: parsing.parse_migration_text(text, Path(NAME), "random")) == \
        outcome(lambda: reference_parsing.parse_migration_text(text, Path(NAME), "random"))


VALID = "-- DIRECTION: up\nCREATE TABLE t (a int);\n-- DIRECTION: down\nDROP TABLE t;\n"


@pytest.mark.parametrize("folder", ["m", "m/", "./m", "m//", ".", "./", "m/../m"],
                         ids=["plain", "trailing-slash", "dot-slash", "double-slash", "dot", "dot-slash-alone",
                              "dot-dot"])
def test_a_directory_of_good_and_bad_entries_loads_the_same_as_before_however_it_is_named(tmp_path, monkeypatch,
                                                                                           folder):
    root = tmp_path / "m"
    root.mkdir()
    (root / "20260101_000001_good.sql").write_text(VALID)
    (root / "20260101_000002_crlf.sql").write_bytes(VALID.replace("\n", "\r\n").encode())
    (root / "20260101_000003_bom.sql").write_bytes("\ufeff-- MIGRATION: named\n".encode() + VALID.encode())
    (root / "20260101_000004_Bad.sql").write_text(VALID)
    (root / f"20260101_000005_{'x' * 60}.sql").write_text(VALID)
    (root / "20260101_000006_dir.sql").mkdir()
    (root / "20260101_000007_dangling.sql").symlink_to(root / "nowhere")
    (root / "20260101_000008_link.sql").symlink_to(root / "20260101_000001_good.sql")
    (root / "20260101_000009_empty.sql").write_text("")
    (root / "20260101_000010_latin1.sql").write_bytes(b"-- DIRECTION: up\nSELECT '\xe9';\n")
    (root / "20260101_000011_upper.SQL").write_text(VALID)
    (root / "notes.txt").write_text("not a migration")
    monkeypatch.chdir(tmp_path if folder != "." and folder != "./" else root)

    new = outcome(lambda: parsing.load_migrations(Path(folder)))
    assert new == outcome(lambda: reference_parsing.load_migrations(Path(folder)))
    assert new[0] == "error" and "7 migration files are invalid" in new[2]
    for good in ("20260101_000001_good.sql", "20260101_000008_link.sql"):  # and the good ones parse as before
        assert outcome(lambda: parsing.parse_migration_file(Path(folder) / good)) == \
            outcome(lambda: reference_parsing.parse_migration_file(Path(folder) / good))
    new_files, new_problems = parsing.listed_files(Path(folder))
    old_files, old_problems = reference_parsing.listed_files(Path(folder))
    assert new_files == old_files and [p.message for p in new_problems] == [p.message for p in old_problems]


def test_a_directory_of_valid_files_loads_the_same_migrations_as_before(tmp_path):
    for number in range(1, 31):
        header = "-- MIGRATION: with header\n-- LOCK_TIMEOUT: 3s\n" if number % 3 == 0 else ""
        down = "" if number % 5 == 0 else f"-- DIRECTION: down\nDROP TABLE t{number};\n"
        (tmp_path / f"20260101_{number:06d}_t{number}.sql").write_text(
            f"{header}-- DIRECTION: up\nCREATE TABLE t{number} (a int);\n\n{down}")

    new = outcome(lambda: parsing.load_migrations(tmp_path))

    assert new == outcome(lambda: reference_parsing.load_migrations(tmp_path))
    assert new[0] == "ok" and len(new[1]) == 30 and new[1][2]["lock_timeout_ms"] == 3000


def test_a_missing_directory_is_the_same_usage_error_as_before(tmp_path):
    missing = tmp_path / "nope"

    assert outcome(lambda: parsing.load_migrations(missing)) == \
        outcome(lambda: reference_parsing.load_migrations(missing))


def test_a_file_that_grows_while_read_is_read_whole(tmp_path, monkeypatch):
    path = tmp_path / NAME
    path.write_text(VALID)
    real_fstat = os.fstat

    def stale_size(fd: int) -> Any:  # as if the file grew after fstat: one read does not take it whole
        result = real_fstat(fd)
        return os.stat_result((*result[:6], 3, *result[7:]))
    monkeypatch.setattr(os, "fstat", stale_size)

    assert parsing.read_file(str(path)) == VALID.encode()
