"""Read a dbmate folder (db/migrations by default): one VERSION_description.sql file per migration, with
'-- migrate:up' and '-- migrate:down' blocks. Pure.

dbmate's rules (pkg/dbmate/migration.go): a file is ^\\d.*\\.sql$ and its version the leading digits; both blocks
are required, up first, nothing but comments before it; options follow the directive on its line, and
'transaction:false' runs that block outside a transaction. An empty down block rolls back as a no-op there.
"""
from __future__ import annotations

import re
from pathlib import Path

from .source import SourceFolder, SourceMigration, bad_source, read_one_file_per_version, read_source_text

FILE = re.compile(r"^(?P<version>\d+)_?(?P<description>.*)\.sql$")
UP = re.compile(r"^--\s*migrate:up(?P<options>[^\n]*)$", re.MULTILINE)
DOWN = re.compile(r"^--\s*migrate:down(?P<options>[^\n]*)$", re.MULTILINE)
COMMENT_OR_BLANK = re.compile(r"^\s*(--.*)?$")


def read_folder(path: Path) -> SourceFolder:
    """Read every dbmate migration file, in version order."""
    return read_one_file_per_version("dbmate", path, FILE, "VERSION_name.sql",
                                     lambda name, m: read_file(path, name, m["version"], m["description"]))


def read_file(path: Path, name: str, version: str, description: str) -> SourceMigration:
    """Split one dbmate file into its blocks; refuse one dbmate itself would refuse."""
    text = read_source_text(path / name)
    up, down = UP.search(text), DOWN.search(text)
    if not up or not down:
        missing = "-- migrate:up" if not up else "-- migrate:down"
        raise bad_source(f"{path / name}: no '{missing}' block (dbmate requires both).")
    if down.start() < up.start():
        raise bad_source(f"{path / name}: '-- migrate:down' comes before '-- migrate:up'.")
    if not all(COMMENT_OR_BLANK.match(line) for line in text[: up.start()].split("\n")):
        raise bad_source(f"{path / name}: SQL before the '-- migrate:up' block.")
    options = {word for m in (up, down) for word in m["options"].split()}
    marker = "transaction:false" if "transaction:false" in options else ""
    return SourceMigration(version, description, text[up.end(): down.start()].strip("\n"),
                           text[down.end():].strip("\n"), (name,), marker)
