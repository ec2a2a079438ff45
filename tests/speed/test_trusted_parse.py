"""The faster tree building (statements.parse_trusted) gives exactly the tree pglast's checked parse gives: same
node classes, same values of the same types, for every kind of statement the tool's tests and examples use."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from migration_core.statements import parse_trusted
from pglast import ast
from pglast.parser import ParseError, parse_sql

ROOT = Path(__file__).resolve().parent.parent.parent
TRICKY = [
    "CREATE TABLE t (a int DEFAULT 5, b bool DEFAULT true, c text DEFAULT 'x', d float8 DEFAULT 1.5, "
    "e numeric DEFAULT 1e100, f bit(3) DEFAULT B'101', g bytea DEFAULT '\\x00', h int[] DEFAULT '{1,2}')",
    "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT -1, ALTER COLUMN y TYPE bigint USING y::bigint",
    "SELECT true, false, NULL, 1.5, -2, 'a' || 'b', $1, ARRAY[1, 2], ROW(1, 'x'), x'1F', 9223372036854775808",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "BEGIN", "SAVEPOINT s", "SET LOCAL lock_timeout = '1s'",
    "ALTER TYPE m ADD VALUE IF NOT EXISTS 'x' BEFORE 'y'", "CREATE INDEX CONCURRENTLY i ON t USING gin (a)",
    "VACUUM (FREEZE, ANALYZE) t", "ALTER SUBSCRIPTION s SET (failover = on)", "COPY t (a) FROM STDIN",
    "DO $$BEGIN RAISE NOTICE 'x'; END$$", "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1",
    "GRANT SELECT ON t TO PUBLIC", "CREATE POLICY p ON t USING (a > 0)", "REINDEX TABLE CONCURRENTLY t",
    "ALTER TABLE t DETACH PARTITION t1 CONCURRENTLY", "CREATE TABLE p (a int) PARTITION BY RANGE (a)",
    "WITH d AS (DELETE FROM t RETURNING *) INSERT INTO u SELECT * FROM d",
    "CREATE TRIGGER g BEFORE UPDATE OF a ON t FOR EACH ROW WHEN (OLD.a IS DISTINCT FROM NEW.a) EXECUTE FUNCTION f()",
]


def corpus() -> list[str]:
    """Return SQL texts: the repository's .sql files, the SQL strings of its tests, and the tricky cases."""
    texts = [p.read_text(encoding="utf-8", errors="replace") for folder in ("tests", "examples")
             for p in (ROOT / folder).rglob("*.sql")]
    for path in (ROOT / "tests").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        texts += re.findall(r'"""(.*?)"""', source, re.S) + re.findall(r'"((?:CREATE|ALTER|DROP|INSERT) [^"\n]+)"',
                                                                      source)
    return texts + TRICKY


def leaves(node: Any, path: str = "") -> list[tuple[str, type, Any]]:
    """Return every value in a tree with its path and exact type (containers included)."""
    if isinstance(node, ast.Node):
        found = [(path, type(node), None)]
        for name in node.__slots__:
            found += leaves(getattr(node, name, None), f"{path}.{type(node).__name__}.{name}")
        return found
    if isinstance(node, (tuple, list)):
        return [(path, type(node), len(node))] + [leaf for item in node for leaf in leaves(item, path)]
    return [(path, type(node), node)]


def test_the_trusted_parse_builds_the_same_tree_as_the_checked_one():
    compared = 0
    for text in corpus():
        try:
            expected = parse_sql(text)
        except ParseError:
            continue
        assert leaves(parse_trusted(text)) == leaves(expected), text[:200]
        compared += 1
    assert compared > 300  # the corpus really exercised the parser


def test_outside_a_trusted_parse_pglast_still_checks_every_value_even_after_a_failed_one():
    parse_trusted("SELECT 1")
    with pytest.raises(ValueError):
        ast.String(sval=5)
    with pytest.raises(ParseError):
        parse_trusted("SELEC 1")
    with pytest.raises(ValueError):
        ast.String(sval=5)
    assert type(ast.Boolean(boolval=1).boolval) is bool  # adapted, as pglast does
