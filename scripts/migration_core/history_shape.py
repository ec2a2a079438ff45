"""Recognise another tool's history where this tool keeps its own: dbmate, golang-migrate, goose, Flyway, unknown.

dbmate and golang-migrate both name their table schema_migrations, as this tool does; reading it as ours would end
in "column id does not exist". So before history is read or created, one catalog query looks at what sits in the
history table's place (and, when nothing does, at goose's and Flyway's tables in the history schema: another tool
manages this database), and every command refuses with foreign_history_table, naming the tool and the adoption
command. Classification is pure (classify); the query takes the caller's connection and transaction.
Imports: stdlib, config, errors (the caller passes a psycopg2 connection in).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from . import config
from .errors import ForeignHistoryTable

GOOSE_TABLE = "goose_db_version"
FLYWAY_TABLE = "flyway_schema_history"
OUR_COLUMNS = frozenset({"id", "version", "name", "checksum", "applied_at", "direction", "status", "error_message"})
GOLANG_MIGRATE_COLUMNS = frozenset({"version", "dirty"})
GOOSE_COLUMNS = frozenset({"version_id", "is_applied"})
FLYWAY_COLUMNS = frozenset({"installed_rank", "version", "script", "success"})
TABLE_KINDS = ("r", "p")  # an ordinary or partitioned table; a view or anything else in the place is "unknown"
# One row per column of each relation asked about (one row with NULL columns for a relation without any).
SELECT_SHAPES = """
SELECT c.relname, c.relkind, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %s AND c.relname IN (%s, %s, %s)
ORDER BY c.relname, a.attnum
"""


@dataclass(frozen=True)
class ForeignHistory:
    """A table that is not this tool's history, found where the history goes."""

    tool: str                   # "dbmate" | "golang-migrate" | "goose" | "flyway" | "unknown"
    schema: str
    table: str
    columns: tuple[str, ...]    # in table order

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class Column:
    name: str
    type: str                   # as format_type renders it: "character varying(255)", "bigint", ...


def classify(columns: list[Column], kind: str = "r") -> str | None:
    """Return which tool a history table of these columns belongs to; None: it is this tool's own."""
    names = {c.name for c in columns}
    types = {c.name: c.type for c in columns}
    if kind in TABLE_KINDS and OUR_COLUMNS <= names:
        return None
    if names == {"version"} and is_text(types["version"]):
        return "dbmate"  # version varchar PRIMARY KEY (varchar(255) before dbmate 2)
    if names == GOLANG_MIGRATE_COLUMNS and types["dirty"] == "boolean":
        return "golang-migrate"  # version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL
    if GOOSE_COLUMNS <= names:
        return "goose"
    if FLYWAY_COLUMNS <= names:
        return "flyway"
    return "unknown"


def is_text(type_name: str) -> bool:
    return type_name == "text" or type_name.startswith(("character varying", "character("))


def read_shapes(conn: Any, schema: str, table: str) -> dict[str, tuple[str, list[Column]]]:
    """Return relation name -> (relkind, its columns) for table, goose's and Flyway's, those in schema: one query."""
    shapes: dict[str, tuple[str, list[Column]]] = {}
    with conn.cursor() as cur:
        cur.execute(SELECT_SHAPES, (schema, table, GOOSE_TABLE, FLYWAY_TABLE))
        for relname, relkind, name, type_name in cur.fetchall():
            _, columns = shapes.setdefault(relname, (relkind, []))
            if name is not None:
                columns.append(Column(name, type_name))
    return shapes


def inspect_history_place(conn: Any) -> tuple[bool, ForeignHistory | None]:
    """Return (this tool's history table exists, the foreign history found instead), in one catalog query.

    The configured table is judged by its columns, whatever its name; when it is absent, goose's or Flyway's table
    in the history schema means another tool manages this database.
    """
    schema, table = config.history_schema(), config.history_table()
    shapes = read_shapes(conn, schema, table)
    if table in shapes:
        kind, columns = shapes[table]
        tool = classify(columns, kind)
        return tool is None, None if tool is None else ForeignHistory(tool, schema, table,
                                                                      tuple(c.name for c in columns))
    for other, tool in ((GOOSE_TABLE, "goose"), (FLYWAY_TABLE, "flyway")):
        if other in shapes:
            return False, ForeignHistory(tool, schema, other, tuple(c.name for c in shapes[other][1]))
    return False, None


def find_foreign_history(conn: Any) -> ForeignHistory | None:
    """Return the other tool's history found where this tool's goes (see inspect_history_place), or None."""
    return inspect_history_place(conn)[1]


def check_history_place(conn: Any) -> bool:
    """Return whether this tool's history table exists; raise foreign_history_table when another's is there."""
    exists, foreign = inspect_history_place(conn)
    if foreign is not None:
        raise foreign_history_error(foreign)
    return exists


def foreign_history_error(found: ForeignHistory) -> ForeignHistoryTable:
    """The refusal: which tool the table looks like, and the command that adopts its history (or the way round)."""
    shape = ", ".join(found.columns) or "no columns"
    other_schema = "another schema with --history-schema NAME (or MIGRATIONS_SCHEMA)"
    other_name = ("use another name for this tool's history with --history-table NAME (or MIGRATIONS_TABLE), or "
                  + other_schema)
    if found.tool == "unknown":
        return ForeignHistoryTable(
            f"The table {found.qualified} ({shape}) is where this tool keeps its history, but it is not this tool's "
            "history table, nor one of dbmate, golang-migrate, goose or Flyway; nothing was read or changed.",
            tool=found.tool, table=found.qualified, hint=f"Keep that table and {other_name}.")
    name = "Flyway" if found.tool == "flyway" else found.tool
    in_place = found.table == config.history_table()
    where = "is where this tool keeps its history" if in_place else "means another tool manages this database"
    # Beside goose's or Flyway's table, another name changes nothing: only another schema keeps them apart.
    both = other_name if in_place else f"give this tool's history {other_schema}"
    return ForeignHistoryTable(
        f"The table {found.qualified} ({shape}) looks like {name}'s history and {where}; nothing was read or "
        "changed.", tool=found.tool, table=found.qualified,
        hint=f"To switch to this tool, import the migrations and adopt that history: {adopt_command(found.tool)} "
             f"(preview with --dry-run first). To keep both tools, {both}.")


def adopt_command(tool: str) -> str:
    """Return the adoption command, naming the history schema and table whenever they are not the defaults."""
    words = ["python", "scripts/import_migrations.py", "--from", tool, "MIGRATIONS_SOURCE_DIR", "--adopt"]
    if config.history_schema() != config.DEFAULT_HISTORY_SCHEMA:
        words += ["--history-schema", config.history_schema()]
    if config.history_table() != config.DEFAULT_HISTORY_TABLE:
        words += ["--history-table", config.history_table()]
    return shlex.join(words)
