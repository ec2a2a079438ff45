"""The risk checks: one small function per rule, reading one parsed statement and the run's state so far.

Each check yields hits whose fields fill its rule's message and hint (the registry is rules.RULES), and names the
table the hit is about: the engine (analysis.py) drops hits on tables new in the run, by the rule's context, and
judges the others against the live table. Pure: imports stdlib, nodes and statements (issues 5, 10).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..statements import FORBIDDEN, transaction_forbidden
from .nodes import (LOCK_MODES, SAFE_TYPE_TARGETS, SERIAL_TYPES, WIDENING_TARGETS, Node, SectionState, Severity,
                    TableRef, alter_commands, alters, column_constraints, enum_name, node_type, ref_of, show_type,
                    shown, table_of, type_words, volatile_function)


@dataclass(frozen=True)
class Hit:
    """One match of a rule: the words that fill its templates, the table it is about, and a severity when not
    the rule's default."""

    fields: dict[str, str]
    severity: Severity | None = None
    table: TableRef | None = None


Check = Callable[[Node, SectionState], Iterator[Hit]]
ALTER_TABLE = "AlterTableStmt"


def reads(*kinds: str) -> Callable[[Check], Check]:
    """Mark a check as one that can only hit statements of these kinds: the engine runs it on no other.

    A check without the mark runs on every statement. tests/unit/test_risk_rules.py holds each mark to the
    statements its check flags in the rule corpus.
    """
    def mark(check: Check) -> Check:
        check.statement_kinds = frozenset(kinds)  # type: ignore[attr-defined]
        return check
    return mark


def hit(on: Node | None = None, severity: Severity | None = None, **fields: str) -> Hit:
    """Return a hit about the table of range var `on` (None: about no one table)."""
    return Hit(fields, severity, ref_of(on) if on is not None else None)


# ---- locks held for as long as the table is large ----------------------------------------------------------

@reads("IndexStmt")
def check_index_non_concurrently(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "IndexStmt" and not node.concurrent:
        yield hit(node.relation, table=shown(node.relation), index=f" {node.idxname}" if node.idxname else "")


@reads(ALTER_TABLE)
def check_column_default(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in alters(node, "AT_AddColumn"):
        reason = rewrite_reason(cmd.def_, state.pg_version)
        if reason:
            yield hit(relation, table=shown(relation), column=str(cmd.def_.colname), reason=reason)


def rewrite_reason(coldef: Node, pg_version: int) -> str | None:
    """Return why adding this column fills every existing row (a table rewrite), or None."""
    if type_words(coldef.typeName)[0] in SERIAL_TYPES:
        return "a serial column gets a nextval() default, computed for each row"
    if column_constraints(coldef, "CONSTR_IDENTITY"):
        return "an identity column is numbered row by row"
    if column_constraints(coldef, "CONSTR_GENERATED"):
        return "a stored generated column is computed for each row"
    for default in column_constraints(coldef, "CONSTR_DEFAULT"):
        function = volatile_function(default.raw_expr)
        if function:
            return f"its default calls {function}(), which is (or may be) volatile, so each row gets its own value"
        if pg_version < 110000:
            return "before PostgreSQL 11 any default, even a constant, is written into every row"
    return None


@reads(ALTER_TABLE)
def check_set_not_null(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in alters(node, "AT_SetNotNull"):
        table, column = table_of(relation), str(cmd.name)
        if state.pg_version < 120000:
            yield hit(relation, table=shown(relation), column=column,
                      reason=" (before PostgreSQL 12 even a validated CHECK does not spare the scan)")
        elif (table, column) not in state.checked_not_null and table not in state.validated_tables:
            yield hit(relation, table=shown(relation), column=column, reason="")


@reads(ALTER_TABLE)
def check_constraint_not_valid(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, constraint in added_constraints(node, "CONSTR_CHECK", "CONSTR_FOREIGN"):
        if constraint.skip_validation:
            continue
        name = f" {constraint.conname}" if constraint.conname else ""
        if enum_name(constraint.contype) == "CONSTR_FOREIGN":
            yield hit(relation, table=shown(relation), what=f"foreign key{name}",
                      lock=f"SHARE ROW EXCLUSIVE locks on {shown(relation)} and {shown(constraint.pktable)}",
                      blocked="writes to both tables", held="SHARE ROW EXCLUSIVE (writes wait)")
        else:
            yield hit(relation, table=shown(relation), what=f"CHECK constraint{name}",
                      lock=f"an ACCESS EXCLUSIVE lock on {shown(relation)}", blocked="all reads and writes")


def added_constraints(node: Node, *kinds: str) -> Iterator[tuple[Node, Node]]:
    """Yield (table, constraint) for constraints of these kinds added by ALTER TABLE, inline ones too."""
    for relation, cmd in alters(node, "AT_AddConstraint"):
        if enum_name(cmd.def_.contype) in kinds:
            yield relation, cmd.def_
    for relation, cmd in alters(node, "AT_AddColumn"):
        for constraint in column_constraints(cmd.def_, *kinds):
            yield relation, constraint


@reads(ALTER_TABLE)
def check_validate_in_transaction(node: Node, state: SectionState) -> Iterator[Hit]:
    if not state.transactional:
        return
    for relation, cmd in alter_commands(node):
        if enum_name(cmd.subtype) == "AT_ValidateConstraint" and (table_of(relation), cmd.name) in state.not_valid:
            yield hit(relation, table=shown(relation), constraint=str(cmd.name))


@reads(ALTER_TABLE)
def check_column_type(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in alters(node, "AT_AlterColumnType"):
        base, limited = type_words(cmd.def_.typeName)
        fields = {"table": shown(relation), "column": str(cmd.name), "type": show_type(cmd.def_.typeName)}
        if cmd.def_.raw_default is None and base in SAFE_TYPE_TARGETS and not limited:
            continue  # varchar(n) -> varchar / text: no rewrite
        if cmd.def_.raw_default is None and base in WIDENING_TARGETS:
            yield Hit(fields | {"unless": "; no rewrite happens only if it widens the current limit "
                                          "(e.g. varchar(20) to varchar(50)), which cannot be seen offline"}, "low",
                      ref_of(relation))
        else:
            yield Hit(fields | {"unless": ""}, None, ref_of(relation))


@reads(ALTER_TABLE)
def check_constraint_using_index(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, constraint in added_constraints(node, "CONSTR_PRIMARY", "CONSTR_UNIQUE"):
        if not constraint.indexname:
            kind = "PRIMARY KEY" if enum_name(constraint.contype) == "CONSTR_PRIMARY" else "UNIQUE"
            yield hit(relation, table=shown(relation), kind=kind)


# ---- statements that fail inside a transaction --------------------------------------------------------------

@reads(*FORBIDDEN)
def check_outside_transaction(node: Node, state: SectionState) -> Iterator[Hit]:
    if not state.transactional:
        return
    what = transaction_forbidden(node)
    if what:
        yield hit(statement=what)


@reads("AlterEnumStmt")
def check_enum_value_in_transaction(node: Node, state: SectionState) -> Iterator[Hit]:
    if (node_type(node) == "AlterEnumStmt" and node.newVal and not node.oldVal and state.transactional
            and state.pg_version < 120000):
        yield hit(type=".".join(str(n.sval) for n in node.typeName))


@reads("DynamicSql")
def check_dynamic_sql(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "DynamicSql":  # an EXECUTE inside a DO block: see plpgsql.py
        yield hit(what=node.what)


# ---- changes that break running code or lose data -----------------------------------------------------------

@reads("RenameStmt")
def check_rename_column(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "RenameStmt" and enum_name(node.renameType) == "OBJECT_COLUMN":
        yield hit(node.relation, table=shown(node.relation), column=str(node.subname), new=str(node.newname))


@reads("RenameStmt")
def check_rename_table(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "RenameStmt" and enum_name(node.renameType) == "OBJECT_TABLE":
        yield hit(node.relation, table=shown(node.relation), new=str(node.newname))


@reads(ALTER_TABLE)
def check_drop_column(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in alters(node, "AT_DropColumn"):
        if (table_of(relation), cmd.name) not in state.up_columns:
            yield hit(relation, table=shown(relation), column=str(cmd.name))


@reads("DropStmt")
def check_drop_table(node: Node, state: SectionState) -> Iterator[Hit]:
    for table in dropped_tables(node):
        if table.name not in state.up_tables:
            yield Hit({"table": str(table)}, None, table)


def dropped_tables(node: Node) -> list[TableRef]:
    """Return the tables a DROP TABLE removes."""
    if node_type(node) != "DropStmt" or enum_name(node.removeType) != "OBJECT_TABLE":
        return []
    return [TableRef(str(name[-2].sval) if len(name) > 1 else None, str(name[-1].sval)) for name in node.objects]


@reads("DropStmt", ALTER_TABLE)
def check_rollback_drops(node: Node, state: SectionState) -> Iterator[Hit]:
    if state.direction != "down":
        return
    for table in dropped_tables(node):
        if table.name in state.up_tables:
            yield Hit({"what": f"table {table}"}, None, table)
    for relation, cmd in alter_commands(node):
        if enum_name(cmd.subtype) == "AT_DropColumn" and (table_of(relation), cmd.name) in state.up_columns:
            yield hit(relation, what=f"column {shown(relation)}.{cmd.name}")


@reads("TruncateStmt")
def check_truncate(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "TruncateStmt":
        for relation in node.relations:
            yield hit(relation, table=shown(relation))


@reads("UpdateStmt")
def check_update_without_where(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "UpdateStmt" and node.whereClause is None:
        yield hit(node.relation, table=shown(node.relation))


@reads("DeleteStmt")
def check_delete_without_where(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "DeleteStmt" and node.whereClause is None:
        yield hit(node.relation, table=shown(node.relation))


# ---- explicit locks and maintenance that rewrites tables ---------------------------------------------------

@reads("LockStmt")
def check_lock_table(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) != "LockStmt":
        return
    for relation in node.relations:
        blocked = ("all reads and writes" if node.mode == 8 else "all writes" if node.mode >= 5
                   else "schema changes and maintenance")
        yield hit(relation, None if node.mode >= 5 else "low", table=shown(relation), mode=LOCK_MODES[node.mode],
                  blocked=blocked)


@reads("VacuumStmt")
def check_vacuum_full(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "VacuumStmt" and any(o.defname == "full" for o in node.options or ()):
        relations = [r.relation for r in node.rels or () if r.relation is not None]
        for relation in relations:
            yield hit(relation, table=shown(relation))
        if not relations:
            yield hit(table="every table of the database")


@reads("ClusterStmt")
def check_cluster(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "ClusterStmt":
        if node.relation:
            yield hit(node.relation, table=shown(node.relation))
        else:
            yield hit(table="every previously clustered table")
