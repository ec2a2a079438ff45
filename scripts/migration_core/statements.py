"""Split SQL into statements with the real PostgreSQL parser (pglast), and find statements that cannot run inside
a transaction block. Pure: imports stdlib, pglast, model, errors (never psycopg2).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InvalidMigrationFile
from .model import Migration


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int           # file line where the statement starts
    node: Any           # the pglast statement node


@lru_cache(maxsize=None)  # lives for one run: each section is parsed once
def parse_raw(sql: str, first_line: int, path: Path) -> tuple[Any, ...]:
    """Return pglast's raw statements of a section, parsed once per run (the risk rules read the same tree).

    A syntax error names the file and line (exit 2).
    """
    from pglast.parser import ParseError, parse_sql  # imported on demand: plan's start-up stays lean
    try:
        return tuple(parse_sql(sql))
    except ParseError as err:
        message, position = err.args[0], err.args[1] if len(err.args) > 1 else 0
        line = first_line + sql[:position].count("\n")
        raise InvalidMigrationFile(f"{path}:{line}: SQL syntax error: {message}.",
                                   hint="Fix the statement; PostgreSQL would reject it too.") from None


def parse_statements(sql: str, first_line: int, path: Path) -> list[Statement]:
    """Return the statements of a section, each with its text and file line."""
    statements = []
    for item in parse_raw(sql, first_line, path):
        start = item.stmt_location or 0
        text = sql[start: start + item.stmt_len] if item.stmt_len else sql[start:]
        skipped = len(text) - len(text.lstrip())  # pglast's location can point at leading whitespace/comments
        statements.append(Statement(text.strip(), first_line + sql[: start + skipped].count("\n"), item.stmt))
    return statements


def transaction_forbidden(node: Any) -> str | None:
    """Return the statement's name if PostgreSQL refuses it inside a transaction block on any version."""
    kind = type(node).__name__
    if kind == "IndexStmt" and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt" and any(p.defname == "concurrently" for p in node.params or ()):
        return "REINDEX CONCURRENTLY"
    if kind == "VacuumStmt" and node.is_vacuumcmd:
        return "VACUUM"
    if kind == "AlterTableStmt" and any(type(getattr(cmd, "def_", None)).__name__ == "PartitionCmd"
                                        and cmd.def_.concurrent for cmd in node.cmds or ()):
        return "DETACH PARTITION CONCURRENTLY"
    return {"CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE", "AlterSystemStmt": "ALTER SYSTEM",
            "CreateTableSpaceStmt": "CREATE TABLESPACE", "DropTableSpaceStmt": "DROP TABLESPACE"}.get(kind)


def non_transactional_reason(node: Any, server_version: int) -> str | None:
    """Return why a statement cannot run inside a transaction block on this server, or None if it can."""
    if type(node).__name__ == "AlterEnumStmt" and node.newVal and server_version < 120000:
        return "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)"
    return transaction_forbidden(node)


def check_transaction_mode(migration: Migration, direction: str, server_version: int) -> list[Statement]:
    """Parse a section; refuse a transactional one holding a statement that needs `-- TRANSACTION: none`."""
    sql, first_line = migration.section(direction)  # type: ignore[arg-type]
    statements = parse_statements(sql, first_line, migration.path)
    if migration.transactional:
        for statement in statements:
            reason = non_transactional_reason(statement.node, server_version)
            if reason:
                raise InvalidMigrationFile(
                    f"{migration.path}:{statement.line}: {reason} cannot run inside a transaction block.",
                    hint="Add the header line '-- TRANSACTION: none' above '-- DIRECTION: up' (statements then run "
                         "one at a time; make them safe to re-run, e.g. IF NOT EXISTS).")
    return statements
