"""The migration parser as it was before its speed work (plan reads every file on each run), kept verbatim but
for returning a dict instead of a Migration: tests/speed/test_fast_loading.py checks that the parser of today gives
the same results and the same errors on every input."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from migration_core.errors import InvalidMigrationFile
from migration_core.parsing import (C0_NAMES, COMMENTS, CONTROL, FILE_NAME, MARKER, MAX_VERSION_LENGTH, NAME_HEADER,
                                    NOOP, SETTING, UsageError, compute_checksum, entry_problem, invalid_files,
                                    normalise_newlines, os, parse_duration)


def listed_files(migrations_dir: Path) -> tuple[list[Path], list[InvalidMigrationFile]]:
    """Return the well-named migration files in version order, and the problem of every other *.sql entry."""
    if not migrations_dir.is_dir():
        raise UsageError(f"Migrations directory {migrations_dir} does not exist.",
                         hint="Pass --migrations-dir DIR, or create one with "
                              "python scripts/generate_migration.py --name NAME.",
                         code="no_migrations_dir")
    # scandir and plain-name sorting: a thousand Path comparisons cost more than the rest of listing
    with os.scandir(migrations_dir) as entries:
        found = sorted(((e.name, entry_problem(e)) for e in entries if e.name.lower().endswith(".sql")),
                       key=lambda pair: pair[0])
    problems, files = [], []
    for name, problem in found:
        if problem:  # named like a migration: skipping it would silently leave a migration out
            problems.append(InvalidMigrationFile(f"{migrations_dir / name}: {problem}.",
                                                 hint="Every *.sql entry of the migrations directory must be a "
                                                      "migration file (or a symbolic link to one): fix it, or move "
                                                      "it elsewhere."))
            continue
        try:
            check_file_name(migrations_dir / name)
            files.append(migrations_dir / name)
        except InvalidMigrationFile as err:
            problems.append(err)
    return files, problems


def load_migrations(migrations_dir: Path) -> list[dict[str, Any]]:
    """Parse every migration file in version order; every invalid file is reported, all in one error."""
    files, problems = listed_files(migrations_dir)
    migrations = []
    for path in files:
        try:
            migrations.append(parse_migration_file(path))
        except InvalidMigrationFile as err:
            problems.append(err)
    if problems:
        raise invalid_files(sorted(problems, key=lambda p: p.message))
    return migrations


def check_file_name(path: Path) -> re.Match[str]:
    """Return the name match of a migration file, or raise naming the rule it breaks."""
    match = FILE_NAME.match(path.name)
    if not match:
        raise InvalidMigrationFile(
            f"{path}: file name does not match YYYYMMDD_HHMMSS_description.sql (description: a-z, 0-9, _).",
            hint="Rename the file, or create migrations with python scripts/generate_migration.py --name NAME.")
    if len(path.stem) > MAX_VERSION_LENGTH:
        raise InvalidMigrationFile(
            f"{path}: version is {len(path.stem)} characters; at most {MAX_VERSION_LENGTH} fit in the history table.",
            hint="Shorten the description part of the file name.")
    return match


def parse_migration_file(path: Path) -> dict[str, Any]:
    """Read and parse one migration file."""
    match = check_file_name(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InvalidMigrationFile(f"{path}: cannot be read ({err.strerror}).",
                                   hint="Make the file readable by the user running the tool.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InvalidMigrationFile(f"{path}:{line}: file is not valid UTF-8 (byte {err.start}).",
                                   hint="Save the file as UTF-8.") from None
    return parse_migration_text(text.removeprefix("\ufeff"), path, match["description"])


def parse_migration_text(text: str, path: Path, default_name: str) -> dict[str, Any]:
    """Split a migration's text into its up and down sections (the design's section rules)."""
    text = normalise_newlines(text)
    check_characters(text, path)
    lines = text.split("\n")
    sections: dict[str, tuple[int, int]] = {}  # direction -> (marker line index, end index)
    current: str | None = None
    for marker in MARKER.finditer(text):  # one regex pass over the text: plan parses every file on each run
        index = text.count("\n", 0, marker.start())
        current = open_section(marker["value"].lower(), sections, current, path, index + 1)
        if current == "down" and "up" in sections:
            sections["up"] = (sections["up"][0], index)  # up runs to the down marker
        sections[current] = (index, len(lines))
    header = lines[: min((start for start, _ in sections.values()), default=len(lines))]
    check_header(header, path)
    name = next((m["value"] for m in map(NAME_HEADER.match, header) if m and m["value"]), default_name)
    settings = read_settings(header, path)
    if "up" not in sections:
        raise InvalidMigrationFile(f"{path}:1: no '-- DIRECTION: up' section.",
                                   hint="Add a line '-- DIRECTION: up' before the forward SQL.")
    up_sql, up_line = section_text(lines, *sections["up"])
    up_noop = noop_reason(up_sql, path, up_line)
    if up_noop is None and not has_sql(up_sql):
        raise InvalidMigrationFile(f"{path}:{sections['up'][0] + 1}: the up section is empty.",
                                   hint="Write the forward SQL under '-- DIRECTION: up', or, for a migration that "
                                        "is kept but does nothing, a line '-- noop: REASON'.")
    down_sql, down_line = section_text(lines, *sections["down"]) if "down" in sections else (None, 0)
    down_noop = None if down_sql is None else noop_reason(down_sql, path, down_line)
    if down_sql is not None and down_noop is None and not has_sql(down_sql):
        down_sql = None  # an empty down section means irreversible
    return dict(version=path.stem, name=name, path=path, up_sql=up_sql, up_line=up_line,
                down_sql=down_sql, down_line=down_line, checksum=compute_checksum(text), up_noop=up_noop,
                down_noop=down_noop, **{"transactional": True, "lock_timeout_ms": None,
                                        "statement_timeout_ms": None, **settings})


def noop_reason(section: str, path: Path, first_line: int) -> str | None:
    """Return the reason of a '-- noop: REASON' section (comments only), None for any other; refuse a noop line
    without a reason, or beside SQL (the reader could not tell which of the two is meant)."""
    found = list(NOOP.finditer(section))
    if not found:
        return None
    line = first_line + section.count("\n", 0, found[0].start())
    if has_sql(section):
        raise InvalidMigrationFile(f"{path}:{line}: '-- noop:' in a section that holds SQL.",
                                   hint="A no-op section holds only comments: remove the SQL or the '-- noop:' line.")
    reasons = [m["reason"].strip() for m in found if m["reason"].strip()]
    if not reasons:
        raise InvalidMigrationFile(f"{path}:{line}: '-- noop:' without a reason.",
                                   hint="Say why the section does nothing, e.g. '-- noop: the data fix was "
                                        "already applied by hand'.")
    return "; ".join(reasons)


def open_section(direction: str, sections: dict[str, tuple[int, int]], current: str | None,
                 path: Path, line_no: int) -> str:
    """Check a direction marker against the ones seen so far and return the section it opens."""
    if direction not in ("up", "down"):
        raise InvalidMigrationFile(f"{path}:{line_no}: unknown direction {direction!r}; use 'up' or 'down'.",
                                   hint="Write '-- DIRECTION: up' or '-- DIRECTION: down'.")
    if direction in sections:
        raise InvalidMigrationFile(f"{path}:{line_no}: repeated '-- DIRECTION: {direction}' section.",
                                   hint="Keep one up section and at most one down section.")
    if direction == "up" and current == "down":
        raise InvalidMigrationFile(f"{path}:{line_no}: up section after the down section.",
                                   hint="Put the up section first, then the down section.")
    return direction


def read_settings(header: list[str], path: Path) -> dict[str, object]:
    """Read the header's TRANSACTION, LOCK_TIMEOUT and STATEMENT_TIMEOUT lines (issue 6)."""
    settings: dict[str, object] = {}
    for index, line in enumerate(header):
        match = SETTING.match(line)
        if not match:
            continue
        key, value = match["key"].lower(), match["value"]
        if key == "transaction":
            if value.lower() != "none":
                raise InvalidMigrationFile(f"{path}:{index + 1}: unknown TRANSACTION mode {value!r}.",
                                           hint="The only mode is '-- TRANSACTION: none'; omit the line for the "
                                                "default (one transaction).")
            settings["transactional"] = False
        else:
            settings[f"{key}_ms"] = parse_duration(value, f"{path}:{index + 1}")
    return settings


def check_header(header: list[str], path: Path) -> None:
    """Allow only blank lines and comments (-- or /* */, over several lines too) before the first marker."""
    text = COMMENTS.sub(lambda m: "\n" * m.group().count("\n"), "\n".join(header))
    for index, line in enumerate(text.split("\n")):
        if line.strip():
            raise InvalidMigrationFile(f"{path}:{index + 1}: SQL before the first '-- DIRECTION:' marker.",
                                       hint="Move it under '-- DIRECTION: up' or remove it.")


def section_text(lines: list[str], marker_index: int, end_index: int) -> tuple[str, int]:
    """Return a section's SQL (between its marker and end) and the 1-based file line it starts on."""
    start = marker_index + 1
    while start < end_index and not lines[start].strip():
        start += 1  # skip blank lines so server error positions map to the right file line
    return "\n".join(lines[start:end_index]).rstrip() + "\n", start + 1


def check_characters(text: str, path: Path) -> None:
    """Refuse control characters other than tab and newline: the server must run exactly the SQL a reviewer saw.

    A NUL ends the C string the driver sends, so everything after it would be silently dropped; the others are
    invisible in most editors and diffs.
    """
    found = CONTROL.search(text)
    if found:
        code = ord(found.group())
        name = C0_NAMES[code] if code < 32 else "DEL" if code == 127 else "C1 control"
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - text.rfind("\n", 0, found.start())
        raise InvalidMigrationFile(
            f"{path}:{line}: control character U+{code:04X} ({name}) at column {column}; a migration file may hold "
            "no control characters but tab and line breaks.",
            hint="Remove it (editors often hide it). To put such a character into data, write an escape, "
                 "e.g. E'\\x07' or chr(7).")


def has_sql(text: str) -> bool:
    """Return whether the text holds anything but comments and whitespace."""
    return bool(COMMENTS.sub("", text).strip())
