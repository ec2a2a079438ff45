"""Split SQL into statements with the real PostgreSQL parser (pglast), and judge each statement against the
migration's transaction mode: transaction control is never allowed, some statements cannot run inside a
transaction block, and a few need one. Pure: imports stdlib, pglast, model, errors (never psycopg2).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InvalidMigrationFile
from .model import Migration

# TransactionStmt kinds that open, end or hand over a transaction. The savepoint kinds are not among them: they
# work inside the migration's transaction and leave it open.
TRANSACTION_CONTROL = frozenset({"TRANS_STMT_BEGIN", "TRANS_STMT_START", "TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK",
                                 "TRANS_STMT_PREPARE", "TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED"})
SAVEPOINTS = {"TRANS_STMT_SAVEPOINT": "SAVEPOINT", "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
              "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT"}
CURSOR_OPT_HOLD = 0x0020  # DeclareCursorStmt.options bit of WITH HOLD (PostgreSQL's parsenodes.h)
TX_CONTROL_HINT = ("The tool begins and ends each migration's transaction itself, together with its history row; "
                   "remove the statement. For statements that cannot run inside a transaction block, put the "
                   "header line '-- TRANSACTION: none' above '-- DIRECTION: up' instead.")


class LineCounter:
    """Turn offsets in a section into file lines, counting only the text between the last offset asked and this one.

    Statements come in order, so a whole section costs one pass over its text: counting from the start for every
    statement made parsing quadratic in the number of statements (a 16,000-statement seed file took seconds).
    """

    def __init__(self, sql: str, first_line: int) -> None:
        self.sql, self.offset, self.line = sql, 0, first_line

    def line_at(self, offset: int) -> int:
        """Return the file line of the character at offset (any order; cheapest when offsets grow)."""
        if offset >= self.offset:
            self.line += self.sql.count("\n", self.offset, offset)
        else:
            self.line -= self.sql.count("\n", offset, self.offset)
        self.offset = offset
        return self.line


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int           # file line where the statement starts
    node: Any           # the pglast statement node


@lru_cache(maxsize=None)  # lives for one run: each section is parsed once
def parse_raw(sql: str, first_line: int, path: Path) -> tuple[Any, ...]:
    """Return pglast's raw statements of a section, parsed once per run (the risk rules read the same tree).

    A syntax error or a transaction-control statement names the file and line (exit 2). Refusing transaction
    control here, where every reader of a section parses it (apply, rollback, their dry runs, plan, lint, verify),
    keeps such a file invalid everywhere, whatever its transaction mode.
    """
    from pglast.parser import ParseError  # imported on demand: plan's start-up stays lean
    from .lazy_tree import parse_lazy  # pglast's tree, each node's fields converted when first read
    try:
        raw = parse_lazy(sql)
    except ParseError as err:
        message, position = err.args[0], err.args[1] if len(err.args) > 1 else 0
        line = first_line + sql[:position].count("\n")
        raise InvalidMigrationFile(f"{path}:{line}: SQL syntax error: {message}.",
                                   hint="Fix the statement; PostgreSQL would reject it too.") from None
    refuse_transaction_control(raw, sql, first_line, path)
    return raw


def statement_source(item: Any, sql: str, first_line: int | LineCounter) -> tuple[str, int]:
    """Return a raw statement's text and the file line of its first token."""
    lines = first_line if isinstance(first_line, LineCounter) else LineCounter(sql, first_line)
    start = item.stmt_location or 0
    text = sql[start: start + item.stmt_len] if item.stmt_len else sql[start:]
    skipped = len(text) - len(text.lstrip())  # pglast's location can point at leading whitespace
    return text.strip(), lines.line_at(start + skipped)


def parse_statements(sql: str, first_line: int, path: Path) -> list[Statement]:
    """Return the statements of a section, each with its text and file line."""
    lines = LineCounter(sql, first_line)
    return [Statement(*statement_source(item, sql, lines), item.stmt)
            for item in parse_raw(sql, first_line, path)]


def enum_name(value: Any) -> str:
    """Return the name of a pglast enum member, e.g. 'DISCARD_ALL'."""
    return str(getattr(value, "name", value))


def kind_name(node: Any) -> str:
    """Return the name of a TransactionStmt's kind, or '' for any other statement."""
    return enum_name(node.kind) if type(node).__name__ == "TransactionStmt" else ""


def shown(text: str) -> str:
    """Return a statement's text on one line, short enough for an error message."""
    flat = " ".join(text.rstrip(";").split())
    return flat if len(flat) <= 60 else flat[:57] + "..."


def refuse_transaction_control(raw: tuple[Any, ...], sql: str, first_line: int, path: Path) -> None:
    """Refuse BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT and the PREPARED forms in any section.

    In a transactional migration a COMMIT makes the statements before it permanent while the history says the
    migration failed, and a ROLLBACK undoes them while the history says it succeeded; statement by statement,
    a BEGIN leaves the next statements (and the history row) in a transaction that nothing commits.
    """
    for item in raw:
        if kind_name(item.stmt) in TRANSACTION_CONTROL:
            text, line = statement_source(item, sql, first_line)
            raise InvalidMigrationFile(f"{path}:{line}: transaction control ({shown(text)}) is not allowed in a "
                                       "migration.", hint=TX_CONTROL_HINT)


# ---- statements PostgreSQL refuses inside a transaction block ----------------------------------------------
# The callers of PreventInTransactionBlock in the server (PostgreSQL 15 to 18) whose condition the statement's text
# shows. Two depend on the catalog instead, and are not seen here: CLUSTER, and REINDEX TABLE or INDEX, of a
# partitioned table (the text does not say the table is partitioned; the server then rejects the migration and it
# rolls back). For subscriptions the options decide; where they are not in the text the choice is the one that
# cannot be wrong about a replication slot (see FORBIDDEN).

def bool_option(options: Any, name: str, default: bool) -> bool:
    """Return a boolean option of a WITH (...) list as the server's defGetBoolean reads it, or default.

    A value the server would reject gives the default: the statement fails on the server either way.
    """
    for option in options or ():
        if option.defname != name:
            continue
        value = option.arg
        if value is None:  # WITH (refresh) means true
            return True
        if type(value).__name__ == "Integer":
            return {0: False, 1: True}.get(value.ival, default)
        if type(value).__name__ == "Boolean":
            return bool(value.boolval)
        if type(value).__name__ == "TypeName" and len(value.names) == 1:  # an unquoted word: on, off
            value = value.names[0]
        word = str(getattr(value, "sval", "")).lower()
        return {"true": True, "on": True, "false": False, "off": False}.get(word, default)
    return default


def has_option(options: Any, name: str) -> bool:
    """Return whether a WITH (...) list names the option."""
    return any(option.defname == name for option in options or ())


def create_subscription_forbidden(node: Any) -> str | None:
    """Name CREATE SUBSCRIPTION when it creates a replication slot, which a rollback cannot remove.

    create_slot defaults to true, and to false with connect = false.
    """
    connect = bool_option(node.options, "connect", True)
    if bool_option(node.options, "create_slot", connect):
        return "CREATE SUBSCRIPTION ... WITH (create_slot = true)"
    return None


def alter_subscription_forbidden(node: Any) -> str | None:
    """Name the ALTER SUBSCRIPTIONs that refresh from the publisher or change the slot (refresh defaults to true)."""
    kind = enum_name(node.kind)
    if kind == "ALTER_SUBSCRIPTION_REFRESH":
        return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"
    if kind in ("ALTER_SUBSCRIPTION_SET_PUBLICATION", "ALTER_SUBSCRIPTION_ADD_PUBLICATION",
                "ALTER_SUBSCRIPTION_DROP_PUBLICATION") and bool_option(node.options, "refresh", True):
        return f"ALTER SUBSCRIPTION ... {kind.split('_')[2]} PUBLICATION with refresh"
    if kind == "ALTER_SUBSCRIPTION_OPTIONS":
        if has_option(node.options, "failover"):  # PostgreSQL 17+: changes the slot, which cannot roll back
            return "ALTER SUBSCRIPTION ... SET (failover)"
        if has_option(node.options, "two_phase") and not bool_option(node.options, "two_phase", False):
            return "ALTER SUBSCRIPTION ... SET (two_phase = false)"  # PostgreSQL 18+: only turning it off
    return None


def reindex_forbidden(node: Any) -> str | None:
    """Name REINDEX CONCURRENTLY, and REINDEX of a schema, the system catalogs or the database (one per table)."""
    if bool_option(node.params, "concurrently", False):
        return "REINDEX CONCURRENTLY"
    kind = enum_name(node.kind)
    many = {"REINDEX_OBJECT_SCHEMA": "SCHEMA", "REINDEX_OBJECT_SYSTEM": "SYSTEM", "REINDEX_OBJECT_DATABASE": "DATABASE"}
    return f"REINDEX {many[kind]}" if kind in many else None


def detach_concurrently(node: Any) -> str | None:
    """Name ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY."""
    for cmd in node.cmds or ():
        if type(getattr(cmd, "def_", None)).__name__ == "PartitionCmd" and cmd.def_.concurrent:
            return "DETACH PARTITION CONCURRENTLY"
    return None


def named(name: str, condition: Callable[[Any], Any] = lambda node: True) -> Callable[[Any], str | None]:
    """Return a check giving the statement's name when condition holds."""
    return lambda node: name if condition(node) else None


FORBIDDEN: dict[str, Callable[[Any], str | None]] = {
    "CreatedbStmt": named("CREATE DATABASE"),
    "DropdbStmt": named("DROP DATABASE"),
    "AlterDatabaseStmt": named("ALTER DATABASE ... SET TABLESPACE", lambda n: has_option(n.options, "tablespace")),
    "CreateTableSpaceStmt": named("CREATE TABLESPACE"),
    "DropTableSpaceStmt": named("DROP TABLESPACE"),
    "AlterSystemStmt": named("ALTER SYSTEM"),
    "CreateSubscriptionStmt": create_subscription_forbidden,
    "AlterSubscriptionStmt": alter_subscription_forbidden,
    # DROP SUBSCRIPTION refuses a transaction block when the subscription has a replication slot to drop. That is in
    # the catalog (slot_name = NONE means none), not in the text: every DROP SUBSCRIPTION counts as having one.
    "DropSubscriptionStmt": named("DROP SUBSCRIPTION"),
    "VacuumStmt": named("VACUUM", lambda n: n.is_vacuumcmd),  # ANALYZE alone is fine
    "ClusterStmt": named("CLUSTER without a table", lambda n: n.relation is None),
    "ReindexStmt": reindex_forbidden,
    "IndexStmt": named("CREATE INDEX CONCURRENTLY", lambda n: n.concurrent),
    "DropStmt": named("DROP INDEX CONCURRENTLY", lambda n: n.concurrent),
    "AlterTableStmt": detach_concurrently,
    "DiscardStmt": named("DISCARD ALL", lambda n: enum_name(n.target) == "DISCARD_ALL"),
}


def transaction_forbidden(node: Any) -> str | None:
    """Return the statement's name if PostgreSQL refuses it inside a transaction block on any version."""
    check = FORBIDDEN.get(type(node).__name__)
    return check(node) if check else None


def non_transactional_reason(node: Any, server_version: int) -> str | None:
    """Return why a statement cannot run inside a transaction block on this server, or None if it can."""
    if (type(node).__name__ == "AlterEnumStmt" and node.newVal and not node.oldVal  # oldVal: RENAME VALUE
            and server_version < 120000):
        return "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)"
    return transaction_forbidden(node)


def needs_transaction_block(node: Any) -> str | None:
    """Return the statement's name if it fails, or silently does nothing, outside a transaction block.

    The server's RequireTransactionBlock (an error) and WarnNoTransactionBlock (a warning, and no effect) callers.
    """
    kind = type(node).__name__
    if kind_name(node) in SAVEPOINTS:
        return SAVEPOINTS[kind_name(node)]
    if kind == "LockStmt":
        return "LOCK TABLE"
    if kind == "DeclareCursorStmt" and not node.options & CURSOR_OPT_HOLD:
        return "DECLARE CURSOR (without WITH HOLD)"
    if kind == "ConstraintsSetStmt":
        return "SET CONSTRAINTS"
    if kind == "VariableSetStmt" and node.is_local:
        return "SET LOCAL"
    if kind == "VariableSetStmt" and str(node.name).upper() == "TRANSACTION":
        return "SET TRANSACTION"
    return None


def mode_refusal(statement: Statement, migration: Migration, server_version: int) -> InvalidMigrationFile | None:
    """Return the error for a statement the migration's transaction mode cannot run, or None."""
    where = f"{migration.path}:{statement.line}"
    if migration.transactional:
        reason = non_transactional_reason(statement.node, server_version)
        if reason:
            return InvalidMigrationFile(
                f"{where}: {reason} cannot run inside a transaction block.",
                hint="Add the header line '-- TRANSACTION: none' above '-- DIRECTION: up' (statements then run "
                     "one at a time; make them safe to re-run, e.g. IF NOT EXISTS).")
        return None
    needed = needs_transaction_block(statement.node)
    if needed:
        return InvalidMigrationFile(
            f"{where}: {needed} needs a transaction block, and this '-- TRANSACTION: none' migration runs each "
            "statement on its own, outside one.",
            hint="Remove the '-- TRANSACTION: none' line so the migration runs in one transaction, or remove the "
                 "statement (for timeouts use the '-- LOCK_TIMEOUT:' and '-- STATEMENT_TIMEOUT:' header lines).")
    return None


def check_transaction_mode(migration: Migration, direction: str, server_version: int) -> list[Statement]:
    """Parse a section; refuse transaction control, and statements its transaction mode cannot run."""
    sql, first_line = migration.section(direction)  # type: ignore[arg-type]
    statements = parse_statements(sql, first_line, migration.path)
    if not statements and migration.noop(direction) is None:  # e.g. only ";": nothing would run, yet success
        raise InvalidMigrationFile(f"{migration.path}:{first_line}: the {direction} section holds no statement.",
                                   hint="Write the SQL of the section, or remove the section.")
    for statement in statements:
        refusal = mode_refusal(statement, migration, server_version)
        if refusal:
            raise refusal
    return statements
