"""The lazy tree (lazy_tree.parse_lazy, built from the parser's JSON) is exactly the tree pglast's parse_sql builds:
same node classes, same values of the same types, same positions, for every kind of statement the tool's tests and
examples use, ASCII or not; and its nodes behave as pglast's do."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from migration_core import lazy_tree
from migration_core.lazy_tree import cut_statements, decoded_statements, parse_lazy
from pglast import ast
from pglast.parser import Displacements, ParseError, parse_sql, parse_sql_json

ROOT = Path(__file__).resolve().parent.parent.parent
TRICKY = [
    "CREATE TABLE t (a int DEFAULT 5, b bool DEFAULT true, c text DEFAULT 'x', d float8 DEFAULT 1.5, "
    "e numeric DEFAULT 1e100, f bit(3) DEFAULT B'101', g bytea DEFAULT '\\x00', h int[] DEFAULT '{1,2}')",
    "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT -1, ALTER COLUMN y TYPE bigint USING y::bigint",
    "SELECT true, false, NULL, 0, 1.5, -2, '', 'a' || 'b', $1, ARRAY[1, 2], ROW(1, 'x'), x'1F', 9223372036854775808",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "BEGIN", "SAVEPOINT s", "SET LOCAL lock_timeout = '1s'",
    "ALTER TYPE m ADD VALUE IF NOT EXISTS 'x' BEFORE 'y'", "CREATE INDEX CONCURRENTLY i ON t USING gin (a)",
    "VACUUM (FREEZE, ANALYZE) t", "ALTER SUBSCRIPTION s SET (failover = on)", "COPY t (a) FROM STDIN",
    "DO $$BEGIN RAISE NOTICE 'x'; END$$", "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1",
    "GRANT SELECT ON t TO PUBLIC", "CREATE POLICY p ON t USING (a > 0)", "REINDEX TABLE CONCURRENTLY t",
    "ALTER TABLE t DETACH PARTITION t1 CONCURRENTLY", "CREATE TABLE p (a int) PARTITION BY RANGE (a)",
    "WITH d AS (DELETE FROM t RETURNING *) INSERT INTO u SELECT * FROM d",
    "CREATE TRIGGER g BEFORE UPDATE OF a ON t FOR EACH ROW WHEN (OLD.a IS DISTINCT FROM NEW.a) EXECUTE FUNCTION f()",
    "INSERT INTO t VALUES (1, NULL), (DEFAULT, 2)", "CREATE FOREIGN TABLE f (a int) SERVER s",
    "SELECT '€ 0.01', 'naïve' ; CREATE TABLE \"ü\" (a int DEFAULT 1);\n-- trailing\n SELECT 'ß'",
    "SELECT 1; SELECT 2", "SELECT 1;;; SELECT 2;", "-- only a comment", "", "   ",
    # text that spells the JSON keys the cutting looks for: inside JSON strings their quotes are escaped
    'SELECT \'{"stmt":{"SelectStmt":{}},"stmt_location":3,"stmt_len":5},\' AS "{""stmt"":", 2 AS "]}";'
    ' CREATE TABLE "{""stmt"":{" ("},""stmt_len"":9}" int DEFAULT 1); COMMENT ON TABLE x IS \'"stmt_len":1}]}\'',
    # char fields set and unset, a long's maximum, lists of lists, empty lists, and positions after non-ASCII comments
    "CREATE TABLE t (a int GENERATED ALWAYS AS IDENTITY, b int GENERATED ALWAYS AS (a + 1) STORED, c text STORAGE "
    "EXTERNAL, FOREIGN KEY (a) REFERENCES u MATCH FULL ON DELETE SET NULL (a) ON UPDATE CASCADE)",
    "ALTER DOMAIN d SET NOT NULL; ALTER DOMAIN d DROP DEFAULT; CREATE ACCESS METHOD h TYPE INDEX HANDLER f",
    "FETCH ALL FROM c; FETCH 0 FROM c; MOVE BACKWARD ALL IN c",
    "SELECT 1 FROM t GROUP BY GROUPING SETS ((a, b), (), ROLLUP (a)); SELECT ARRAY[[1, 2], [3, 4]], a[1:2][:], 0.0, "
    "B'', '', 0, false, 1e-400",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SEARCH DEPTH FIRST BY n SET o CYCLE n SET c "
    "USING p SELECT * FROM r",
    "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b WHEN NOT MATCHED BY SOURCE THEN DELETE "
    "WHEN NOT MATCHED THEN INSERT VALUES (s.a)",
    "SELECT * FROM JSON_TABLE(j, '$[*]' COLUMNS (id FOR ORDINALITY, a int PATH '$.a' DEFAULT 0 ON EMPTY))",
    "/* 𝄞 ; é */ SELECT 1 /* ; */ ; -- ü ;\n;; SELECT $$;é$$, $t$ $$ $t$; CREATE TABLE \"日本\" (\"ñ\" int) ",
]
BAD = ["SELEC 1", "SELECT 'ü' FRM t", "CREATE TABLE (", "SELECT 1; SELEC 2", "SELECT '€' +"]


def corpus() -> list[str]:
    """Return SQL texts: the repository's .sql files, the SQL strings of its tests, and the tricky cases."""
    texts = [p.read_text(encoding="utf-8", errors="replace") for folder in ("tests", "examples")
             for p in (ROOT / folder).rglob("*.sql")]
    for path in (ROOT / "tests").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        texts += re.findall(r'"""(.*?)"""', source, re.S) + re.findall(r'"((?:CREATE|ALTER|DROP|INSERT) [^"\n]+)"',
                                                                      source)
    return texts + TRICKY


def pglast_class(node: ast.Node) -> type:
    """Return pglast's own class of a node (a lazy node's class is a subclass of the same name)."""
    cls = type(node)
    parent = cls.__mro__[1]
    return parent if parent.__name__ == cls.__name__ else cls


def leaves(node: Any, path: str = "") -> list[tuple[str, type, Any]]:
    """Return every value in a tree with its path and exact type (containers included)."""
    if isinstance(node, ast.Node):
        found = [(path, pglast_class(node), None)]
        for name in node.__slots__:
            found += leaves(getattr(node, name, None), f"{path}.{type(node).__name__}.{name}")
        return found
    if isinstance(node, (tuple, list)):
        return [(path, type(node), len(node))] + [leaf for item in node for leaf in leaves(item, path)]
    return [(path, type(node), node)]


def test_the_lazy_tree_is_the_tree_pglast_builds_field_for_field():
    compared = 0
    for text in corpus():
        try:
            expected = leaves(tuple(parse_sql(text)))
        except ParseError:
            continue
        document, positions = parse_sql_json(text), None if text.isascii() else Displacements(text)
        assert leaves(cut_statements(document, positions)) == expected, text[:200]
        assert leaves(decoded_statements(document, positions)) == expected, text[:200]  # the fallback
        compared += 1
    assert compared > 300  # the corpus really exercised the parser


def test_a_statement_is_decoded_only_when_a_field_of_it_is_read():
    first, second = parse_lazy("INSERT INTO t VALUES (1); CREATE INDEX i ON t (a)")
    assert type(first.stmt).__name__ == "InsertStmt" and first.stmt._json[0].__class__ is str
    assert second.stmt.concurrent is False and second.stmt._json[0].__class__ is dict
    assert first.stmt._json[0].__class__ is str


@pytest.mark.parametrize("document", ['{"version":1,"stmts":[{"stmt":{"SelectStmt":{}},"stmt_len":8}',
                                      '{"version":1}', '{"stmts":[]}', '{"version":1,"stmts":[{"stmt":1}]}',
                                      '{"version":1,"stmts":[{"stmt":{"SelectStmt":{}},"stmt_len":"8"}]}'])
def test_a_json_layout_the_cutting_does_not_know_is_refused_not_misread(document):
    with pytest.raises(ValueError):
        cut_statements(document, None)


def test_an_unknown_layout_falls_back_to_decoding_the_whole_json(monkeypatch):
    monkeypatch.setattr(lazy_tree, "STATEMENT_START", '{"no such key":')
    expected = leaves(tuple(parse_sql("SELECT 1; CREATE TABLE t (a int)")))
    assert leaves(parse_lazy("SELECT 1; CREATE TABLE t (a int)")) == expected


@pytest.mark.parametrize("text", BAD)
def test_a_syntax_error_is_pglasts_own_error_with_the_same_message_and_position(text):
    with pytest.raises(ParseError) as expected:
        parse_sql(text)
    with pytest.raises(ParseError) as lazy:
        parse_lazy(text)
    assert lazy.value.args == expected.value.args


def test_lazy_nodes_are_pglast_nodes_to_every_reader():
    raw, = parse_lazy("CREATE TABLE s.t (a int NOT NULL DEFAULT 1)")
    create = raw.stmt
    assert isinstance(create, ast.CreateStmt) and type(create).__name__ == "CreateStmt"
    assert type(create).__slots__ is ast.CreateStmt.__slots__  # what tree walkers iterate
    expected = parse_sql("CREATE TABLE s.t (a int NOT NULL DEFAULT 1)")[0].stmt
    assert create == expected and expected == create  # pglast's own comparison, both ways
    assert create.relation.schemaname == "s" and create.relation.relname == "t"
    assert create.tableElts[0].constraints[1].raw_expr.val.ival == 1
    assert not hasattr(create, "no_such_field") and not hasattr(create, "_json_missing")
    with pytest.raises(AttributeError):
        create.ancestors  # noqa: B018  pglast's unset slot stays unset
    assert "CreateStmt" in repr(create)
    first = create.relation
    assert create.relation is first  # converted once, then kept in its slot


def test_a_deep_expression_pglast_builds_is_read_from_the_lazy_tree_too():
    """Each level of an expression is two JSON objects: an expression pglast's own build reads (600 nested
    concatenations, a generated UPDATE) must not hit Python's recursion limit while its JSON is decoded."""
    from migration_core.risk.nodes import walk
    text = "UPDATE t SET a = " + " || ".join(["'a'"] * 600)
    expected = sum(1 for _ in walk(parse_sql(text)[0].stmt))
    lazy = parse_lazy(text)[0].stmt
    assert lazy.whereClause is None and sum(1 for _ in walk(lazy)) == expected > 2400
