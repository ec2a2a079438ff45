"""The SQL inside DO blocks: each statement a PL/pgSQL block runs, with its file line, for the risk rules (issue 10).

pglast parses PL/pgSQL (pglast.parse_plpgsql): a static statement comes back as its text, parsed here like any
other; an EXECUTE builds its SQL at run time, so it becomes a DynamicSql pseudo-statement that the
dynamic_sql_not_analysed rule reports instead of trusting it. Function bodies (CREATE FUNCTION) are not run by the
migration and are not analysed. Pure: stdlib and pglast (imported on first use).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .nodes import Node, node_type

# PL/pgSQL statements whose SQL is a string built at run time.
DYNAMIC = {"PLpgSQL_stmt_dynexecute": "EXECUTE", "PLpgSQL_stmt_dynfors": "FOR ... IN EXECUTE",
           "PLpgSQL_stmt_open": "OPEN ... FOR EXECUTE"}


@dataclass(frozen=True)
class DynamicSql:
    """A pseudo-statement: SQL a DO block builds at run time (node_type 'DynamicSql')."""

    what: str       # e.g. "EXECUTE format('ALTER TABLE %I ...', name)"


def is_plpgsql_block(node: Node) -> bool:
    """Return whether a statement is a DO block in PL/pgSQL (the default language)."""
    if node_type(node) != "DoStmt":
        return False
    language = next((str(a.arg.sval) for a in node.args or () if a.defname == "language"), "plpgsql")
    return language.lower() == "plpgsql"


def embedded_statements(node: Node, text: str, body_line: int) -> list[tuple[Node, int]]:
    """Return (statement node, file line) for each statement a DO block runs, in the order written.

    `text` is the DO statement alone; PL/pgSQL numbers lines from the one on which the body's opening quote
    stands, the file line body_line (see body_location).
    """
    from pglast import parse_plpgsql
    from pglast.parser import ParseError
    try:
        tree = parse_plpgsql(text)
    except ParseError:
        return []  # the server reports a broken block when it runs; the rules have nothing to read
    found: list[tuple[Node, int]] = []
    for kind, fields in plpgsql_statements(tree):
        line = body_line + int(fields.get("lineno", 1)) - 1
        if kind in DYNAMIC and (kind != "PLpgSQL_stmt_open" or "dynquery" in fields):
            found.append((DynamicSql(f"{DYNAMIC[kind]} on line {line}"), line))
        elif kind == "PLpgSQL_stmt_execsql":
            found += [(stmt, line) for stmt in parse_embedded(expression(fields.get("sqlstmt")))]
    return found


def body_location(node: Node, location: int) -> int:
    """Return where a DO block's body (its opening quote) starts in the section, else the statement's start."""
    body = next((a for a in node.args or () if a.defname == "as"), None)
    return int(getattr(body, "arg_location", None) or getattr(body, "location", None) or location)


def plpgsql_statements(tree: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (statement kind, fields) for every PL/pgSQL statement of a parse tree, in the order written."""
    if isinstance(tree, list):
        for item in tree:
            yield from plpgsql_statements(item)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            if key.startswith("PLpgSQL_stmt_") and isinstance(value, dict):
                yield key, value
            yield from plpgsql_statements(value)


def expression(value: Any) -> str:
    """Return the SQL text of a PLpgSQL_expr field ('' when absent)."""
    if isinstance(value, dict):
        return str(value.get("PLpgSQL_expr", {}).get("query", ""))
    return ""


def parse_embedded(query: str) -> list[Node]:
    """Parse one embedded statement; text the SQL parser cannot read (PL/pgSQL variables in odd places) is skipped."""
    from pglast.parser import ParseError

    from ..lazy_tree import parse_lazy
    if not query.strip():
        return []
    try:
        return [raw.stmt for raw in parse_lazy(query)]
    except ParseError:
        return []
