"""Pure parsing of migration files: names, sections, checksums. Imports: stdlib, model, errors (never psycopg2)."""
from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path

from .errors import InvalidMigrationFile, UsageError
from .model import Migration

FILE_NAME = re.compile(r"^(?P<stamp>\d{8}_\d{6})_(?P<description>[a-z0-9_]+)\.sql$", re.ASCII)
MAX_VERSION_LENGTH = 64  # the history table's version is VARCHAR(64)
READ_CHUNK = 1 << 20
# The direction marker, run over "\n" + text: a leading literal lets the regex engine jump from line break to line
# break instead of trying every position; a match starts at the line break before its line, i.e. at the line's
# offset in text. (MARKER below is the same pattern for a text on its own.)
MARKER_AFTER_BREAK = re.compile(r"\n[^\S\n]*--[^\S\n]*direction[^\S\n]*:[^\S\n]*(?P<value>[^\n]*?)[^\S\n]*$",
                                re.IGNORECASE | re.MULTILINE | re.ASCII)
MAX_TIMEOUT_MS = 2_147_483_647  # lock_timeout and statement_timeout are int4 milliseconds
UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# The patterns most files never need, compiled on first use (pattern(), or parsing.NAME and the like from outside):
# compiling them all costs about 2 ms, a good part of this module's import, on every run of every command.
PATTERNS: dict[str, tuple[str, int]] = {
    "NAME": (r"^[a-z0-9_]+$", 0),
    "MARKER": (r"^[^\S\n]*--[^\S\n]*direction[^\S\n]*:[^\S\n]*(?P<value>[^\n]*?)[^\S\n]*$",
               re.IGNORECASE | re.MULTILINE | re.ASCII),
    "NAME_HEADER": (r"^\s*--\s*migration\s*:\s*(?P<value>.*?)\s*$", re.IGNORECASE | re.ASCII),
    "SETTING": (r"^\s*--\s*(?P<key>transaction|lock_timeout|statement_timeout)\s*:\s*(?P<value>.*?)\s*$",
                re.IGNORECASE | re.ASCII),
    # ASCII only: under Unicode case folding "ſ" (long s) would match "s" and "٣" would count as a digit.
    "DURATION": (r"^(?P<number>\d+)\s*(?P<unit>ms|s|min|h|d)?$", re.IGNORECASE | re.ASCII),
    "COMMENTS": (r"/\*.*?\*/|--[^\n]*", re.DOTALL),
    # A section holding only comments, one of them "-- noop: REASON", runs nothing and is recorded like any other:
    # the explicit form of golang-migrate's empty down file (an empty down section here means irreversible).
    "NOOP": (r"^[^\S\n]*--[^\S\n]*noop[^\S\n]*:(?P<reason>[^\n]*)$", re.IGNORECASE | re.MULTILINE | re.ASCII),
    # Control characters (C0, DEL and C1) but tab and line feed; a carriage return is a line break, normalised first.
    "CONTROL": (r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", 0),
}
CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f])  # CONTROL in ASCII text (C1 is not ASCII)
C0_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC "
            "FS GS RS US").split()


@cache
def pattern(name: str) -> re.Pattern[str]:
    """Return one of PATTERNS, compiled once."""
    return re.compile(*PATTERNS[name])


def __getattr__(name: str) -> re.Pattern[str]:
    """Return a pattern of PATTERNS as a module attribute (parsing.MARKER), compiling it on first use."""
    if name not in PATTERNS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return pattern(name)


def compute_checksum(sql_text: str) -> str:
    """Return the SHA-256 hex of the text with line endings normalised, so a CRLF checkout is not drift."""
    return hashlib.sha256(normalise_newlines(sql_text).encode("utf-8")).hexdigest()


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def list_migration_files(migrations_dir: Path) -> list[Path]:
    """Return the migration files in version order; a .sql file with a bad name is an error, never skipped."""
    files, problems = listed_files(migrations_dir)
    if problems:
        raise invalid_files(problems)
    return files


def listed_files(migrations_dir: Path) -> tuple[list[Path], list[InvalidMigrationFile]]:
    """Return the well-named migration files in version order, and the problem of every other *.sql entry."""
    names, problems = listed_names(migrations_dir)
    return [migrations_dir / name for name, _ in names], problems


def listed_names(migrations_dir: Path) -> tuple[list[tuple[str, re.Match[str]]], list[InvalidMigrationFile]]:
    """Return the name and name match of each well-named migration file in version order, and the problem of
    every other *.sql entry."""
    if not migrations_dir.is_dir():
        raise UsageError(f"Migrations directory {migrations_dir} does not exist.",
                         hint="Pass --migrations-dir DIR, or create one with "
                              "python scripts/generate_migration.py --name NAME.",
                         code="no_migrations_dir")
    # scandir and plain-name sorting: a thousand Path comparisons cost more than the rest of listing
    with os.scandir(migrations_dir) as entries:
        found = sorted(((e.name, entry_problem(e)) for e in entries if e.name.lower().endswith(".sql")),
                       key=lambda pair: pair[0])
    prefix = child_prefix(migrations_dir)
    problems, names = [], []
    for name, problem in found:
        if problem:  # named like a migration: skipping it would silently leave a migration out
            problems.append(InvalidMigrationFile(f"{prefix}{name}: {problem}.",
                                                 hint="Every *.sql entry of the migrations directory must be a "
                                                      "migration file (or a symbolic link to one): fix it, or move "
                                                      "it elsewhere."))
            continue
        try:
            names.append((name, match_file_name(prefix + name, name, name[:-4])))
        except InvalidMigrationFile as err:
            problems.append(err)
    return names, problems


def child_prefix(migrations_dir: Path) -> str:
    """Return the text that str(migrations_dir / name) puts before a plain file name ("" for ".", "/" for "/"):
    one Path per directory instead of one per file, and the messages read exactly as before."""
    return str(migrations_dir / "_")[:-1]


def invalid_files(problems: list[InvalidMigrationFile]) -> InvalidMigrationFile:
    """Return one error for every invalid file of a run, each listed (error.files), so one run shows them all."""
    error = problems[0] if len(problems) == 1 else InvalidMigrationFile(
        f"{len(problems)} migration files are invalid: " + "; ".join(p.message.rstrip(".") for p in problems) + ".",
        hint="Fix each file listed, then run the command again.")
    error.files = [{"message": p.message, "hint": p.hint} for p in problems]  # type: ignore[attr-defined]
    return error


def entry_problem(entry: os.DirEntry[str]) -> str | None:
    """Return what keeps a directory entry from being read as a migration file, or None if it can be."""
    try:
        if entry.is_file():  # follows a symbolic link
            return None
        if entry.is_dir():
            return "is a directory, not a migration file"
    except OSError as err:  # e.g. a loop of symbolic links
        return f"is a symbolic link that cannot be followed ({err.strerror})"
    if entry.is_symlink():
        return f"is a symbolic link to {os.readlink(entry.path)}, which does not exist"
    return "is not a regular file"


def load_migrations(migrations_dir: Path) -> list[Migration]:
    """Parse every migration file in version order; every invalid file is reported, all in one error."""
    names, problems = listed_names(migrations_dir)
    prefix = child_prefix(migrations_dir)
    migrations = []
    for name, match in names:
        try:
            migrations.append(read_migration(prefix + name, name[:-4], match["description"]))
        except InvalidMigrationFile as err:
            problems.append(err)
    if problems:
        raise invalid_files(sorted(problems, key=lambda p: p.message))
    return migrations


def check_file_name(path: Path) -> re.Match[str]:
    """Return the name match of a migration file, or raise naming the rule it breaks."""
    return match_file_name(str(path), path.name, path.stem)


def match_file_name(where: str, name: str, version: str) -> re.Match[str]:
    """Return the match of a file name (version: the name without .sql), or raise naming the rule it breaks."""
    match = FILE_NAME.match(name)
    if not match:
        raise InvalidMigrationFile(
            f"{where}: file name does not match YYYYMMDD_HHMMSS_description.sql (description: a-z, 0-9, _).",
            hint="Rename the file, or create migrations with python scripts/generate_migration.py --name NAME.")
    if len(version) > MAX_VERSION_LENGTH:
        raise InvalidMigrationFile(
            f"{where}: version is {len(version)} characters; at most {MAX_VERSION_LENGTH} fit in the history table.",
            hint="Shorten the description part of the file name.")
    return match


def parse_migration_file(path: Path) -> Migration:
    """Read and parse one migration file."""
    match = check_file_name(path)
    return read_migration(str(path), path.stem, match["description"])


def read_migration(where: str, version: str, default_name: str) -> Migration:
    """Read and parse the migration file at `where` (its path as text) with a well-formed name."""
    try:
        raw = read_file(where)
    except OSError as err:
        raise InvalidMigrationFile(f"{where}: cannot be read ({err.strerror}).",
                                   hint="Make the file readable by the user running the tool.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InvalidMigrationFile(f"{where}:{line}: file is not valid UTF-8 (byte {err.start}).",
                                   hint="Save the file as UTF-8.") from None
    if text.startswith("\ufeff"):
        text, raw = text[1:], raw[3:]
    if "\r" in text:  # the checksum is over the normalised text
        text, raw = normalise_newlines(text), b""
    return parse_sections(text, where, version, default_name, raw)


def read_file(where: str) -> bytes:
    """Return a file's bytes through os.read: open() builds a buffered file object, which costs more than the
    read itself for a small file (and plan reads every file on each run)."""
    fd = os.open(where, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        data = os.read(fd, os.fstat(fd).st_size + 1)  # a regular file whole, in one read
        more = os.read(fd, READ_CHUNK)  # empty at the end of the file: the usual case
        if not more:
            return data
        chunks = [data, more]  # the file grew since fstat
        while more:
            more = os.read(fd, READ_CHUNK)
            chunks.append(more)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_migration_text(text: str, path: Path, default_name: str) -> Migration:
    """Split a migration's text into its up and down sections (the design's section rules)."""
    return parse_sections(normalise_newlines(text), str(path), path.stem, default_name, b"")


def parse_sections(text: str, where: str, version: str, default_name: str, encoded: bytes) -> Migration:
    """Parse normalised text (encoded: the same text as UTF-8, or b"" to encode it here for the checksum)."""
    if not (encoded and encoded.isascii() and len(encoded.translate(None, CONTROL_BYTES)) == len(encoded)):
        check_characters(text, where)  # the byte test above is the same test, several times faster
    lines = text.split("\n")
    sections: dict[str, tuple[int, int]] = {}  # direction -> (marker line index, end index)
    current: str | None = None
    for marker in MARKER_AFTER_BREAK.finditer("\n" + text):  # one regex pass: plan parses every file on each run
        index = text.count("\n", 0, marker.start())
        current = open_section(marker["value"].lower(), sections, current, where, index + 1)
        if current == "down" and "up" in sections:
            sections["up"] = (sections["up"][0], index)  # up runs to the down marker
        sections[current] = (index, len(lines))
    header = lines[:next(iter(sections.values()))[0]] if sections else lines  # up to the first marker
    settings: dict[str, object] = {}
    name = default_name
    if header:  # most files start with their marker: nothing to check or read
        check_header(header, where)
        name = header_name(header, default_name)
        settings = read_settings(header, where)
    if "up" not in sections:
        raise InvalidMigrationFile(f"{where}:1: no '-- DIRECTION: up' section.",
                                   hint="Add a line '-- DIRECTION: up' before the forward SQL.")
    up_sql, up_line = section_text(lines, *sections["up"])
    up_noop = noop_reason(up_sql, where, up_line)
    if up_noop is None and not has_sql(up_sql):
        raise InvalidMigrationFile(f"{where}:{sections['up'][0] + 1}: the up section is empty.",
                                   hint="Write the forward SQL under '-- DIRECTION: up', or, for a migration that "
                                        "is kept but does nothing, a line '-- noop: REASON'.")
    down_sql, down_line = section_text(lines, *sections["down"]) if "down" in sections else (None, 0)
    down_noop = None if down_sql is None else noop_reason(down_sql, where, down_line)
    if down_sql is not None and down_noop is None and not has_sql(down_sql):
        down_sql = None  # an empty down section means irreversible
    checksum = hashlib.sha256(encoded or text.encode("utf-8")).hexdigest()
    return Migration(version=version, name=name, location=where, up_sql=up_sql, up_line=up_line,
                     down_sql=down_sql, down_line=down_line, checksum=checksum, up_noop=up_noop,
                     down_noop=down_noop, **settings)


def noop_reason(section: str, where: str, first_line: int) -> str | None:
    """Return the reason of a '-- noop: REASON' section (comments only), None for any other; refuse a noop line
    without a reason, or beside SQL (the reader could not tell which of the two is meant)."""
    found = list(pattern("NOOP").finditer(section)) if "--" in section else []  # no comment, no noop line: skip the regex
    if not found:
        return None
    line = first_line + section.count("\n", 0, found[0].start())
    if has_sql(section):
        raise InvalidMigrationFile(f"{where}:{line}: '-- noop:' in a section that holds SQL.",
                                   hint="A no-op section holds only comments: remove the SQL or the '-- noop:' line.")
    reasons = [m["reason"].strip() for m in found if m["reason"].strip()]
    if not reasons:
        raise InvalidMigrationFile(f"{where}:{line}: '-- noop:' without a reason.",
                                   hint="Say why the section does nothing, e.g. '-- noop: the data fix was "
                                        "already applied by hand'.")
    return "; ".join(reasons)


def open_section(direction: str, sections: dict[str, tuple[int, int]], current: str | None,
                 where: str, line_no: int) -> str:
    """Check a direction marker against the ones seen so far and return the section it opens."""
    if direction not in ("up", "down"):
        raise InvalidMigrationFile(f"{where}:{line_no}: unknown direction {direction!r}; use 'up' or 'down'.",
                                   hint="Write '-- DIRECTION: up' or '-- DIRECTION: down'.")
    if direction in sections:
        raise InvalidMigrationFile(f"{where}:{line_no}: repeated '-- DIRECTION: {direction}' section.",
                                   hint="Keep one up section and at most one down section.")
    if direction == "up" and current == "down":
        raise InvalidMigrationFile(f"{where}:{line_no}: up section after the down section.",
                                   hint="Put the up section first, then the down section.")
    return direction


def read_settings(header: list[str], where: str) -> dict[str, object]:
    """Read the header's TRANSACTION, LOCK_TIMEOUT and STATEMENT_TIMEOUT lines (issue 6)."""
    settings: dict[str, object] = {}
    for index, line in enumerate(header):
        match = pattern("SETTING").match(line)
        if not match:
            continue
        key, value = match["key"].lower(), match["value"]
        if key == "transaction":
            if value.lower() != "none":
                raise InvalidMigrationFile(f"{where}:{index + 1}: unknown TRANSACTION mode {value!r}.",
                                           hint="The only mode is '-- TRANSACTION: none'; omit the line for the "
                                                "default (one transaction).")
            settings["transactional"] = False
        else:
            settings[f"{key}_ms"] = parse_duration(value, f"{where}:{index + 1}")
    return settings


def parse_duration(value: str, where: str) -> int:
    """Return milliseconds from a PostgreSQL-style duration: 500ms, 5s, 10min, 1h, 1d (bare numbers are ms)."""
    match = pattern("DURATION").match(value.strip())
    if not match:
        raise InvalidMigrationFile(f"{where}: invalid duration {value!r}.",
                                   hint="Write a number with a unit: 500ms, 5s, 10min, 1h (0 turns the timeout off).")
    milliseconds = int(match["number"]) * UNIT_MS[(match["unit"] or "ms").lower()]
    if milliseconds > MAX_TIMEOUT_MS:
        raise InvalidMigrationFile(f"{where}: duration {value!r} is longer than PostgreSQL accepts (about 24 days).",
                                   hint="Use a shorter duration, or 0 to turn the timeout off.")
    return milliseconds


def header_name(header: list[str], default_name: str) -> str:
    """Return the name of the first non-empty '-- MIGRATION: NAME' line of the header, else default_name."""
    name_header = pattern("NAME_HEADER")
    for line in header:
        match = name_header.match(line)
        if match and match["value"]:
            return match["value"]
    return default_name


def check_header(header: list[str], where: str) -> None:
    """Allow only blank lines and comments (-- or /* */, over several lines too) before the first marker."""
    if all(line.lstrip().startswith("--") or not line.strip() for line in header):
        return  # blank lines and line comments only (a "/*" inside a line comment opens nothing): no SQL
    text = pattern("COMMENTS").sub(lambda m: "\n" * m.group().count("\n"), "\n".join(header))
    for index, line in enumerate(text.split("\n")):
        if line.strip():
            raise InvalidMigrationFile(f"{where}:{index + 1}: SQL before the first '-- DIRECTION:' marker.",
                                       hint="Move it under '-- DIRECTION: up' or remove it.")


def section_text(lines: list[str], marker_index: int, end_index: int) -> tuple[str, int]:
    """Return a section's SQL (between its marker and end) and the 1-based file line it starts on."""
    start = marker_index + 1
    while start < end_index and not lines[start].strip():
        start += 1  # skip blank lines so server error positions map to the right file line
    return "\n".join(lines[start:end_index]).rstrip() + "\n", start + 1


def check_characters(text: str, where: str) -> None:
    """Refuse control characters other than tab and newline: the server must run exactly the SQL a reviewer saw.

    A NUL ends the C string the driver sends, so everything after it would be silently dropped; the others are
    invisible in most editors and diffs.
    """
    found = pattern("CONTROL").search(text)
    if found:
        code = ord(found.group())
        name = C0_NAMES[code] if code < 32 else "DEL" if code == 127 else "C1 control"
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - text.rfind("\n", 0, found.start())
        raise InvalidMigrationFile(
            f"{where}:{line}: control character U+{code:04X} ({name}) at column {column}; a migration file may hold "
            "no control characters but tab and line breaks.",
            hint="Remove it (editors often hide it). To put such a character into data, write an escape, "
                 "e.g. E'\\x07' or chr(7).")


def has_sql(text: str) -> bool:
    """Return whether the text holds anything but comments and whitespace."""
    stripped = text.lstrip()
    if stripped[:1] not in ("-", "/"):  # no comment can start before the first visible character
        return bool(stripped)
    return bool(pattern("COMMENTS").sub("", text).strip())


def check_name(name: str) -> str:
    """Validate a migration description given on the command line."""
    if not pattern("NAME").match(name or ""):
        raise UsageError(f"Invalid migration name {name!r}: use lowercase letters, digits and underscores only.",
                         hint="For example: --name add_user_status_column", code="bad_name")
    return name
