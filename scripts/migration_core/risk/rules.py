"""The registry of risk rules: each rule's stable id, default severity, message, hint, check, and what makes it a
risk (its context), which decides how it is judged in a run and against the live table (issues 5, 10).

Messages say what happens on a live database (which lock, for how long, what breaks); hints give the safer way.
Both are templates filled from the check's hit. Pure: imports stdlib and checks only.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from . import checks as c
from .checks import Hit
from .nodes import Node, SectionState, Severity

# Why a rule exists decides how the run and the live database change its judgement (issue 10):
#   rows     its cost grows with the table: a scan, rewrite or index build under a lock. Not raised on a table
#            created earlier in the run (empty); low on a small live table (live.is_small); on a large one the
#            message adds an order-of-magnitude duration and the lock held meanwhile.
#   traffic  it breaks or blocks running code whatever the size: not raised on a table new in the run (no code
#            uses it yet); on a live table it states the size and keeps its severity.
#   data     it loses rows for good: not raised on a table new in the run (nothing to lose yet); on a live table
#            it states the size and keeps its severity (a small table's rows may be the precious ones).
#   always   it is about the statement, not a table's rows (fails in a transaction, cannot be analysed).
Context = Literal["rows", "traffic", "data", "always"]
Work = Literal["scan", "build", "rewrite"]  # what a rows rule does to every row: see live.RATES
EXCLUSIVE = "ACCESS EXCLUSIVE (reads and writes wait)"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    message: str    # template filled from Hit.fields
    hint: str       # template filled from Hit.fields
    check: Callable[[Node, SectionState], Iterator[Hit]]
    context: Context
    summary: str                # a few words that stand for a group of repeated findings
    work: Work | None = None    # rows rules: what the duration estimate is of
    lock: str = ""              # rows rules: the lock held meanwhile (a hit's "held" field overrides it)


TX_HINT = ("Put it in its own migration with the header line '-- TRANSACTION: none' above '-- DIRECTION: up' "
           "(statements then run one at a time), and make it safe to re-run")
REWRITE_HINT = ("use pg_repack or pg_squeeze to compact or reorder a table online, or plain VACUUM (which does not "
                "block reads or writes); run maintenance outside migrations.")

RULES: tuple[Rule, ...] = (
    Rule("adding_index_non_concurrently", "high",
         "CREATE INDEX{index} on existing table {table} takes a SHARE lock: every INSERT, UPDATE and DELETE on "
         "{table} waits until the whole index is built, minutes on a large table.",
         "Use CREATE INDEX CONCURRENTLY IF NOT EXISTS in a migration with the header '-- TRANSACTION: none' "
         "(writes continue); if it fails, DROP INDEX CONCURRENTLY the INVALID index and apply again.",
         c.check_index_non_concurrently,
         "rows", "writes wait while the index is built", "build", "SHARE (writes wait)"),
    Rule("adding_column_with_default", "high",
         "Adding column {column} to {table} rewrites every row, because {reason}; an ACCESS EXCLUSIVE lock blocks "
         "all reads and writes on {table} until the rewrite ends.",
         "Add {column} as a plain nullable column (a constant default is fine on PostgreSQL 11+), fill it for new "
         "rows (SET DEFAULT or a trigger), and backfill existing rows in batches in later migrations.",
         c.check_column_default,
         "rows", "the new column is written into every row", "rewrite", EXCLUSIVE),
    Rule("setting_not_null", "high",
         "SET NOT NULL on {table}.{column} scans the whole table under an ACCESS EXCLUSIVE lock{reason}: all "
         "reads and writes on {table} wait until the scan ends.",
         "Add CHECK ({column} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a separate transaction (reads "
         "and writes continue), then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the CHECK.",
         c.check_set_not_null,
         "rows", "the whole table is scanned under an exclusive lock", "scan", EXCLUSIVE),
    Rule("constraint_missing_not_valid", "high",
         "Adding the {what} to {table} checks every existing row while holding {lock}: {blocked} wait until the whole "
         "table has been scanned.",
         "Add it with NOT VALID (only new rows are checked; the lock is brief), then ALTER TABLE {table} "
         "VALIDATE CONSTRAINT in a later migration: validation lets reads and writes continue.",
         c.check_constraint_not_valid,
         "rows", "every existing row is checked under a lock", "scan", EXCLUSIVE),
    Rule("constraint_validated_in_same_transaction", "high",
         "Constraint {constraint} is added NOT VALID and validated in the same transaction: the strong lock "
         "ADD CONSTRAINT took is held until commit, so the validation scan of {table} blocks traffic as if NOT "
         "VALID were absent.",
         "Move ALTER TABLE {table} VALIDATE CONSTRAINT {constraint} to a later migration, or give this migration "
         "the header '-- TRANSACTION: none' so each statement commits on its own.",
         c.check_validate_in_transaction,
         "rows", "validation keeps the strong lock of ADD CONSTRAINT", "scan",
         "the lock ADD CONSTRAINT took (writes wait)"),
    Rule("changing_column_type", "high",
         "Changing the type of {table}.{column} to {type} rewrites the table and rebuilds its indexes under an "
         "ACCESS EXCLUSIVE lock: all reads and writes on {table} wait, and code expecting the old type may "
         "break{unless}.",
         "Add a new column of the new type, write to both, backfill in batches, move reads, then drop the old "
         "column; widening varchar(n) to a larger limit or to text needs no rewrite.",
         c.check_column_type,
         "rows", "the table is rewritten under an exclusive lock", "rewrite", EXCLUSIVE),
    Rule("constraint_without_using_index", "high",
         "Adding {kind} to {table} builds its unique index while holding an ACCESS EXCLUSIVE lock: all reads and "
         "writes on {table} wait for the whole build.",
         "CREATE UNIQUE INDEX CONCURRENTLY first (in a '-- TRANSACTION: none' migration), then ALTER TABLE "
         "{table} ADD CONSTRAINT ... {kind} USING INDEX ..., which only takes a brief lock.",
         c.check_constraint_using_index,
         "rows", "the unique index is built under an exclusive lock", "build", EXCLUSIVE),
    Rule("cannot_run_in_transaction", "high",
         "{statement} cannot run inside a transaction block, and this migration runs in one: PostgreSQL rejects "
         "it and the migration fails.",
         TX_HINT + " (IF NOT EXISTS / IF EXISTS).",
         c.check_outside_transaction,
         "always", "the statement fails inside a transaction block"),
    Rule("adding_enum_value_in_transaction", "high",
         "ALTER TYPE {type} ADD VALUE cannot run inside a transaction block before PostgreSQL 12: the migration "
         "fails on this server.",
         TX_HINT + " (ADD VALUE IF NOT EXISTS); PostgreSQL 12+ allows it in a transaction.",
         c.check_enum_value_in_transaction,
         "always", "ADD VALUE fails inside a transaction before PostgreSQL 12"),
    Rule("dynamic_sql_not_analysed", "low",
         "A DO block runs SQL built at run time ({what}): the risk check cannot see what it does, so nothing it "
         "does is judged.",
         "Write the statements out in the migration where possible; otherwise review the SQL it builds by hand, "
         "then silence this with '-- risk: ignore dynamic_sql_not_analysed because REASON' above the DO block.",
         c.check_dynamic_sql,
         "always", "SQL built at run time is not analysed"),
    Rule("renaming_column", "medium",
         "Renaming {table}.{column} to {new} takes only a brief lock, but every running instance of the "
         "application that still uses {column} fails from that moment until it is redeployed.",
         "Expand and contract: add {new}, write to both columns, backfill, move reads to {new}, and drop "
         "{column} in a later migration.",
         c.check_rename_column,
         "traffic", "running code that uses the old name fails"),
    Rule("renaming_table", "medium",
         "Renaming table {table} to {new} takes only a brief lock, but every running instance of the "
         "application that still queries {table} fails from that moment until it is redeployed.",
         "Rename, then CREATE VIEW {table} AS SELECT * FROM {new} in the same migration (a simple view is "
         "updatable), deploy code that uses {new}, and drop the view in a later migration.",
         c.check_rename_table,
         "traffic", "running code that uses the old name fails"),
    Rule("dropping_column", "high",
         "Dropping {table}.{column} deletes its data for good (a rollback cannot bring it back), and running code "
         "that still reads or writes {column} fails at once.",
         "Deploy code that no longer uses {column} first, back up the data if it may be needed, then drop it in "
         "a later migration.",
         c.check_drop_column,
         "data", "the column and its data are deleted for good"),
    Rule("dropping_table", "high",
         "Dropping table {table} deletes all its rows for good, and running code that still uses {table} fails "
         "at once.",
         "Deploy code that no longer uses {table}, back it up (or rename it and drop it weeks later), then drop "
         "it in its own migration.",
         c.check_drop_table,
         "data", "the table and its rows are deleted for good"),
    Rule("rollback_drops_data", "medium",
         "Rolling back drops the {what} that the up section created: any data written to it since the migration "
         "was applied is lost for good.",
         "Back the data up before rolling back if it matters, or let the down section keep it (rename instead of "
         "drop) and drop it later.",
         c.check_rollback_drops,
         "data", "data written since apply is lost on rollback"),
    Rule("truncating_table", "high",
         "TRUNCATE {table} deletes every row for good and holds an ACCESS EXCLUSIVE lock until commit: all reads "
         "and writes on {table} wait.",
         "Delete only the rows that must go, with a WHERE clause and in batches; if the table really must be "
         "emptied, do it deliberately, with a backup, outside a migration.",
         c.check_truncate,
         "data", "every row is deleted for good"),
    Rule("update_without_where", "high",
         "UPDATE {table} without WHERE rewrites every row in one transaction: it locks all rows until commit "
         "(concurrent writes to any row wait), bloats the table, and may run for a long time.",
         "Add a WHERE clause; backfill a large table in batches (e.g. WHERE id BETWEEN ... AND ...), each in "
         "its own transaction.",
         c.check_update_without_where,
         "rows", "every row is rewritten and locked in one transaction", "rewrite",
         "ROW EXCLUSIVE, every row locked (writes wait)"),
    Rule("delete_without_where", "high",
         "DELETE FROM {table} without WHERE deletes every row for good and locks them all until commit.",
         "Add a WHERE clause naming the rows to remove, delete large sets in batches, and keep a backup.",
         c.check_delete_without_where,
         "data", "every row is deleted for good"),
    Rule("locking_table", "high",
         "LOCK TABLE {table} IN {mode} MODE blocks {blocked} on {table} until the migration commits.",
         "Drop the explicit lock: each statement takes the lock it needs, and lock_timeout makes it give up "
         "instead of queueing traffic behind it.",
         c.check_lock_table,
         "traffic", "traffic waits until the migration commits"),
    Rule("vacuum_full", "high",
         "VACUUM FULL of {table} rewrites the table under an ACCESS EXCLUSIVE lock: all reads and writes wait "
         "until it ends, and it needs disk space for a full copy.",
         "Do not compact tables in migrations: " + REWRITE_HINT,
         c.check_vacuum_full,
         "rows", "the table is rewritten under an exclusive lock", "rewrite", EXCLUSIVE),
    Rule("clustering_table", "high",
         "CLUSTER of {table} rewrites the table in index order under an ACCESS EXCLUSIVE lock: all reads and "
         "writes wait until it ends.",
         "Do not reorder tables in migrations: " + REWRITE_HINT,
         c.check_cluster,
         "rows", "the table is rewritten under an exclusive lock", "rewrite", EXCLUSIVE),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
