"""Read a deterministic, normalised description of the user's schema from the system catalogs (issue 4).

One job: take_snapshot(conn) -> a plain dict that json.dumps(sort_keys=True) turns into the same bytes on every
run, plus its hash. A fixed handful of catalog queries, never one per table. Ownership, privileges, comments,
statistics and data (sequence values included) are left out. The tool's own tables are excluded.
Imports: stdlib and config only (the caller passes a psycopg2 connection in).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import config

Snapshot = dict[str, Any]
SNAPSHOT_FORMAT = 1
CATEGORIES = ("schemas", "extensions", "tables", "views", "indexes", "sequences", "functions", "types")
TRANSACTION_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE, without importing psycopg2 here

# Catalog functions render types, defaults and definitions through these settings; pinning them makes two
# sessions (or two servers) with different search_path or TimeZone describe the same schema identically.
# Transaction-local (set_config(..., true)): they vanish with the scope that take_snapshot opens.
NORMALISE_SESSION = """
SELECT set_config('search_path', 'public', true), set_config('DateStyle', 'ISO, MDY', true),
       set_config('IntervalStyle', 'postgres', true), set_config('TimeZone', 'UTC', true),
       set_config('extra_float_digits', '1', true), set_config('bytea_output', 'hex', true),
       set_config('quote_all_identifiers', 'off', true)
"""
USER_SCHEMA = ("{n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
               "AND {n}.nspname !~ '^pg_(toast_)?temp_'")
NOT_IN_EXTENSION = ("NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.deptype = 'e' "
                    "AND x.classid = '{catalog}'::regclass AND x.objid = {oid})")
QUALIFIED = "quote_ident({n}.nspname) || '.' || quote_ident({name})"

SELECT_SCHEMAS = f"""
SELECT quote_ident(n.nspname) FROM pg_namespace n
WHERE {USER_SCHEMA.format(n='n')} AND {NOT_IN_EXTENSION.format(catalog='pg_namespace', oid='n.oid')}
"""
SELECT_EXTENSIONS = """
SELECT quote_ident(e.extname), e.extversion, quote_ident(n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""
# Tables, partitioned and foreign tables, and composite types, one row per column (or one row with NULL
# columns for a relation without any). attnum orders the columns; dropped columns leave no trace. What belongs to
# the relation (its name, partition key and bound, parents) is worked out once per relation, in `r`, not once per
# column: with the catalog functions and the parents' subquery that was most of the query's time.
SELECT_COLUMNS = f"""
WITH r AS MATERIALIZED (
    SELECT c.oid, {QUALIFIED.format(n='n', name='c.relname')} AS key, c.relkind, c.relpersistence = 'u' AS unlogged,
           c.relrowsecurity, c.reloptions, pg_get_partkeydef(c.oid) AS partition_key,
           pg_get_expr(c.relpartbound, c.oid) AS partition_bound,
           ARRAY(SELECT {QUALIFIED.format(n='pn', name='p.relname')} FROM pg_inherits i
                 JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
                 WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS inherits
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'c') AND {USER_SCHEMA.format(n='n')} AND c.relname <> ALL(%s)
      AND {NOT_IN_EXTENSION.format(catalog='pg_class', oid='c.oid')}
      AND {NOT_IN_EXTENSION.format(catalog='pg_type', oid='c.reltype')}
)
SELECT r.key, r.relkind, r.unlogged, r.relrowsecurity, r.reloptions, r.partition_key, r.partition_bound, r.inherits,
       quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END
FROM r
LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
ORDER BY r.oid, a.attnum
"""
SELECT_VIEWS = f"""
SELECT {QUALIFIED.format(n='n', name='c.relname')}, c.relkind, pg_get_viewdef(c.oid), c.reloptions
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMA.format(n='n')}
  AND {NOT_IN_EXTENSION.format(catalog='pg_class', oid='c.oid')}
"""
# NOT NULL constraints (contype 'n', catalogued since PostgreSQL 18) are the columns' nullability already;
# constraint triggers ('t') are reported as triggers.
SELECT_CONSTRAINTS = f"""
SELECT k.conrelid <> 0, {QUALIFIED.format(n='n', name='coalesce(c.relname, t.typname)')},
       quote_ident(k.conname), pg_get_constraintdef(k.oid)
FROM pg_constraint k
LEFT JOIN pg_class c ON c.oid = k.conrelid
LEFT JOIN pg_type t ON t.oid = k.contypid
JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, t.typnamespace)
WHERE k.contype NOT IN ('n', 't') AND {USER_SCHEMA.format(n='n')}
"""
# An index that backs a primary key, unique or exclusion constraint is reported as that constraint.
# An INVALID index (a failed or interrupted CREATE INDEX CONCURRENTLY) is no part of the schema and never becomes
# the reference: plan lists it apart (invalid_indexes), and dropping it is no drift.
SELECT_INDEXES = f"""
SELECT {QUALIFIED.format(n='n', name='ic.relname')}, {QUALIFIED.format(n='tn', name='tc.relname')},
       pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
WHERE {USER_SCHEMA.format(n='n')} AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                  AND k.contype IN ('p', 'u', 'x'))
"""
SELECT_SEQUENCES = f"""
SELECT {QUALIFIED.format(n='n', name='c.relname')}, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       {QUALIFIED.format(n='otn', name='ot.relname')}, quote_ident(a.attname)
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class ot ON ot.oid = d.refobjid LEFT JOIN pg_namespace otn ON otn.oid = ot.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE {USER_SCHEMA.format(n='n')} AND {NOT_IN_EXTENSION.format(catalog='pg_class', oid='c.oid')}
"""
# The body is hashed: prosrc for most languages, the parsed body of SQL-standard (BEGIN ATOMIC) functions.
# Functions a type made for itself (range constructors) depend on it internally ('i') and go with it.
SELECT_FUNCTIONS = f"""
SELECT {QUALIFIED.format(n='n', name='p.proname')} || '(' || oidvectortypes(p.proargtypes) || ')',
       p.prokind, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), l.lanname, p.provolatile,
       p.proisstrict, p.prosecdef, p.proparallel, p.proconfig,
       md5(coalesce(p.prosrc, '') || coalesce(pg_get_function_sqlbody(p.oid), ''))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE {USER_SCHEMA.format(n='n')} AND {NOT_IN_EXTENSION.format(catalog='pg_proc', oid='p.oid')}
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass AND x.objid = p.oid
                  AND x.deptype = 'i')
"""
SELECT_TRIGGERS = f"""
SELECT {QUALIFIED.format(n='n', name='c.relname')}, quote_ident(t.tgname), pg_get_triggerdef(t.oid), t.tgenabled
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {USER_SCHEMA.format(n='n')}
"""
# Enums, domains and ranges; composite types come with the columns query (they live in pg_class too).
SELECT_TYPES = f"""
SELECT {QUALIFIED.format(n='n', name='t.typname')}, t.typtype,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
       CASE WHEN t.typcollation <> 0 AND t.typcollation <> b.typcollation
            THEN t.typcollation::regcollation::text END,
       (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typtype IN ('e', 'd', 'r') AND {USER_SCHEMA.format(n='n')}
  AND {NOT_IN_EXTENSION.format(catalog='pg_type', oid='t.oid')}
"""
QUERIES: dict[str, str] = {
    "schemas": SELECT_SCHEMAS, "extensions": SELECT_EXTENSIONS, "columns": SELECT_COLUMNS, "views": SELECT_VIEWS,
    "constraints": SELECT_CONSTRAINTS, "indexes": SELECT_INDEXES, "sequences": SELECT_SEQUENCES,
    "functions": SELECT_FUNCTIONS, "triggers": SELECT_TRIGGERS, "types": SELECT_TYPES,
}

# ---- the catalog fingerprint: has anything the snapshot reads changed since the last one was recorded? ----------
# Every catalog the queries above read, directly or through the pg_get_*def / format_type / reg* renderers. Any DDL
# writes a new version of the rows it changes (a new xmin) or deletes rows; VACUUM and ANALYZE only update
# statistics in place (same xmin). So the same count and sums of the rows' xmins means the same catalog rows, and
# the same snapshot: plan and the run's check then skip the ten queries, the load and the diff (one query instead).
# The text search catalogs are there for reg* constants in defaults and views ('app.d'::regdictionary prints the
# dictionary's current name); pg_tablespace (a shared catalog) for USING INDEX TABLESPACE in constraint definitions.
# xmin is read through age(), relative to age('3'), which makes it independent of the current transaction
# (modulo 2^32, as xids are); the bootstrap rows' (age() is INT_MAX for them) are left out: they never change.
FINGERPRINT_CATALOGS = ("pg_namespace", "pg_class", "pg_attribute", "pg_attrdef", "pg_constraint", "pg_index",
                        "pg_inherits", "pg_rewrite", "pg_trigger", "pg_sequence", "pg_proc", "pg_type", "pg_enum",
                        "pg_range", "pg_depend", "pg_extension", "pg_collation", "pg_language", "pg_operator",
                        "pg_opclass", "pg_am", "pg_ts_config", "pg_ts_dict", "pg_ts_parser", "pg_ts_template",
                        "pg_tablespace")
SELECT_FINGERPRINT = f"""
SELECT current_setting('server_version_num'), count(*), sum(x), sum(hashint8(x))
FROM (SELECT (age(xmin)::bigint - age('3'::xid)) & 4294967295 AS x
      FROM ({' UNION ALL '.join(f'SELECT xmin FROM pg_catalog.{name}' for name in FINGERPRINT_CATALOGS)}) rows
      WHERE age(xmin) < 2147483647) normal
"""


def catalog_fingerprint(conn: Any) -> str:
    """Return a short text that changes whenever any catalog row the snapshot reads changes (one query).

    It names the server version and this module's queries too: an upgrade of either renders differently.
    """
    with conn.cursor() as cur:
        cur.execute(SELECT_FINGERPRINT)
        version, count, total, hashed = cur.fetchone()
    return f"{version}:{queries_code()}:{count}:{total}:{hashed}"


def queries_code() -> str:
    """Return a short hash of the snapshot's and the fingerprint's queries, so a tool that reads the catalogs
    differently (or fingerprints other catalogs) never trusts a fingerprint recorded by another."""
    text = NORMALISE_SESSION + "".join(QUERIES.values()) + SELECT_FINGERPRINT + str(SNAPSHOT_FORMAT)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

TABLE_KINDS = {"r": "table", "p": "partitioned table", "f": "foreign table"}
FUNCTION_KINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}
VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}
PARALLEL = {"s": "safe", "r": "restricted", "u": "unsafe"}
TRIGGER_STATUS = {"O": "enabled", "D": "disabled", "R": "replica only", "A": "always"}
IDENTITY = {"a": "always", "d": "by default"}
GENERATED = {"s": "STORED", "v": "VIRTUAL"}


def take_snapshot(conn: Any) -> Snapshot:
    """Return the normalised description of the user's schema, as seen by conn's current transaction."""
    with normalised_scope(conn) as cur:
        # The columns query leaves out the tool's own tables, by the names in use (--history-table).
        params = {"columns": ([config.history_table(), config.snapshot_table()],)}
        rows = {}
        for name, sql in QUERIES.items():
            cur.execute(sql, params.get(name))
            rows[name] = cur.fetchall()
    return build_snapshot(rows)


@contextmanager
def normalised_scope(conn: Any) -> Iterator[Any]:
    """Yield a cursor with pinned settings that leaves conn's session and open transaction as they were.

    Inside an open transaction (e.g. the last migration's, so the snapshot sees it) a savepoint scopes the
    settings; otherwise a transaction of our own does, and is rolled back: the snapshot only reads.
    """
    if conn.autocommit:
        begin, end = "BEGIN", "ROLLBACK"
    elif conn.get_transaction_status() == TRANSACTION_IDLE:
        begin, end = None, None
    else:
        begin, end = "SAVEPOINT take_snapshot", "ROLLBACK TO SAVEPOINT take_snapshot; RELEASE SAVEPOINT take_snapshot"
    with conn.cursor() as cur:
        if begin:
            cur.execute(begin)
        try:
            cur.execute(NORMALISE_SESSION)
            yield cur
        finally:
            if end:
                cur.execute(end)
            else:
                conn.rollback()


def build_snapshot(rows: dict[str, list[tuple[Any, ...]]]) -> Snapshot:
    """Assemble the catalog rows into the snapshot; child objects attach only to captured parents."""
    tables, composites = build_relations(rows["columns"])
    views = {key: {"kind": "materialized view" if kind == "m" else "view", "definition": definition,
                   "options": sorted(options or []), "triggers": {}}
             for key, kind, definition, options in rows["views"]}
    types = build_types(rows["types"]) | composites
    attach_constraints(rows["constraints"], tables, types)
    for relation, name, definition, enabled in rows["triggers"]:
        owner = tables.get(relation) or views.get(relation)
        if owner is not None:
            owner["triggers"][name] = {"definition": definition, "status": TRIGGER_STATUS.get(enabled, enabled)}
    return {
        "format": SNAPSHOT_FORMAT,
        "schemas": {name: {} for (name,) in rows["schemas"]},
        "extensions": {name: {"version": version, "schema": schema} for name, version, schema in rows["extensions"]},
        "tables": tables, "views": views, "types": types,
        "indexes": {key: {"table": table, "definition": definition, "valid": valid}
                    for key, table, definition, valid in rows["indexes"] if table in tables or table in views},
        "sequences": build_sequences(rows["sequences"], tables),
        "functions": {signature: build_function(rest) for signature, *rest in rows["functions"]},
    }


def build_relations(rows: list[tuple[Any, ...]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (tables, composite types) from the one-row-per-column query."""
    tables: dict[str, Any] = {}
    composites: dict[str, Any] = {}
    members: dict[str, Any] = {}
    order: list[str] = []
    last_key = None
    for key, kind, unlogged, row_security, options, part_key, part_bound, inherits, column, *spec in rows:
        if key != last_key:  # the rows of one relation come together (ORDER BY oid): its dict is built once
            last_key = key
            if kind == "c":
                relation = composites.setdefault(key, {"kind": "composite", "attributes": {}, "attribute_order": []})
                members, order = relation["attributes"], relation["attribute_order"]
            else:
                relation = tables.setdefault(key, {
                    "kind": TABLE_KINDS[kind], "unlogged": unlogged, "row_security": row_security,
                    "options": sorted(options or []), "partition_key": part_key, "partition_bound": part_bound,
                    "inherits": list(inherits), "columns": {}, "column_order": [], "constraints": {}, "triggers": {}})
                members, order = relation["columns"], relation["column_order"]
        if column is not None:
            members[column] = build_column(*spec)
            order.append(column)
    return tables, composites


def build_column(type_name: str, not_null: bool, expression: str | None, identity: str, generated: str,
                 collation: str | None) -> dict[str, Any]:
    """Describe one column: a generation expression is not a default, so it is kept apart."""
    return {"type": type_name, "nullable": not not_null,
            "default": None if generated else expression,
            "generated": f"{expression} {GENERATED.get(generated, generated)}" if generated else None,
            "identity": IDENTITY.get(identity), "collation": collation}


def build_types(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Describe enums (labels in their sort order), domains and ranges."""
    types: dict[str, Any] = {}
    for key, kind, labels, base, not_null, default, collation, subtype in rows:
        if kind == "e":
            types[key] = {"kind": "enum", "labels": list(labels)}
        elif kind == "d":
            types[key] = {"kind": "domain", "base": base, "nullable": not not_null, "default": default,
                          "collation": collation, "constraints": {}}
        else:
            types[key] = {"kind": "range", "subtype": subtype}
    return types


def attach_constraints(rows: list[tuple[Any, ...]], tables: dict[str, Any], types: dict[str, Any]) -> None:
    """Put each constraint under its table or domain; those of uncaptured owners (tool tables) are dropped."""
    for on_table, owner_key, name, definition in rows:
        owner = tables.get(owner_key) if on_table else types.get(owner_key)
        if owner is not None and "constraints" in owner:
            owner["constraints"][name] = definition


def build_sequences(rows: list[tuple[Any, ...]], tables: dict[str, Any]) -> dict[str, Any]:
    """Describe sequences by their parameters, never their current value; skip those of uncaptured tables."""
    sequences: dict[str, Any] = {}
    for key, type_name, start, increment, minimum, maximum, cache, cycle, owner, column in rows:
        if owner is not None and owner not in tables:
            continue
        sequences[key] = {"type": type_name, "start": start, "increment": increment, "min": minimum,
                          "max": maximum, "cache": cache, "cycle": cycle,
                          "owned_by": f"{owner}.{column}" if owner else None}
    return sequences


def build_function(row: list[Any]) -> dict[str, Any]:
    kind, arguments, result, language, volatility, strict, definer, parallel, config, body_md5 = row
    return {"kind": FUNCTION_KINDS.get(kind, kind), "arguments": arguments, "returns": result,
            "language": language, "volatility": VOLATILITY.get(volatility, volatility), "strict": strict,
            "security_definer": definer, "parallel": PARALLEL.get(parallel, parallel),
            "config": sorted(config or []), "body_md5": body_md5}


def canonical_json(snapshot: Snapshot) -> str:
    """Return the snapshot as canonical JSON: sorted keys, no insignificant whitespace."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def snapshot_hash(snapshot: Snapshot) -> str:
    """Return the SHA-256 hex of the snapshot's canonical JSON."""
    return json_hash(canonical_json(snapshot))


def json_hash(text: str) -> str:
    """Return the SHA-256 hex of a snapshot's canonical JSON text (for a caller that has the text already)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
