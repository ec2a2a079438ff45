"""What the risk rules read: pglast nodes by type and field name, and the state a run builds up (issues 5, 10).

Pure: imports stdlib only (nodes are read by attribute, so importing this module loads no parser).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["low", "medium", "high"]
Node = Any  # a pglast.ast node

SAFE_TYPE_TARGETS = {"text", "varchar"}   # no limit: from varchar/text this needs no rewrite
WIDENING_TARGETS = {"varchar", "numeric", "varbit"}  # with a limit: no rewrite only if it widens
SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}
# Functions known not to be volatile: a default using only these needs no rewrite on PostgreSQL 11+.
NON_VOLATILE = {"now", "statement_timestamp", "transaction_timestamp", "current_setting", "lower", "upper",
                "btrim", "trim", "concat", "length", "md5", "to_jsonb", "to_json", "jsonb_build_object",
                "json_build_object", "jsonb_build_array", "json_build_array", "make_interval", "date_trunc",
                "timezone", "array_fill", "int4", "int8", "text", "numeric", "jsonb", "json", "uuid", "interval",
                "timestamp", "timestamptz", "date", "bool"}
SQL_TYPE_NAMES = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real",
                  "float8": "double precision", "bool": "boolean", "bpchar": "char", "varbit": "bit varying"}
LOCK_MODES = {1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: "SHARE UPDATE EXCLUSIVE", 5: "SHARE",
              6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE"}


@dataclass(frozen=True)
class TableRef:
    """A table as a statement names it: its schema when written, and its name."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a section, as the rules and the silencing comments see it."""

    node: Any           # the pglast statement node
    line: int           # file line of its first token
    last_line: int      # file line of its end (its semicolon, when it has one)
    text: str           # its SQL (a DO block's body is parsed from it)
    body_line: int      # a DO block: file line of its body's opening quote (PL/pgSQL counts lines from there)


@dataclass
class RunTables:
    """What the run's earlier statements did to tables, shared by the sections of one run (issue 10).

    A table created earlier in the run is new: no rows, and no running code uses it yet. A table that exists in
    the live database (live) is never new, unless the run drops it first.
    """

    created: set[str] = field(default_factory=set)    # names of the tables the run created so far
    live: set[str] = field(default_factory=set)       # names of the tables that exist now (empty: not known)
    unsure: set[TableRef] = field(default_factory=set)  # CREATE TABLE IF NOT EXISTS: new unless it exists live
    ever_created: set[str] = field(default_factory=set)  # every name a plain CREATE TABLE of the run made
    ever_dropped: set[str] = field(default_factory=set)

    def surely_new(self) -> set[str]:
        """Return the tables that cannot exist before the run: it creates them and never drops them first."""
        return self.ever_created - self.ever_dropped


@dataclass
class SectionState:
    """What earlier statements of the section (and run) did; the one mutable record, filled in statement order."""

    direction: Literal["up", "down"]
    pg_version: int
    transactional: bool
    run: RunTables = field(default_factory=RunTables)
    created_here: set[str] = field(default_factory=set)                 # created by this section
    up_tables: frozenset[str] = frozenset()                              # down only: tables the up created
    up_columns: frozenset[tuple[str, str]] = frozenset()                 # down only: columns the up added
    added_columns: set[tuple[str, str]] = field(default_factory=set)
    not_valid: dict[tuple[str, str], str | None] = field(default_factory=dict)  # NOT VALID (table, name) -> col
    checked_not_null: set[tuple[str, str]] = field(default_factory=set)  # validated CHECK (col IS NOT NULL)
    validated_tables: set[str] = field(default_factory=set)              # VALIDATE of a constraint seen nowhere

    def is_new(self, table: str) -> bool:
        """Return whether the table was created earlier in the run (no rows, no traffic yet)."""
        return table in self.run.created

    def create(self, table: TableRef, if_not_exists: bool = False) -> None:
        """Record a CREATE TABLE; IF NOT EXISTS on a table that exists live creates nothing."""
        if if_not_exists:
            self.run.unsure.add(table)
        else:
            self.run.ever_created.add(table.name)
        if not (if_not_exists and table.name in self.run.live):
            self.run.created.add(table.name)
            self.created_here.add(table.name)

    def drop(self, table: str) -> None:
        """Record a DROP TABLE: the name is free again, neither new nor live."""
        self.run.created.discard(table)
        self.run.live.discard(table)
        self.run.ever_dropped.add(table)


# ---- reading pglast nodes ----------------------------------------------------------------------------------

def node_type(node: Node) -> str:
    return type(node).__name__


def enum_name(value: Any) -> str:
    return getattr(value, "name", str(value))


def table_of(rangevar: Node) -> str:
    """Return the key of a table: its name without schema (migrations rarely reuse a name across schemas)."""
    return str(rangevar.relname)


def ref_of(rangevar: Node) -> TableRef:
    return TableRef(str(rangevar.schemaname) if rangevar.schemaname else None, str(rangevar.relname))


def shown(rangevar: Node) -> str:
    return f"{rangevar.schemaname}.{rangevar.relname}" if rangevar.schemaname else str(rangevar.relname)


def alter_commands(node: Node) -> Iterator[tuple[Node, Node]]:
    """Yield (table range var, command) for each command of ALTER TABLE."""
    if node_type(node) == "AlterTableStmt" and enum_name(node.objtype) == "OBJECT_TABLE":
        for cmd in node.cmds or ():
            yield node.relation, cmd


def alters(node: Node, subtype: str) -> Iterator[tuple[Node, Node]]:
    """Yield the ALTER TABLE commands of one kind (the engine skips those on tables new in the run)."""
    for relation, cmd in alter_commands(node):
        if enum_name(cmd.subtype) == subtype:
            yield relation, cmd


def column_constraints(coldef: Node, *kinds: str) -> list[Node]:
    return [c for c in coldef.constraints or () if enum_name(c.contype) in kinds]


def type_words(type_name: Node) -> tuple[str, bool]:
    """Return a type's base name (without pg_catalog) and whether it carries a limit such as varchar(20)."""
    return str(type_name.names[-1].sval), bool(type_name.typmods)


def show_type(type_name: Node) -> str:
    """Return a type as SQL spells it, e.g. bigint, varchar(50), numeric(10,2)."""
    base = str(type_name.names[-1].sval)
    base = SQL_TYPE_NAMES.get(base, base)
    mods = [str(m.val.ival) for m in type_name.typmods or () if hasattr(getattr(m, "val", None), "ival")]
    return base + (f"({','.join(mods)})" if mods else "") + ("[]" if type_name.arrayBounds else "")


def walk(node: Node) -> Iterator[Node]:
    """Yield the node and every node below it."""
    if isinstance(node, (tuple, list)):
        for item in node:
            yield from walk(item)
        return
    slots = getattr(type(node), "__slots__", None)
    if not isinstance(slots, dict):  # pglast nodes describe their fields in a __slots__ dict
        return
    yield node
    for name in slots:
        child = getattr(node, name, None)
        if child is not None and not isinstance(child, (str, int, float, bool)):
            yield from walk(child)


def volatile_function(expr: Node) -> str | None:
    """Return the first function in an expression not known to be stable or immutable, if any."""
    for item in walk(expr):
        if node_type(item) == "FuncCall":
            name = str(item.funcname[-1].sval)
            if name not in NON_VOLATILE:
                return name
    return None


def not_null_column(expr: Node) -> str | None:
    """Return the column of a `col IS NOT NULL` check expression, else None."""
    if (node_type(expr) == "NullTest" and enum_name(expr.nulltesttype) == "IS_NOT_NULL"
            and node_type(expr.arg) == "ColumnRef" and len(expr.arg.fields) == 1):
        return str(expr.arg.fields[0].sval)
    return None


# ---- remembering what a statement did ----------------------------------------------------------------------

def remember(node: Node, state: SectionState) -> None:
    """Record what the statement created or validated, for the rules that look at later statements."""
    kind = node_type(node)
    if kind == "CreateStmt":
        state.create(ref_of(node.relation), bool(node.if_not_exists))
    elif kind == "CreateTableAsStmt" and node.into is not None:
        state.create(ref_of(node.into.rel), bool(node.if_not_exists))
    elif kind == "SelectStmt" and node.intoClause is not None:  # SELECT ... INTO new_table
        state.create(ref_of(node.intoClause.rel))
    elif kind == "DropStmt" and enum_name(node.removeType) == "OBJECT_TABLE":
        for name in node.objects:
            state.drop(str(name[-1].sval))
    elif (kind == "RenameStmt" and enum_name(node.renameType) == "OBJECT_TABLE"
          and state.is_new(table_of(node.relation))):
        state.create(TableRef(node.relation.schemaname or None, str(node.newname)))
    for relation, cmd in alter_commands(node):
        remember_command(table_of(relation), cmd, state)


def remember_command(table: str, cmd: Node, state: SectionState) -> None:
    subtype = enum_name(cmd.subtype)
    if subtype == "AT_AddColumn":
        state.added_columns.add((table, str(cmd.def_.colname)))
    elif subtype == "AT_AddConstraint" and enum_name(cmd.def_.contype) in ("CONSTR_CHECK", "CONSTR_FOREIGN"):
        constraint = cmd.def_
        column = not_null_column(constraint.raw_expr) if constraint.raw_expr is not None else None
        if constraint.skip_validation and constraint.conname:
            state.not_valid[(table, str(constraint.conname))] = column
        elif column and not constraint.skip_validation:
            state.checked_not_null.add((table, column))
    elif subtype == "AT_ValidateConstraint":
        key = (table, str(cmd.name))
        if key not in state.not_valid:
            state.validated_tables.add(table)  # added by an earlier migration: its expression is not visible
        elif state.not_valid[key]:
            state.checked_not_null.add((table, str(state.not_valid[key])))
