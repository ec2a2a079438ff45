"""The live tables a run touches: their size and activity from one catalog query, and what that does to a finding's
severity and message (issue 10).

read_table_stats runs the run's one query on a connection the caller gives, inside the caller's bounded read-only
transaction (SET LOCAL lock_timeout and statement_timeout). It never waits behind a table lock: a table under an
ACCESS EXCLUSIVE lock (held or queued) is judged by its catalog statistics alone instead of its size on disk.
Pure otherwise: imports stdlib and nodes (the connection is passed in; psycopg2 is never imported here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .nodes import TableRef

# Tables named as the migration names them (unqualified: through the connection's search_path). Sizes on disk
# take an ACCESS SHARE lock, so they are skipped for a table whose ACCESS EXCLUSIVE lock is held or awaited.
SELECT_TABLE_STATS = """
WITH wanted AS (
    SELECT w.schema_name, w.table_name,
           pg_catalog.to_regclass(COALESCE(pg_catalog.quote_ident(w.schema_name) || '.', '')
                                  || pg_catalog.quote_ident(w.table_name)) AS oid
    FROM ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS w(schema_name, table_name)
), locked AS (
    SELECT l.relation FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
)
SELECT w.schema_name, w.table_name, c.relkind::text, c.reltuples::float8, c.relpages::int8,
       CASE WHEN c.oid IN (SELECT relation FROM locked) THEN NULL ELSE pg_catalog.pg_total_relation_size(c.oid) END,
       CASE WHEN c.oid IN (SELECT relation FROM locked) THEN NULL ELSE pg_catalog.pg_relation_size(c.oid) END,
       COALESCE((SELECT sum(i.relpages) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = c.oid), 0) + COALESCE(t.relpages, 0),
       s.n_live_tup, s.n_tup_ins + s.n_tup_upd + s.n_tup_del,
       COALESCE(s.last_analyze, s.last_autoanalyze, s.last_vacuum, s.last_autovacuum) IS NOT NULL,
       pg_catalog.current_setting('block_size')::int
FROM wanted w
JOIN pg_catalog.pg_class c ON c.oid = w.oid
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm')
"""
ROWS_PER_PAGE = 50          # a table never analysed: rows guessed from its pages (~160-byte rows), see estimate
BYTES_PER_SMALL_ROW = 10_240  # a small table also stays under small_table_rows x 10 kB (wide rows, big TOAST)
MB = 1024 * 1024
# Rough throughput of the work a rows rule does, for an order-of-magnitude duration: disks, CPU, indexes and load
# change it several-fold, which is why only the order of magnitude is shown.
RATES = {"scan": 200 * MB, "build": 50 * MB, "rewrite": 25 * MB}
WORK_NOUNS = {"scan": "scan", "build": "index build", "rewrite": "rewrite"}
DURATIONS = ((1, "under a second"), (10, "seconds"), (60, "tens of seconds"), (600, "minutes"),
             (3600, "tens of minutes"), (float("inf"), "hours"))


@dataclass(frozen=True)
class TableStats:
    """One live table as the catalog describes it, and the row estimate judged from that."""

    table: TableRef
    rows: int | None            # estimated rows; None: not known (partitioned, or no statistics and locked)
    bytes: int | None           # table, indexes and TOAST on disk; from page counts when the table is locked
    heap_bytes: int | None
    basis: str                  # "statistics" or why not: "never analysed: estimated from its size on disk" ...
    writes: int | None          # rows inserted, updated and deleted since the statistics were last reset

    def describe(self) -> str:
        """Return e.g. 'orders: ~3.1M rows, 1.2 GB', with the basis when it is not the statistics."""
        parts = [f"~{count(self.rows)} rows" if self.rows is not None else "rows unknown"]
        if self.bytes is not None:
            parts.append(size(self.bytes))
        note = "" if self.basis == "statistics" else f" ({self.basis})"
        return f"{self.table}: {', '.join(parts)}{note}"

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "bytes": self.bytes, "basis": self.basis, "writes": self.writes,
                "text": self.describe()}


def read_table_stats(conn: Any, tables: list[TableRef]) -> dict[TableRef, TableStats]:
    """Return the live tables among these names, read in one query on conn (none when there is nothing to ask)."""
    if not tables:
        return {}
    with conn.cursor() as cur:
        cur.execute(SELECT_TABLE_STATS, ([t.schema for t in tables], [t.name for t in tables]))
        rows = cur.fetchall()
    return {TableRef(row[0], row[1]): table_stats(TableRef(row[0], row[1]), *row[2:]) for row in rows}


def table_stats(table: TableRef, relkind: str, reltuples: float, relpages: int, total: int | None,
                heap: int | None, other_pages: int, live_rows: int | None, writes: int | None, analysed: bool,
                block: int) -> TableStats:
    """Judge one catalog row: the planner's estimate when analysed, else the size on disk (labelled so)."""
    if relkind == "p":  # its rows live in its partitions: a statement on it works on all of them
        return TableStats(table, None, None, None, "partitioned: the sizes of its partitions are not read", writes)
    by_pages = (relpages + other_pages) * block
    pages_now = heap // block if heap is not None else relpages
    rows, basis = estimate_rows(reltuples, relpages, pages_now, heap is not None, live_rows or 0, analysed)
    return TableStats(table, rows, total if total is not None else by_pages,
                      heap if heap is not None else relpages * block, basis, writes)


def estimate_rows(reltuples: float, relpages: int, pages_now: int, size_read: bool, live_rows: int,
                  analysed: bool) -> tuple[int | None, str]:
    """Return (rows, basis) for one table; None rows when nothing supports an estimate."""
    unread = "" if size_read else "; its size on disk was not read: the table is locked"
    if reltuples > 0 or relpages > 0 or (reltuples == 0 and analysed):
        if relpages > 0:  # as the planner does: the analysed row density times the pages the table has now
            return round(reltuples / relpages * pages_now), "statistics" + unread
        if pages_now == 0:
            return round(reltuples), "statistics" + unread
        basis = "analysed while empty: estimated from its size on disk"
    else:  # never analysed: reltuples is -1 from PostgreSQL 14 on, 0 before
        basis = "never analysed: estimated from its size on disk"
    if size_read or pages_now > 0:
        return max(live_rows, pages_now * ROWS_PER_PAGE), basis
    return None, "never analysed, and locked: no estimate"


def is_small(stats: TableStats, small_table_rows: int) -> bool:
    """Return whether a table is small: under small_table_rows rows and small_table_rows x 10 kB on disk."""
    return (small_table_rows > 0 and stats.rows is not None and stats.rows < small_table_rows
            and (stats.bytes or 0) < small_table_rows * BYTES_PER_SMALL_ROW)


def duration(stats: TableStats, work: str) -> str:
    """Return the order of magnitude of a scan, index build or rewrite of this table, e.g. 'minutes'."""
    size_bytes = (stats.heap_bytes if work == "build" else stats.bytes) or 0
    seconds = size_bytes / RATES[work]
    return next(label for limit, label in DURATIONS if seconds < limit)


def count(number: int) -> str:
    """Return a row count as people read it: 50, 3.1k, 300k, 3.1M, 1.2B."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if number >= limit:
            value = number / limit
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(number)


def size(number: int) -> str:
    """Return a size in bytes the way pg_size_pretty writes it: 8192 bytes, 16 kB, 1.2 GB."""
    value = float(number)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{number} bytes"
