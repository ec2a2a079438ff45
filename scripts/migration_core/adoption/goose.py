"""Read a goose folder: NNNNN_description.sql (or a timestamp) with '-- +goose Up' and '-- +goose Down'. Pure.

goose's rules (internal/sqlparser): the annotations are whole comment lines; Up is required and comes first, Down
is optional; '-- +goose StatementBegin' ... '-- +goose StatementEnd' keep a statement with semicolons inside
together; '-- +goose NO TRANSACTION' anywhere runs the file outside a transaction. The annotation lines are kept
as they are (they are comments here), so a block reads the same after the import; this tool splits statements with
PostgreSQL's own parser, which keeps a function body whole. Go migrations (.go) and '-- +goose ENVSUB ON'
(environment substitution at run time) are not supported.
"""
from __future__ import annotations

import re
from pathlib import Path

from .source import SourceFolder, SourceMigration, bad_source, read_one_file_per_version, read_source_text

FILE = re.compile(r"^(?P<version>\d+)_(?P<description>.*)\.(?P<ext>sql|go)$")
ANNOTATION = re.compile(r"^--\s*\+goose\s+(?P<name>up|down|statementbegin|statementend|no\s+transaction|envsub\s+\w+)"
                        r"\s*$", re.IGNORECASE | re.MULTILINE)


def read_folder(path: Path) -> SourceFolder:
    """Read every goose SQL migration, in version order; Go migrations are reported, not written."""
    return read_one_file_per_version(
        "goose", path, FILE, "VERSION_name.sql",
        lambda name, m: read_file(path, name, str(int(m["version"])), m["description"]),
        unsupported=lambda m: "Go migration: unsupported, rewrite it in SQL" if m["ext"] == "go" else None)


def read_file(path: Path, name: str, version: str, description: str) -> SourceMigration:
    """Split one goose file at its Up and Down annotations; refuse what goose would refuse, and ENVSUB."""
    text = read_source_text(path / name)
    marks = {" ".join(m["name"].lower().split()): m for m in ANNOTATION.finditer(text)}
    names = [" ".join(m["name"].lower().split()) for m in ANNOTATION.finditer(text)]
    if "envsub on" in names:
        raise bad_source(f"{path / name}: '-- +goose ENVSUB ON' substitutes environment variables at run time, "
                         "which this tool does not do.", hint="Write the values into the file, then import again.")
    if names.count("up") != 1 or names.count("down") > 1:
        raise bad_source(f"{path / name}: needs exactly one '-- +goose Up' (and at most one '-- +goose Down').")
    if names.count("statementbegin") != names.count("statementend"):
        raise bad_source(f"{path / name}: a '-- +goose StatementBegin' without its '-- +goose StatementEnd'.")
    up = marks["up"]
    down = marks.get("down")
    if any(line.strip() and not line.strip().startswith("--") for line in text[: up.start()].split("\n")):
        raise bad_source(f"{path / name}: SQL before '-- +goose Up'.")
    if down and down.start() < up.start():
        raise bad_source(f"{path / name}: '-- +goose Down' comes before '-- +goose Up'.")
    up_sql = text[up.end(): down.start() if down else len(text)]
    down_sql = text[down.end():] if down else None
    marker = "-- +goose NO TRANSACTION" if "no transaction" in names else ""
    return SourceMigration(version, description, strip_no_transaction(up_sql),
                           None if down_sql is None else strip_no_transaction(down_sql), (name,), marker)


def strip_no_transaction(sql: str) -> str:
    """Drop the NO TRANSACTION annotation from a section (it becomes the file's '-- TRANSACTION: none')."""
    kept = [line for line in sql.split("\n")
            if not re.fullmatch(r"--\s*\+goose\s+no\s+transaction\s*", line.strip(), re.IGNORECASE)]
    return "\n".join(kept).strip("\n")
