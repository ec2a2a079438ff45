"""Property tests (hypothesis) for the migration parser: files built from random sections round-trip, and no input
(random text, random marker placements, random bytes) raises anything but the documented InvalidMigrationFile.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migration_core import parsing
from migration_core.errors import InvalidMigrationFile

FILE = Path("20260101_000000_random.sql")
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---- strategies ---------------------------------------------------------------------------------------------

# No control characters but tab: a file holding one is invalid (see the control-character property below).
LINE_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t")
CONTROL_CHARS = st.characters(blacklist_characters="\t\n\r", whitelist_categories=("Cc",))
KEYWORDS = st.sampled_from(["SELECT", "CREATE TABLE", "INSERT INTO", "ALTER TABLE", "DROP TABLE", "UPDATE", "DO",
                            "COMMENT ON", "create index", "values"])


@st.composite
def sql_line(draw) -> str:
    """A non-empty line of SQL: a keyword, then anything (quotes, comments, marker text, unicode) up to the end."""
    indent = draw(st.sampled_from(["", " ", "    ", "\t"]))
    return f"{indent}{draw(KEYWORDS)} {draw(st.text(LINE_CHARS, max_size=40))}"


BODY = st.lists(sql_line(), min_size=1, max_size=6).map("\n".join)
BLANK_LINES = st.lists(st.sampled_from(["", " ", "\t", "   "]), max_size=3)
UP_MARKERS = st.sampled_from(["-- DIRECTION: up", "-- direction: UP", "--DIRECTION:up", "  --  Direction :  Up  "])
DOWN_MARKERS = st.sampled_from(["-- DIRECTION: down", "-- direction: Down", "--DIRECTION:down",
                                "\t-- DIRECTION : down"])
HEADER_COMMENTS = st.lists(st.sampled_from(["-- a header comment", "/* a block comment */", "", "--",
                                            "/* spanning\n   two lines */"]), max_size=3)
DURATIONS = {"500ms": 500, "2s": 2000, "10min": 600_000, "1h": 3_600_000, "0": 0, "750": 750, "3 S": 3000}


def surrounded(body: str, before: list[str], after: list[str]) -> list[str]:
    return before + body.split("\n") + after


@st.composite
def migration_file(draw) -> tuple[str, dict]:
    """Return (file text, what parsing it must give)."""
    up, down = draw(BODY), draw(st.one_of(st.none(), BODY))
    name = draw(st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)))
    lock = draw(st.one_of(st.none(), st.sampled_from(sorted(DURATIONS))))
    statement = draw(st.one_of(st.none(), st.sampled_from(sorted(DURATIONS))))
    non_transactional = draw(st.booleans())
    header = draw(HEADER_COMMENTS)
    if name:
        header.append(f"-- MIGRATION: {name}")
    if lock:
        header.append(f"-- LOCK_TIMEOUT: {lock}")
    if statement:
        header.append(f"-- statement_timeout: {statement}")
    if non_transactional:
        header.append("-- Transaction: NONE")
    header = draw(st.permutations(header))
    lines = list(header) + [draw(UP_MARKERS)] + surrounded(up, draw(BLANK_LINES), draw(BLANK_LINES))
    if down is not None:
        lines += [draw(DOWN_MARKERS)] + surrounded(down, draw(BLANK_LINES), draw(BLANK_LINES))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    expected = {"up": up, "down": down, "name": name or "random", "transactional": not non_transactional,
                "lock_timeout_ms": DURATIONS[lock] if lock else None,
                "statement_timeout_ms": DURATIONS[statement] if statement else None}
    return text, expected


# Every character the parser's case-insensitive patterns take for each ASCII letter (e.g. 's', 'S' and 'ſ').
SAME_LETTER = {c: sorted(chr(i) for i in range(0x2200) if re.fullmatch(c, chr(i), re.IGNORECASE))
               for c in "abcdefghijklmnopqrstuvwxyz"}


def any_case(word: str) -> st.SearchStrategy[str]:
    """The word in any spelling a case-insensitive pattern accepts."""
    return st.tuples(*(st.sampled_from(SAME_LETTER.get(c.lower(), [c])) for c in word)).map("".join)


KEYWORD_LINES = st.builds(
    lambda space, key, value: f"--{space}{key}:{space}{value}",
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(["direction", "migration", "transaction", "lock_timeout", "statement_timeout"]).flatmap(any_case),
    st.one_of(st.sampled_from(["up", "down", "none", "ms", "s", "min", "h", "d"]).flatmap(any_case),
              st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 10**6),
                        st.sampled_from(["", "ms", "s", "min", "h", "d"]).flatmap(any_case))))
MARKERS = st.sampled_from(["-- DIRECTION: up", "-- DIRECTION: down", "--direction:UP", "-- DIRECTION: down  ",
                           "-- DIRECTION: sideways", "-- DIRECTION:", "-- DIRECTION: up down", "-- MIGRATION: x",
                           "-- TRANSACTION: none", "-- TRANSACTION: always", "-- LOCK_TIMEOUT: 2s",
                           "-- LOCK_TIMEOUT: soon", "-- STATEMENT_TIMEOUT: 10min", "-- STATEMENT_TIMEOUT: -1"])
ANY_LINE = st.one_of(
    MARKERS,
    KEYWORD_LINES,
    sql_line(),
    st.text(LINE_CHARS, max_size=30),
    st.sampled_from(["", "  ", "-- just a comment", "/*", "*/", "/* x */", "SELECT '-- DIRECTION: down';"]),
    st.builds(lambda key, value: f"-- {key}: {value}",
              st.sampled_from(["TRANSACTION", "LOCK_TIMEOUT", "STATEMENT_TIMEOUT", "MIGRATION", "DIRECTION"]),
              st.text(LINE_CHARS, max_size=12)),
)

# ---- properties ---------------------------------------------------------------------------------------------


@PROPERTY
@given(migration_file())
def test_any_file_built_from_random_sections_round_trips(case):
    text, expected = case

    migration = parsing.parse_migration_text(text, FILE, "random")

    assert migration.up_sql.rstrip() == expected["up"].rstrip()
    assert migration.up_sql.endswith("\n") and not migration.up_sql.startswith("\n")
    if expected["down"] is None:
        assert migration.down_sql is None and not migration.reversible
    else:
        assert migration.down_sql is not None and migration.down_sql.rstrip() == expected["down"].rstrip()
    assert migration.name == expected["name"]
    assert migration.transactional is expected["transactional"]
    assert migration.lock_timeout_ms == expected["lock_timeout_ms"]
    assert migration.statement_timeout_ms == expected["statement_timeout_ms"]
    assert migration.checksum == parsing.compute_checksum(text.replace("\r\n", "\n"))
    # the recorded line of each section is where its first line of SQL really is
    lines = parsing.normalise_newlines(text).split("\n")
    assert lines[migration.up_line - 1] == expected["up"].split("\n")[0]
    if expected["down"] is not None:
        assert lines[migration.down_line - 1] == expected["down"].split("\n")[0]


@PROPERTY
@given(migration_file())
def test_a_round_tripping_file_parses_the_same_from_disk(tmp_path, case):
    text, expected = case
    path = tmp_path / FILE.name
    path.write_bytes(text.encode("utf-8"))

    from_disk = parsing.parse_migration_file(path)
    from_text = parsing.parse_migration_text(text, path, "random")

    assert from_disk == from_text


@settings(PROPERTY, max_examples=60)
@given(migration_file(), CONTROL_CHARS, st.integers(min_value=0))
@example(("-- DIRECTION: up\nSELECT 1;\n", {}), "\x00", 12)
def test_a_control_character_anywhere_is_invalid_naming_its_line_and_code_point(case, control, where):
    text = case[0].replace("\r\n", "\n")
    position = where % (len(text) + 1)
    text = text[:position] + control + text[position:]

    with pytest.raises(InvalidMigrationFile) as raised:
        parsing.parse_migration_text(text, FILE, "random")

    line = text.count("\n", 0, position) + 1
    assert raised.value.message.startswith(f"{FILE}:{line}: control character U+{ord(control):04X} ")


def parse_or_invalid(text: str):
    """Parse; the only exception allowed is InvalidMigrationFile (anything else propagates and fails the test)."""
    try:
        return parsing.parse_migration_text(text, FILE, "random")
    except InvalidMigrationFile as err:
        assert str(FILE) in err.message and err.exit_code == 2
        return None


@PROPERTY
@given(st.text())
@example("-- LOCK_TIMEOUT: 5\u017f\n-- DIRECTION: up\nSELECT 1;\n")       # LATIN SMALL LETTER LONG S matches (?i)s
@example("-- \u017ftatement_timeout: 5s\n-- DIRECTION: up\nSELECT 1;\n")
@example("\ufeff-- DIRECTION: up\nSELECT 1;\n")
@example("-- DIRECTION: up\r-- DIRECTION: down\rSELECT 1;\r")
def test_random_text_parses_or_raises_only_invalid_migration_file(text):
    parse_or_invalid(text)


@PROPERTY
@given(st.lists(ANY_LINE, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
@example(["-- lock_timeout: 2\u017f", "-- DIRECTION: up", "SELECT 1;"], "\n")
def test_random_marker_placements_parse_or_raise_only_invalid_migration_file(lines, newline):
    text = newline.join(lines)

    migration = parse_or_invalid(text)

    if migration is not None:  # then the section rules held
        markers = [parsing.MARKER.match(line) for line in lines]
        directions = [m["value"].lower() for m in markers if m]
        assert directions in (["up"], ["up", "down"])
        assert parsing.has_sql(migration.up_sql)
        assert migration.down_sql is None or parsing.has_sql(migration.down_sql)


@PROPERTY
@given(st.binary(max_size=300))
@example(b"\xff\xfe-- DIRECTION: up\nSELECT 1;\n")
@example(b"-- DIRECTION: up\nSELECT '\xe9';\n")
@example(b"\xef\xbb\xbf-- DIRECTION: up\nSELECT 1;\n")
@example("-- STATEMENT_TIMEOUT: 1\u017f\n-- DIRECTION: up\nSELECT 1;\n".encode())
def test_random_bytes_in_a_file_parse_or_raise_only_invalid_migration_file(tmp_path, data):
    path = tmp_path / FILE.name
    path.write_bytes(data)

    try:
        migration = parsing.parse_migration_file(path)
    except InvalidMigrationFile as err:
        assert str(path) in err.message and err.exit_code == 2
        return
    assert migration.version == FILE.stem and migration.up_sql.strip()


@PROPERTY
@given(st.lists(ANY_LINE, max_size=12).map("\n".join), st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_random_marker_placements_in_any_encoding_on_disk_parse_or_raise_only_invalid_migration_file(
        tmp_path, text, encoding):
    path = tmp_path / FILE.name
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8", errors="replace")
    path.write_bytes(data)

    try:
        parsing.parse_migration_file(path)
    except InvalidMigrationFile as err:
        assert str(path) in err.message
