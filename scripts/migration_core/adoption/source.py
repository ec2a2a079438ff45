"""What another tool's migrations folder holds, whatever the tool: one SourceMigration per migration.

The readers (golang_migrate, dbmate, goose, flyway: one module per folder layout) build a SourceFolder; versions.py
maps its versions, writer.py renders and writes the files. Pure: stdlib and errors only (no database, no pglast).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

TOOLS = ("golang-migrate", "dbmate", "goose", "flyway")
NON_WORD = re.compile(r"[^a-z0-9]+", re.ASCII)
MAX_DESCRIPTION = 48  # YYYYMMDD_HHMMSS_ + 48 characters = the 64 a version may have


@dataclass(frozen=True)
class SourceMigration:
    """One migration of the source folder, as the source tool understands it."""

    source_version: str          # as the tool records it in its history: "1", "20240101120000", "1.1"
    description: str             # from the file name, as written there
    up_sql: str                  # "" when the source's up is empty (a no-op there)
    down_sql: str | None         # None: no down in the source (irreversible here); "": empty (a no-op there)
    files: tuple[str, ...]       # the source files it comes from, relative to the folder
    non_transactional: str = ""  # the source's marker that ran it outside a transaction, e.g. "transaction:false"


@dataclass(frozen=True)
class NotImported:
    """A file of the source folder that is not written: unsupported, or not a migration of that tool."""

    file: str
    reason: str


@dataclass(frozen=True)
class SourceFolder:
    tool: str
    path: Path
    migrations: list[SourceMigration]     # in the source tool's order
    not_imported: list[NotImported]


def bad_source(message: str, hint: str = "Fix the source file, or pass the folder of the right tool "
                                       "(--from golang-migrate, dbmate, goose or flyway).") -> UsageError:
    """Return the exit-2 error of a source folder that cannot be read as the named tool's."""
    return UsageError(message, hint=hint, code="bad_source")


def list_source_files(path: Path) -> list[str]:
    """Return the names of the regular files of a source folder, sorted; refuse a folder that is not there."""
    if not path.is_dir():
        raise bad_source(f"Source folder {path} does not exist or is not a directory.",
                         hint="Pass the folder holding the other tool's migration files.")
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if e.is_file())


def read_source_text(path: Path) -> str:
    """Return a source file's text with line endings normalised; refuse one that is not UTF-8."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise bad_source(f"{path}:{line}: file is not valid UTF-8 (byte {err.start}).",
                         hint="Save the file as UTF-8, then import again.") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalise_description(text: str) -> str:
    """Return a file-name description as this tool's [a-z0-9_]+ (at most 48 characters; 'migration' if empty)."""
    words = NON_WORD.sub("_", text.lower()).strip("_")
    return words[:MAX_DESCRIPTION].rstrip("_") or "migration"


def duplicate_version(version: str, first: str, second: str) -> UsageError:
    return UsageError(f"Two source migrations have version {version}: {first} and {second}.",
                      hint="The source tool would refuse them too; renumber one of them, then import again.",
                      code="version_collision")


def read_one_file_per_version(tool: str, path: Path, file: re.Pattern[str], layout: str,
                              read: Callable[[str, re.Match[str]], SourceMigration],
                              unsupported: Callable[[re.Match[str]], str | None] = lambda match: None) -> SourceFolder:
    """Read a folder of one file per migration named VERSION_description (dbmate, goose), in version order.

    A name that does not match file is not a migration of this tool (layout says what is); unsupported(match)
    says why a matching file is not imported either (None: it is); read(name, match) reads one that is.
    """
    found: dict[int, tuple[str, SourceMigration]] = {}
    not_imported: list[NotImported] = []
    for name in list_source_files(path):
        match = file.match(name)
        if match is None:
            not_imported.append(NotImported(name, f"not a {tool} migration file ({layout})"))
            continue
        reason = unsupported(match)
        if reason:
            not_imported.append(NotImported(name, reason))
            continue
        number = int(match["version"])
        if number in found:
            raise duplicate_version(match["version"], found[number][0], name)
        found[number] = (name, read(name, match))
    return SourceFolder(tool, path, [found[v][1] for v in sorted(found)], not_imported)


def read_folder(tool: str, path: Path) -> SourceFolder:
    """Read a source folder in the named tool's layout."""
    from . import dbmate, flyway, golang_migrate, goose
    readers = {"golang-migrate": golang_migrate.read_folder, "dbmate": dbmate.read_folder,
               "goose": goose.read_folder, "flyway": flyway.read_folder}
    folder = readers[tool](path)
    if not folder.migrations:
        raise bad_source(f"No {tool} migration files in {path}"
                         + (f" ({len(folder.not_imported)} other file(s) not imported)." if folder.not_imported
                            else "."),
                         hint=f"Pass the folder that holds the {tool} migrations (see docs/switching.md).")
    return folder


def version_key(tool: str, source_version: str) -> tuple[int, ...]:
    """Return the order (and identity) of a version in the source tool: numbers, or Flyway's dotted parts."""
    if tool == "flyway":
        from .flyway import dotted_key
        return dotted_key(source_version)
    return (int(source_version),)
