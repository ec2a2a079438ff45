"""Render source migrations as this tool's files, check every one with the project's parsers, then write them all
or none. Imports: stdlib, parsing, statements (pglast), errors, source (never psycopg2).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import parsing
from ..errors import InvalidMigrationFile, Refused, UsageError
from .source import SourceMigration, bad_source, normalise_description

SERVER_VERSION = 180000      # the parser of the newest supported PostgreSQL; apply checks again against the server
MAP_FILE = "import_map.json"  # not *.sql: the migrations directory's listing never reads it as a migration
WRAPPER_BEGIN = re.compile(r"^\s*(BEGIN|START\s+TRANSACTION)(\s+(WORK|TRANSACTION))?\s*;\s*$", re.IGNORECASE)
WRAPPER_END = re.compile(r"^\s*(COMMIT|END)(\s+(WORK|TRANSACTION))?\s*;\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ImportedFile:
    """One file the import writes (or, in a dry run, would write)."""

    source_version: str
    version: str                 # the file name without .sql
    source_files: tuple[str, ...]
    text: str
    notes: list[str] = field(default_factory=list)   # what a reviewer should know: no-ops, irreversible, ...

    @property
    def file_name(self) -> str:
        return self.version + ".sql"


def render(tool: str, source: SourceMigration, stamp: str) -> ImportedFile:
    """Return the file of one source migration under the mapped YYYYMMDD_HHMMSS, checked by the project's parsers."""
    version = f"{stamp}_{normalise_description(source.description)}"
    notes: list[str] = []
    origin = " + ".join(source.files)
    up, up_noop = section_body(tool, "up", source.up_sql, source.files[0], notes)
    down, down_noop = (None, False) if source.down_sql is None else section_body(tool, "down", source.down_sql,
                                                                                   source.files[-1], notes)
    header = [f"-- Imported from {tool}: {origin} (source version {source.source_version})."]
    reason = source.non_transactional and f"{tool} ran it outside a transaction ({source.non_transactional})"
    if any("wrapper removed" in n for n in notes):
        reason = ""  # the source's own BEGIN ... COMMIT made it one transaction; this tool now opens it
    reason = reason or needs_no_transaction([s for s, noop in ((up, up_noop), (down, down_noop))
                                              if s is not None and not noop], origin)
    if reason:
        header += ["-- TRANSACTION: none", f"-- ({reason}: each statement runs and commits on its own)"]
        notes.append(f"runs statement by statement: {reason}")
    if down is None:
        header.append("-- No down section: the source has none, so this migration is irreversible here.")
        notes.append("irreversible: no down in the source")
    text = "\n".join(header) + f"\n-- DIRECTION: up\n{up}\n"
    if down is not None:
        text += f"\n-- DIRECTION: down\n{down}\n"
    imported = ImportedFile(source.source_version, version, source.files, text, notes)
    check_file(imported, up_noop, down_noop)
    return imported


def section_body(tool: str, direction: str, sql: str, origin: str, notes: list[str]) -> tuple[str, bool]:
    """Return a section's SQL as written here, and whether it is a recorded no-op (empty in the source)."""
    if parsing.MARKER.search(sql):
        raise bad_source(f"{origin}: a line of its {direction} SQL reads as this tool's '-- DIRECTION:' marker.",
                         hint="Reword that comment in the source, then import again.")
    lines = sql.strip("\n").split("\n")
    code = [i for i, line in enumerate(lines) if parsing.has_sql(line)]
    if len(code) >= 2 and WRAPPER_BEGIN.match(lines[code[0]]) and WRAPPER_END.match(lines[code[-1]]):
        del lines[code[-1]], lines[code[0]]
        notes.append(f"{direction}: the source's BEGIN ... COMMIT wrapper removed (this tool runs each migration "
                     "in one transaction itself)")
    body = "\n".join(lines).strip("\n")
    if parsing.has_sql(body):
        return body, False
    notes.append(f"{direction} is a recorded no-op: empty in the source")
    return f"-- noop: empty {direction} in the {tool} source ({origin})", True


def needs_no_transaction(sections: list[str], origin: str) -> str:
    """Return why the SQL cannot run inside a transaction block (the first such statement), or ''."""
    from ..statements import non_transactional_reason, parse_statements
    for sql in sections:
        try:
            statements = parse_statements(sql, 1, Path(origin))
        except InvalidMigrationFile as err:
            raise bad_source(f"{tool_error(err)}", hint=err.hint) from None
        for statement in statements:
            reason = non_transactional_reason(statement.node, SERVER_VERSION)
            if reason:
                return f"{reason} cannot run inside a transaction block"
    return ""


def tool_error(err: InvalidMigrationFile) -> str:
    return err.message.rstrip(".") + " (line counted from the start of that section)."


def check_file(imported: ImportedFile, up_noop: bool, down_noop: bool) -> None:
    """Parse the file as plan and apply will (names, sections, statements); a problem is exit 2, nothing written."""
    from ..statements import check_transaction_mode
    path = Path(imported.file_name)
    try:
        parsing.check_file_name(path)
        migration = parsing.parse_migration_text(imported.text, path, path.stem.split("_", 2)[2])
        if not up_noop:
            check_transaction_mode(migration, "up", SERVER_VERSION)
        if migration.reversible and not down_noop:
            check_transaction_mode(migration, "down", SERVER_VERSION)
    except InvalidMigrationFile as err:
        raise bad_source(f"{' + '.join(imported.source_files)} does not make a valid migration here: {err.message}",
                         hint=err.hint) from None


def check_target(migrations_dir: Path, files: list[ImportedFile], merge: bool) -> list[ImportedFile]:
    """Return the files still to write; refuse a non-empty directory without --merge, and any clash with it."""
    if migrations_dir.exists() and not migrations_dir.is_dir():
        raise UsageError(f"{migrations_dir} is not a directory.", code="bad_source",
                         hint="Pass --migrations-dir DIR for the imported files.")
    existing = sorted(p.name for p in migrations_dir.iterdir() if not p.name.startswith(".")) \
        if migrations_dir.is_dir() else []
    if existing and not merge:
        raise Refused(f"{migrations_dir} is not empty ({len(existing)} entries, e.g. {existing[0]}); nothing was "
                      "written.", code="target_not_empty",
                      hint="Import into a new directory (--migrations-dir DIR), or add --merge to add the imported "
                           "files next to the ones there (a file already imported identically is kept).")
    by_stamp = {name[:15]: name for name in existing if name.endswith(".sql")}
    todo = []
    for imported in files:
        there = by_stamp.get(imported.version[:15])
        if there is None:
            todo.append(imported)
        elif there != imported.file_name or (migrations_dir / there).read_text(encoding="utf-8") != imported.text:
            raise UsageError(f"{imported.file_name} (from {' + '.join(imported.source_files)}) would take the "
                             f"version time of {migrations_dir / there}, which differs; nothing was written.",
                             code="version_collision",
                             hint="Import into a new directory, or move the clashing file aside after review.")
    return todo


def write_files(migrations_dir: Path, files: list[ImportedFile], mapping: dict[str, object]) -> Path:
    """Write every file (never over an existing one) and the mapping; on any failure remove what was written."""
    migrations_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for imported in files:
            path = migrations_dir / imported.file_name
            with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite
                written.append(path)
                handle.write(imported.text)
        return write_map(migrations_dir, mapping)
    except OSError as err:
        for path in written:
            path.unlink(missing_ok=True)
        raise UsageError(f"Cannot write {getattr(err, 'filename', migrations_dir)}: {err.strerror}; nothing was "
                         "written.", code="bad_source", hint="Check the directory and its permissions.") from None


def write_map(migrations_dir: Path, mapping: dict[str, object]) -> Path:
    """Write (or, after --merge, extend) import_map.json: source version -> version, per tool."""
    path = migrations_dir / MAP_FILE
    document: dict[str, object] = {}
    if path.exists():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            document = {}
    imports = document.get("imports") if isinstance(document.get("imports"), list) else []
    document = {"about": "versions given by scripts/import_migrations.py (see docs/switching.md)",
                "imports": [*imports, mapping]}  # type: ignore[list-item]
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
