"""Read a golang-migrate folder: NNN_description.up.sql and NNN_description.down.sql pairs. Pure.

golang-migrate's own file rule (source/parse.go): ^([0-9]+)_(.*)\\.(down|up)\\.(.*)$, the version an unsigned
number. It runs a missing or empty down file as a no-op; here an empty down file becomes an explicit
'-- noop:' down, a missing one an irreversible migration (the design's rule: no down, no rollback).
"""
from __future__ import annotations

import re
from pathlib import Path

from .source import (NotImported, SourceFolder, SourceMigration, bad_source, duplicate_version, list_source_files,
                     read_source_text)

FILE = re.compile(r"^(?P<version>[0-9]+)_(?P<description>.*)\.(?P<direction>up|down)\.(?P<ext>.*)$")
# Not golang-migrate's, but its layout: morph (Mattermost) marks a file that must run outside a transaction so.
NON_TRANSACTIONAL = re.compile(r"^\s*--\s*morph:nontransactional\s*$", re.MULTILINE)


def read_folder(path: Path) -> SourceFolder:
    """Pair the up and down files of each version, in version order."""
    pairs: dict[int, dict[str, str]] = {}
    not_imported: list[NotImported] = []
    for name in list_source_files(path):
        match = FILE.match(name)
        if not match or match["ext"] != "sql":
            not_imported.append(NotImported(name, "not a golang-migrate SQL migration file (N_name.up.sql or "
                                                  "N_name.down.sql)"))
            continue
        pair = pairs.setdefault(int(match["version"]), {})
        if match["direction"] in pair:
            raise duplicate_version(match["version"], pair[match["direction"]], name)
        pair[match["direction"]] = name
    return SourceFolder("golang-migrate", path, [read_pair(path, v, pairs[v]) for v in sorted(pairs)], not_imported)


def read_pair(path: Path, version: int, pair: dict[str, str]) -> SourceMigration:
    """Build one migration from its up file and its down file, if any."""
    if "up" not in pair:
        raise bad_source(f"{path / pair['down']}: a down file without an up file for version {version}.",
                         hint="Add the up file, or remove the down file, then import again.")
    up_text = read_source_text(path / pair["up"])
    down_text = read_source_text(path / pair["down"]) if "down" in pair else None
    marker = "-- morph:nontransactional" if NON_TRANSACTIONAL.search(up_text + (down_text or "")) else ""
    description = FILE.match(pair["up"])["description"]  # type: ignore[index]
    return SourceMigration(str(version), description, up_text, down_text,
                           tuple(pair[d] for d in ("up", "down") if d in pair), marker)
