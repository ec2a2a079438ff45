"""Read a Flyway folder: V<version>__<description>.sql, their U<version>__*.sql undo files, R__ repeatables. Pure.

Flyway's naming: prefix V (versioned), U (undo), R (repeatable), B (baseline); '__' separates the version
(digits, '.' or '_' between parts: V1_1 is 1.1) from the description. A V joins the U of the same version as its
down; a V without U is irreversible. R__ and B files, and SQL callbacks, are reported, not written. A
V<version>__x.sql.conf with executeInTransaction=false runs the file outside a transaction.
"""
from __future__ import annotations

import re
from pathlib import Path

from .source import (NotImported, SourceFolder, SourceMigration, bad_source, duplicate_version, list_source_files,
                     read_source_text)

FILE = re.compile(r"^(?P<prefix>[VUBR])(?P<version>[0-9][0-9._]*)?__(?P<description>.*)\.sql$")
NO_TRANSACTION = re.compile(r"^\s*executeInTransaction\s*=\s*false\s*$", re.IGNORECASE | re.MULTILINE)
UNSUPPORTED = {"R": "repeatable migration (R__): unsupported, turn it into a versioned migration if still needed",
               "B": "baseline migration (B): unsupported, its versioned migrations are imported instead"}


def dotted_key(version: str) -> tuple[int, ...]:
    """Return Flyway's order of a version: its numeric parts, trailing zeros dropped (1.0 is 1)."""
    parts = [int(p) for p in re.split(r"[._]", version.strip("._")) if p != ""]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def canonical(version: str) -> str:
    return ".".join(map(str, dotted_key(version)))


def read_folder(path: Path) -> SourceFolder:
    """Read the V files (joined with their U files), in Flyway's version order."""
    versioned: dict[tuple[int, ...], str] = {}
    undo: dict[tuple[int, ...], str] = {}
    not_imported: list[NotImported] = []
    names = list_source_files(path)
    for name in names:
        match = FILE.match(name)
        if name.endswith(".sql.conf") and name[: -len(".conf")] in names:
            continue  # read with its script
        if not match or (match["prefix"] != "R" and not match["version"]):
            not_imported.append(NotImported(name, "not a Flyway migration (V1__name.sql, U1__name.sql); a "
                                                  "callback or another file"))
            continue
        if match["prefix"] in UNSUPPORTED:
            not_imported.append(NotImported(name, UNSUPPORTED[match["prefix"]]))
            continue
        files = versioned if match["prefix"] == "V" else undo
        key = dotted_key(match["version"])
        if key in files:
            raise duplicate_version(canonical(match["version"]), files[key], name)
        files[key] = name
    for key in sorted(set(undo) - set(versioned)):
        raise bad_source(f"{path / undo[key]}: an undo file without the versioned (V) file of its version.",
                         hint="Add the V file, or remove the U file, then import again.")
    migrations = [read_pair(path, versioned[k], undo.get(k), names) for k in sorted(versioned)]
    return SourceFolder("flyway", path, migrations, not_imported)


def read_pair(path: Path, name: str, undo_name: str | None, names: list[str]) -> SourceMigration:
    """Build one migration from a V file and its U file, if any."""
    match = FILE.match(name)
    assert match is not None
    conf = name + ".conf"
    marker = ""
    if conf in names and NO_TRANSACTION.search(read_source_text(path / conf)):
        marker = "executeInTransaction=false"
    down = read_source_text(path / undo_name) if undo_name else None
    return SourceMigration(canonical(match["version"]), match["description"], read_source_text(path / name), down,
                           (name,) + ((undo_name,) if undo_name else ()), marker)
