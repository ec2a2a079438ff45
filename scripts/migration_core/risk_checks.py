"""The risk checks: one small function per rule, reading one parsed statement and the migration's state so far.

Each check yields hits whose fields fill its rule's message and hint (the registry is risk_rules.RULES).
Pure: imports stdlib, risk_nodes and statements (issue 5).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .risk_nodes import (LOCK_MODES, SAFE_TYPE_TARGETS, SERIAL_TYPES, WIDENING_TARGETS, Node, SectionState,
                         Severity, alter_commands, column_constraints, enum_name, existing_alters, node_type,
                         show_type, shown, table_of, type_words, volatile_function)
from .statements import transaction_forbidden


@dataclass(frozen=True)
class Hit:
    """One match of a rule: the words that fill its templates, and a severity when not the rule's default."""

    fields: dict[str, str]
    severity: Severity | None = None


def hit(severity: Severity | None = None, **fields: str) -> Hit:
    return Hit(fields, severity)


# ---- locks held for as long as the table is large ----------------------------------------------------------

def check_index_non_concurrently(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "IndexStmt" and not node.concurrent and not state.is_new(table_of(node.relation)):
        yield hit(table=shown(node.relation), index=f" {node.idxname}" if node.idxname else "")


def check_column_default(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in existing_alters(node, state, "AT_AddColumn"):
        reason = rewrite_reason(cmd.def_, state.pg_version)
        if reason:
            yield hit(table=shown(relation), column=str(cmd.def_.colname), reason=reason)


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


def check_set_not_null(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in existing_alters(node, state, "AT_SetNotNull"):
        table, column = table_of(relation), str(cmd.name)
        if state.pg_version < 120000:
            yield hit(table=shown(relation), column=column, reason=" (before PostgreSQL 12 even a validated "
                                                                   "CHECK does not spare the scan)")
        elif (table, column) not in state.checked_not_null and table not in state.validated_tables:
            yield hit(table=shown(relation), column=column, reason="")


def check_constraint_not_valid(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, constraint in added_constraints(node, state, "CONSTR_CHECK", "CONSTR_FOREIGN"):
        if constraint.skip_validation:
            continue
        name = f" {constraint.conname}" if constraint.conname else ""
        if enum_name(constraint.contype) == "CONSTR_FOREIGN":
            yield hit(table=shown(relation), what=f"foreign key{name}",
                      lock=f"SHARE ROW EXCLUSIVE locks on {shown(relation)} and {shown(constraint.pktable)}",
                      blocked="writes to both tables")
        else:
            yield hit(table=shown(relation), what=f"CHECK constraint{name}",
                      lock=f"an ACCESS EXCLUSIVE lock on {shown(relation)}", blocked="all reads and writes")


def added_constraints(node: Node, state: SectionState, *kinds: str) -> Iterator[tuple[Node, Node]]:
    """Yield (table, constraint) for constraints of these kinds added to an existing table, inline ones too."""
    for relation, cmd in existing_alters(node, state, "AT_AddConstraint"):
        if enum_name(cmd.def_.contype) in kinds:
            yield relation, cmd.def_
    for relation, cmd in existing_alters(node, state, "AT_AddColumn"):
        for constraint in column_constraints(cmd.def_, *kinds):
            yield relation, constraint


def check_validate_in_transaction(node: Node, state: SectionState) -> Iterator[Hit]:
    if not state.transactional:
        return
    for relation, cmd in alter_commands(node):
        if enum_name(cmd.subtype) == "AT_ValidateConstraint" and (table_of(relation), cmd.name) in state.not_valid:
            yield hit(table=shown(relation), constraint=str(cmd.name))


def check_column_type(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in existing_alters(node, state, "AT_AlterColumnType"):
        base, limited = type_words(cmd.def_.typeName)
        fields = {"table": shown(relation), "column": str(cmd.name), "type": show_type(cmd.def_.typeName)}
        if cmd.def_.raw_default is None and base in SAFE_TYPE_TARGETS and not limited:
            continue  # varchar(n) -> varchar / text: no rewrite
        if cmd.def_.raw_default is None and base in WIDENING_TARGETS:
            yield Hit(fields | {"unless": "; no rewrite happens only if it widens the current limit "
                                          "(e.g. varchar(20) to varchar(50)), which cannot be seen offline"}, "low")
        else:
            yield Hit(fields | {"unless": ""})


def check_constraint_using_index(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, constraint in added_constraints(node, state, "CONSTR_PRIMARY", "CONSTR_UNIQUE"):
        if not constraint.indexname:
            kind = "PRIMARY KEY" if enum_name(constraint.contype) == "CONSTR_PRIMARY" else "UNIQUE"
            yield hit(table=shown(relation), kind=kind)


# ---- statements that fail inside a transaction --------------------------------------------------------------

def check_outside_transaction(node: Node, state: SectionState) -> Iterator[Hit]:
    if not state.transactional:
        return
    what = transaction_forbidden(node)
    if what:
        yield hit(statement=what)


def check_enum_value_in_transaction(node: Node, state: SectionState) -> Iterator[Hit]:
    if (node_type(node) == "AlterEnumStmt" and node.newVal and not node.oldVal and state.transactional
            and state.pg_version < 120000):
        yield hit(type=".".join(str(n.sval) for n in node.typeName))


# ---- changes that break running code or lose data -----------------------------------------------------------

def check_rename_column(node: Node, state: SectionState) -> Iterator[Hit]:
    if (node_type(node) == "RenameStmt" and enum_name(node.renameType) == "OBJECT_COLUMN"
            and not state.is_new(table_of(node.relation))):
        yield hit(table=shown(node.relation), column=str(node.subname), new=str(node.newname))


def check_rename_table(node: Node, state: SectionState) -> Iterator[Hit]:
    if (node_type(node) == "RenameStmt" and enum_name(node.renameType) == "OBJECT_TABLE"
            and not state.is_new(table_of(node.relation))):
        yield hit(table=shown(node.relation), new=str(node.newname))


def check_drop_column(node: Node, state: SectionState) -> Iterator[Hit]:
    for relation, cmd in existing_alters(node, state, "AT_DropColumn"):
        if (table_of(relation), cmd.name) not in state.up_columns:
            yield hit(table=shown(relation), column=str(cmd.name))


def check_drop_table(node: Node, state: SectionState) -> Iterator[Hit]:
    for table in dropped_tables(node):
        if not state.is_new(table) and table not in state.up_tables:
            yield hit(table=table)


def dropped_tables(node: Node) -> list[str]:
    """Return the names of the tables a DROP TABLE removes (schema-qualified names keep their last part)."""
    if node_type(node) != "DropStmt" or enum_name(node.removeType) != "OBJECT_TABLE":
        return []
    return [str(name[-1].sval) for name in node.objects]


def check_rollback_drops(node: Node, state: SectionState) -> Iterator[Hit]:
    if state.direction != "down":
        return
    for table in dropped_tables(node):
        if table in state.up_tables:
            yield hit(what=f"table {table}")
    for relation, cmd in alter_commands(node):
        if enum_name(cmd.subtype) == "AT_DropColumn" and (table_of(relation), cmd.name) in state.up_columns:
            yield hit(what=f"column {shown(relation)}.{cmd.name}")


def check_truncate(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "TruncateStmt":
        for relation in node.relations:
            if not state.is_new(table_of(relation)):
                yield hit(table=shown(relation))


def check_update_without_where(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "UpdateStmt" and node.whereClause is None and not state.is_new(table_of(node.relation)):
        yield hit(table=shown(node.relation))


def check_delete_without_where(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "DeleteStmt" and node.whereClause is None and not state.is_new(table_of(node.relation)):
        yield hit(table=shown(node.relation))


# ---- explicit locks and maintenance that rewrites tables ---------------------------------------------------

def check_lock_table(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) != "LockStmt":
        return
    for relation in node.relations:
        if state.is_new(table_of(relation)):
            continue
        blocked = ("all reads and writes" if node.mode == 8 else "all writes" if node.mode >= 5
                   else "schema changes and maintenance")
        yield hit(None if node.mode >= 5 else "low", table=shown(relation), mode=LOCK_MODES[node.mode],
                  blocked=blocked)


def check_vacuum_full(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "VacuumStmt" and any(o.defname == "full" for o in node.options or ()):
        tables = [shown(r.relation) for r in node.rels or () if r.relation is not None]
        yield hit(table=", ".join(tables) or "every table of the database")


def check_cluster(node: Node, state: SectionState) -> Iterator[Hit]:
    if node_type(node) == "ClusterStmt" and not (node.relation and state.is_new(table_of(node.relation))):
        yield hit(table=shown(node.relation) if node.relation else "every previously clustered table")

