"""The snapshot's catalog queries were made faster (what belongs to a relation is worked out once per relation, not
once per column): the snapshot they give must stay byte-identical
for the same schema, since the recorded snapshots, their hashes and every later diff of existing installs depend on
it. Checked over a schema holding every kind of object the snapshot describes, against the queries as they were
(kept here verbatim)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from conftest import fresh_database, query
from migration_core import snapshot
from migration_core.snapshot import canonical_json, snapshot_hash, take_snapshot
from migration_core.snapshot_store import record_current_snapshot

# The snapshot queries before this change, as the server received them.
OLD_QUERIES = {
    'schemas': """
SELECT quote_ident(n.nspname) FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_' AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_namespace'::regclass AND x.objid = n.oid)
""",
    'extensions': """
SELECT quote_ident(e.extname), e.extversion, quote_ident(n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
""",
    'columns': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind, c.relpersistence = 'u', c.relrowsecurity,
       c.reloptions, pg_get_partkeydef(c.oid), pg_get_expr(c.relpartbound, c.oid),
       ARRAY(SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.relname) FROM pg_inherits i
             JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
             WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
       quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f', 'c') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_' AND c.relname <> ALL(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_class'::regclass AND x.objid = c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_type'::regclass AND x.objid = c.reltype)
ORDER BY c.oid, a.attnum
""",
    'views': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind, pg_get_viewdef(c.oid), c.reloptions
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_class'::regclass AND x.objid = c.oid)
""",
    'constraints': """
SELECT k.conrelid <> 0, quote_ident(n.nspname) || '.' || quote_ident(coalesce(c.relname, t.typname)),
       quote_ident(k.conname), pg_get_constraintdef(k.oid)
FROM pg_constraint k
LEFT JOIN pg_class c ON c.oid = k.conrelid
LEFT JOIN pg_type t ON t.oid = k.contypid
JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, t.typnamespace)
WHERE k.contype NOT IN ('n', 't') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
""",
    'indexes': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), quote_ident(tn.nspname) || '.' || quote_ident(tc.relname),
       pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_' AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                  AND k.contype IN ('p', 'u', 'x'))
""",
    'sequences': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       quote_ident(otn.nspname) || '.' || quote_ident(ot.relname), quote_ident(a.attname)
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class ot ON ot.oid = d.refobjid LEFT JOIN pg_namespace otn ON otn.oid = ot.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_' AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_class'::regclass AND x.objid = c.oid)
""",
    'functions': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')',
       p.prokind, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), l.lanname, p.provolatile,
       p.proisstrict, p.prosecdef, p.proparallel, p.proconfig,
       md5(coalesce(p.prosrc, '') || coalesce(pg_get_function_sqlbody(p.oid), ''))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_' AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_proc'::regclass AND x.objid = p.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass AND x.objid = p.oid
                  AND x.deptype = 'i')
""",
    'triggers': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(t.tgname), pg_get_triggerdef(t.oid), t.tgenabled
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
""",
    'types': """
SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typtype,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
       CASE WHEN t.typcollation <> 0 AND t.typcollation <> b.typcollation
            THEN t.typcollation::regcollation::text END,
       (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typtype IN ('e', 'd', 'r') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' AND x.classid = 'pg_type'::regclass AND x.objid = t.oid)
""",
}


RICH_SCHEMA = r"""
CREATE EXTENSION hstore;
CREATE EXTENSION cube SCHEMA public;
CREATE SCHEMA app;
CREATE SCHEMA "Mixed Case";
CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated');
ALTER TYPE mood ADD VALUE 'calm' BEFORE 'sad';
CREATE TYPE app.pair AS (left_side integer, "Right Side" text COLLATE "C");
CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE DOMAIN positive AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0);
CREATE DOMAIN app.code AS text COLLATE "C" CONSTRAINT code_shape CHECK (VALUE ~ '^[A-Z]+$');
CREATE SEQUENCE free_standing AS smallint INCREMENT BY 3 MINVALUE -10 MAXVALUE 1000 START 7 CACHE 5 CYCLE;
CREATE SEQUENCE "Mixed Case".owned_later;
CREATE TABLE parent_a (id bigint GENERATED ALWAYS AS IDENTITY (START 100 INCREMENT 2), a text DEFAULT 'x');
CREATE TABLE parent_b (b numeric(10, 2) DEFAULT 1.50, tags hstore);
CREATE TABLE child (c int) INHERITS (parent_b, parent_a);
CREATE TABLE "Mixed Case"."Odd Table" ("Id" serial PRIMARY KEY, "select" text COLLATE "C" NOT NULL,
    "Mood" mood DEFAULT 'happy', pos positive, code app.code, p app.pair, r floatrange, c cube,
    total numeric GENERATED ALWAYS AS ("Id" * 2) STORED,
    by_default int GENERATED BY DEFAULT AS IDENTITY,
    at timestamptz DEFAULT now(), during interval DEFAULT '1 day 02:00', arr int[] DEFAULT '{1,2}',
    later int DEFAULT nextval('"Mixed Case".owned_later'));
ALTER SEQUENCE "Mixed Case".owned_later OWNED BY "Mixed Case"."Odd Table".later;
ALTER TABLE "Mixed Case"."Odd Table" DROP COLUMN at;
ALTER TABLE "Mixed Case"."Odd Table" ADD COLUMN at2 date DEFAULT CURRENT_DATE;
CREATE UNLOGGED TABLE app.scratch (k text PRIMARY KEY, v jsonb DEFAULT '{}') WITH (fillfactor = 70,
    autovacuum_enabled = false);
ALTER TABLE app.scratch ENABLE ROW LEVEL SECURITY;
CREATE TABLE measurements (id int, at date NOT NULL, region text, value float8,
    CONSTRAINT value_sane CHECK (value > -1e9)) PARTITION BY RANGE (at);
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
    PARTITION BY LIST (region);
CREATE TABLE measurements_2025_eu PARTITION OF measurements_2025 FOR VALUES IN ('eu', 'uk');
CREATE TABLE measurements_2025_rest PARTITION OF measurements_2025 DEFAULT;
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO (MAXVALUE);
CREATE TABLE hashed (id int PRIMARY KEY, payload text) PARTITION BY HASH (id);
CREATE TABLE hashed_0 PARTITION OF hashed FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE hashed_1 PARTITION OF hashed FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE expr_part (a int, b text) PARTITION BY RANGE ((a * 2), lower(b));
CREATE INDEX measurements_at ON measurements (at);
CREATE UNIQUE INDEX odd_lower ON "Mixed Case"."Odd Table" (lower("select")) WHERE pos > 10;
CREATE EXTENSION btree_gist;
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES "Mixed Case"."Odd Table" ("Id") ON DELETE CASCADE,
    during tstzrange, EXCLUDE USING gist (during WITH &&), UNIQUE (user_id, id) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE empty_one ();
CREATE VIEW odd_view AS SELECT "Id", "select" FROM "Mixed Case"."Odd Table" WHERE "Mood" <> 'sad';
CREATE MATERIALIZED VIEW app.mv WITH (fillfactor = 90) AS SELECT count(*) AS n FROM orders;
CREATE INDEX mv_n ON app.mv (n);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE FUNCTION app.add(a int, b int DEFAULT 2) RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    BEGIN ATOMIC SELECT a + b; END;
CREATE FUNCTION secure() RETURNS setof text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = app
    AS 'SELECT ''x''';
CREATE PROCEDURE app.tidy(INOUT n int) LANGUAGE plpgsql AS $$BEGIN n := n + 1; END$$;
CREATE AGGREGATE app.total(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');
CREATE TRIGGER odd_touch BEFORE UPDATE OF "select" ON "Mixed Case"."Odd Table" FOR EACH ROW
    WHEN (OLD."select" IS DISTINCT FROM NEW."select") EXECUTE FUNCTION touch();
CREATE TRIGGER off_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE orders DISABLE TRIGGER off_touch;
CREATE CONSTRAINT TRIGGER late AFTER INSERT ON orders DEFERRABLE FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER view_touch INSTEAD OF INSERT ON odd_view FOR EACH ROW EXECUTE FUNCTION touch();
CREATE EXTENSION file_fdw;
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE app.lines (line text DEFAULT 'none', n int NOT NULL) SERVER files
    OPTIONS (filename '/dev/null');
CREATE TABLE ext_owned (a int);
CREATE TYPE ext_composite AS (x int);
CREATE FUNCTION ext_function() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE SEQUENCE ext_sequence;
ALTER EXTENSION hstore ADD TABLE ext_owned;
ALTER EXTENSION hstore ADD TYPE ext_composite;
ALTER EXTENSION hstore ADD FUNCTION ext_function();
ALTER EXTENSION hstore ADD SEQUENCE ext_sequence;
CREATE TABLE schema_migrations (id int);
CREATE TABLE app.schema_migrations_snapshots (id int);
"""
VIRTUAL = "ALTER TABLE parent_b ADD COLUMN doubled numeric GENERATED ALWAYS AS (b * 2) VIRTUAL"  # PostgreSQL 18


def old_build_relations(rows: list[tuple[Any, ...]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (tables, composite types) from the one-row-per-column query: snapshot.build_relations as it was."""
    tables: dict[str, Any] = {}
    composites: dict[str, Any] = {}
    for key, kind, unlogged, row_security, options, part_key, part_bound, inherits, column, *spec in rows:
        if kind == "c":
            relation = composites.setdefault(key, {"kind": "composite", "attributes": {}, "attribute_order": []})
            members, order = relation["attributes"], relation["attribute_order"]
        else:
            relation = tables.setdefault(key, {
                "kind": snapshot.TABLE_KINDS[kind], "unlogged": unlogged, "row_security": row_security,
                "options": sorted(options or []), "partition_key": part_key, "partition_bound": part_bound,
                "inherits": list(inherits), "columns": {}, "column_order": [], "constraints": {}, "triggers": {}})
            members, order = relation["columns"], relation["column_order"]
        if column is not None:
            members[column] = snapshot.build_column(*spec)
            order.append(column)
    return tables, composites


@pytest.fixture(scope="module")
def rich_url(pg_server: str) -> Iterator[str]:
    """Yield the URL of a database holding the rich schema (one per module: the tests only read it)."""
    with fresh_database(pg_server) as url:
        query(url, RICH_SCHEMA)
        if int(query(url, "SHOW server_version_num")[0][0]) >= 180000:
            query(url, VIRTUAL)
        yield url


def snapshots(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Return the canonical JSON of the snapshot taken with today's queries, and with the old ones."""
    conn = psycopg2.connect(url)
    try:
        new = canonical_json(take_snapshot(conn))
        with monkeypatch.context() as patch:
            patch.setattr(snapshot, "QUERIES", OLD_QUERIES)
            patch.setattr(snapshot, "build_relations", old_build_relations)
            old = canonical_json(take_snapshot(conn))
    finally:
        conn.close()
    return new, old


def test_the_new_queries_snapshot_a_rich_schema_byte_for_byte_as_the_old_ones(rich_url, monkeypatch):
    new, old = snapshots(rich_url, monkeypatch)

    assert new == old
    described = json.loads(new)  # and the schema is as rich as meant: the comparison covers every kind of object
    tables = described["tables"]
    assert tables["public.child"]["inherits"] == ["public.parent_b", "public.parent_a"]
    assert tables["public.measurements"]["partition_key"] == "RANGE (at)"
    assert tables["public.measurements_2025_eu"]["partition_bound"] == "FOR VALUES IN ('eu', 'uk')"
    assert tables["public.expr_part"]["partition_key"] == "RANGE (((a * 2)), lower(b))"
    assert tables["public.empty_one"]["columns"] == {}
    assert tables["app.scratch"]["unlogged"] and tables["app.scratch"]["row_security"]
    assert tables["app.lines"]["kind"] == "foreign table"
    odd = tables['"Mixed Case"."Odd Table"']["columns"]
    assert odd['"select"']["collation"] == '"C"' and odd["total"]["generated"] == '("Id" * 2) STORED'
    assert odd["by_default"]["identity"] == "by default" and "at" not in odd
    assert described["types"]["app.pair"]["kind"] == "composite"
    assert described["types"]["public.mood"]["labels"] == ["happy", "calm", "sad", "it's complicated"]
    assert described["sequences"]['"Mixed Case".owned_later']["owned_by"] == '"Mixed Case"."Odd Table".later'
    assert described["sequences"]["public.free_standing"]["owned_by"] is None
    assert {"public.ext_owned", "public.ext_sequence", "public.schema_migrations"}.isdisjoint(
        {*tables, *described["sequences"]})
    assert "public.ext_composite" not in described["types"] and "public.cube" not in described["types"]
    assert "app.schema_migrations_snapshots" not in tables
    assert "app.mv" in described["views"] and "public.odd_view" in described["views"]
    assert "app.total(integer)" in described["functions"] and "public.ext_function()" not in described["functions"]


def test_the_new_queries_return_the_same_rows_as_the_old_ones(rich_url):
    conn = psycopg2.connect(rich_url)
    try:
        with snapshot.normalised_scope(conn) as cur:
            for name, sql in OLD_QUERIES.items():
                params = ([["schema_migrations", "schema_migrations_snapshots"]]) if name == "columns" else None
                cur.execute(snapshot.QUERIES[name], params)
                new = cur.fetchall()
                cur.execute(sql, params)
                old = cur.fetchall()
                assert sorted(map(repr, new)) == sorted(map(repr, old)), name
                assert name != "columns" or new == old  # the columns' order matters: the same order too
    finally:
        conn.close()


def test_a_recorded_snapshot_stores_the_hash_of_the_very_text_it_stores(rich_url):
    conn = psycopg2.connect(rich_url)
    try:
        record_current_snapshot(conn, ["20260101_000000_a"])
        with conn.cursor() as cur:
            cur.execute("SELECT schema_hash, snapshot FROM public.schema_migrations_snapshots")
            stored_hash, stored = cur.fetchone()
        conn.rollback()  # the module's database stays as it was
    finally:
        conn.close()

    assert stored_hash == snapshot_hash(stored) == hashlib.sha256(canonical_json(stored).encode()).hexdigest()
    assert stored["tables"]["public.child"]["inherits"] == ["public.parent_b", "public.parent_a"]
