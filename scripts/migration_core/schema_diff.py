"""Compare two schema snapshots and describe every difference in words a person can act on (issue 4).

One job: diff_snapshots(old, new) -> [SchemaChange], each with describe(), e.g.
`table users: column status added (text, nullable)`, `index idx_x removed`, `function f(integer): body changed`,
`type mood: value 'sad' added (after 'happy')`. Pure: takes the dicts snapshot.take_snapshot returns.
Imports: stdlib only.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]
# Categories in reading order: what others depend on first.
CATEGORY_TYPES: dict[str, str | None] = {   # None: the object's own "kind" names it (table, view, procedure...)
    "schemas": "schema", "extensions": "extension", "types": "type", "tables": None, "views": None,
    "sequences": "sequence", "indexes": "index", "functions": None,
}
MEMBERS = {"columns": "column", "attributes": "attribute", "constraints": "constraint", "triggers": "trigger"}
ORDERS = {"column_order": "columns", "attribute_order": "attributes"}
LABELS = {"body_md5": "body", "row_security": "row level security", "options": "storage options"}
OPAQUE = {"body_md5"}       # a hash says nothing to a reader: report only that it changed
MAX_SHOWN = 120             # longer before/after values (view bodies) are summarised as "changed"
TRIGGER_HEAD = re.compile(r"^CREATE (CONSTRAINT )?TRIGGER \S+ ")   # the name is said already
ARROW = "->"                # ASCII: a Windows console in a legacy code page cannot print an arrow


@dataclass(frozen=True)
class SchemaChange:
    """One object added, removed or changed between two snapshots."""

    kind: ChangeKind
    object_type: str        # schema, extension, type, table, view, index, function, column, constraint, value...
    name: str               # display name: the schema is left out for objects in public
    detail: str = ""        # what changed, or a summary of what was added
    parent: str = ""        # the object a member belongs to, e.g. "table users" for a column
    before: str = ""        # a value too long for the one line (a view's definition): in full, shown wrapped
    after: str = ""

    def describe(self) -> str:
        """Return one readable line, e.g. `table users: column status added (text, nullable)`."""
        head = f"{self.parent}: " if self.parent else ""
        head += " ".join(part for part in (self.object_type, self.name) if part)
        if self.kind == "changed":
            return f"{head}{' ' if self.parent else ': '}{self.detail}"
        return f"{head} {self.kind}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, str]:
        """Return the change for JSON output, its description included (before/after only when set)."""
        fields = {key: value for key, value in asdict(self).items() if key not in ("before", "after") or value}
        return fields | {"description": self.describe()}


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    """Return every difference from old to new, in a stable order (empty: the schemas are the same)."""
    if old.get("format") != new.get("format"):
        return [SchemaChange("changed", "snapshot", "format",
                             f"format changed ({old.get('format')} {ARROW} {new.get('format')}); take a new snapshot")]
    changes: list[SchemaChange] = []
    for category, object_type in CATEGORY_TYPES.items():
        changes += diff_category(object_type, old.get(category, {}), new.get(category, {}))
    return changes


def diff_category(object_type: str | None, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    """Compare one category of top-level objects, keyed by qualified name."""
    changes: list[SchemaChange] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        kind_of = object_type or str((after or before or {}).get("kind", "object"))
        if before is None:
            changes.append(SchemaChange("added", kind_of, display_name(key), summarise(kind_of, after)))
        elif after is None:
            changes.append(SchemaChange("removed", kind_of, display_name(key)))
        elif before != after:
            changes += diff_properties(kind_of, display_name(key), before, after)
    return changes


def diff_properties(object_type: str, name: str, old: dict[str, Any], new: dict[str, Any],
                    parent: str = "") -> list[SchemaChange]:
    """Compare two versions of one object property by property; members (columns...) one by one."""
    changes: list[SchemaChange] = []
    for prop in sorted(old.keys() | new.keys(), key=property_rank):
        before, after = old.get(prop), new.get(prop)
        if before == after:
            continue
        if prop in MEMBERS:
            changes += diff_members(f"{object_type} {name}", MEMBERS[prop], before or {}, after or {})
        elif prop in ORDERS:
            changes += diff_order(object_type, name, ORDERS[prop], before or [], after or [])
        elif prop == "labels":
            changes += diff_labels(f"{object_type} {name}", before or [], after or [])
        else:
            changes.append(SchemaChange("changed", object_type, name, describe_change(prop, before, after), parent,
                                        *long_values(prop, before, after)))
    return changes


def property_rank(prop: str) -> tuple[int, str]:
    """Order properties: the object's own first, then reordering, then its members."""
    return (2 if prop in MEMBERS else 1 if prop in ORDERS else 0, prop)


def diff_members(parent: str, member_type: str, old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    """Compare the members of one object: columns, constraints, triggers, attributes."""
    changes: list[SchemaChange] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before is None:
            changes.append(SchemaChange("added", member_type, key, summarise(member_type, after), parent))
        elif after is None:
            changes.append(SchemaChange("removed", member_type, key, "", parent))
        elif isinstance(before, dict) and isinstance(after, dict):
            changes += diff_properties(member_type, key, before, after, parent)
        elif before != after:
            changes.append(SchemaChange("changed", member_type, key, describe_change("definition", before, after),
                                        parent, *long_values("definition", before, after)))
    return changes


def diff_order(object_type: str, name: str, members: str, old: list[str], new: list[str]) -> list[SchemaChange]:
    """Report a new relative order of the members both versions share (adding or dropping one is not that)."""
    kept_old = [m for m in old if m in new]
    kept_new = [m for m in new if m in old]
    if kept_old == kept_new:
        return []
    return [SchemaChange("changed", object_type, name,
                         f"{members} reordered ({', '.join(kept_old)} {ARROW} {', '.join(kept_new)})")]


def diff_labels(parent: str, old: list[str], new: list[str]) -> list[SchemaChange]:
    """Compare the ordered labels of an enum: each added or removed value, and any reordering."""
    changes = [SchemaChange("added", "value", sql_literal(label), place_of(label, new), parent)
               for label in new if label not in old]
    changes += [SchemaChange("removed", "value", sql_literal(label), "", parent) for label in old if label not in new]
    kept_old = [label for label in old if label in new]
    kept_new = [label for label in new if label in old]
    if kept_old != kept_new:
        changes.append(SchemaChange("changed", "values", "", f"reordered ({', '.join(map(sql_literal, kept_new))})",
                                    parent))
    return changes


def place_of(label: str, labels: list[str]) -> str:
    index = labels.index(label)
    return f"after {sql_literal(labels[index - 1])}" if index else "first"


def describe_change(prop: str, before: Any, after: Any) -> str:
    """Return e.g. `type changed (integer -> bigint)`, or just `body changed` when the values say nothing."""
    label = LABELS.get(prop, prop.replace("_", " "))
    if prop == "nullable":
        return f"nullability changed ({nullability(before)} {ARROW} {nullability(after)})"
    if prop == "valid":
        return "became valid" if after else "became INVALID (a failed CREATE INDEX CONCURRENTLY?)"
    old_text, new_text = show(before), show(after)
    if prop in OPAQUE or len(old_text) + len(new_text) > MAX_SHOWN:
        return f"{label} changed"
    return f"{label} changed ({old_text} {ARROW} {new_text})"


def long_values(prop: str, before: Any, after: Any) -> tuple[str, str]:
    """Return both values in full when describe_change left them out for their length; else ("", "")."""
    old_text, new_text = show(before), show(after)
    if prop in OPAQUE or len(old_text) + len(new_text) <= MAX_SHOWN:
        return "", ""
    return old_text, new_text


def summarise(object_type: str, value: Any) -> str:
    """Return the short description shown in parentheses after `added`."""
    if not isinstance(value, dict):
        return show(value)  # a constraint's or a member's definition
    if object_type in ("column", "attribute"):
        return describe_column(value)
    if "columns" in value:
        return f"{len(value['columns'])} column{'' if len(value['columns']) == 1 else 's'}"
    if object_type == "index":
        return describe_index(value)
    if object_type == "trigger":
        return TRIGGER_HEAD.sub("", show(value.get("definition")))
    if object_type == "type":
        return describe_type(value)
    if object_type == "extension":
        return f"version {value['version']}"
    if object_type == "sequence":
        return str(value["type"]) + (f", owned by {display_name(value['owned_by'])}" if value.get("owned_by") else "")
    if value.get("returns"):
        return f"returns {value['returns']}"
    return ""


def describe_column(column: dict[str, Any]) -> str:
    """Return e.g. `text, nullable` or `bigint, not null, identity always`."""
    parts = [column["type"]]
    if column.get("collation"):
        parts.append(f"collate {column['collation']}")
    parts.append(nullability(column.get("nullable", True)))
    if column.get("default") is not None:
        parts.append(f"default {column['default']}")
    if column.get("identity"):
        parts.append(f"identity {column['identity']}")
    if column.get("generated"):
        parts.append(f"generated {column['generated']}")
    return ", ".join(parts)


def describe_index(index: dict[str, Any]) -> str:
    """Return e.g. `on users USING btree (lower(email))`, from the definition PostgreSQL gives."""
    definition = str(index.get("definition", ""))
    method = definition.partition(" USING ")[2]
    unique = "unique " if definition.startswith("CREATE UNIQUE") else ""
    summary = f"{unique}on {display_name(str(index.get('table', '?')))}" + (f" USING {method}" if method else "")
    return summary + ("" if index.get("valid", True) else ", INVALID")


def describe_type(value: dict[str, Any]) -> str:
    kind = value.get("kind")
    if kind == "enum":
        return "enum: " + ", ".join(map(sql_literal, value.get("labels", [])))
    if kind == "domain":
        return f"domain over {value.get('base')}"
    if kind == "range":
        return f"range of {value.get('subtype')}"
    return str(kind)


def nullability(nullable: Any) -> str:
    return "nullable" if nullable else "not null"


def show(value: Any) -> str:
    """Render a snapshot value on one line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(show, value)) if value else "none"
    return " ".join(str(value).split())


def display_name(key: str) -> str:
    """Return a qualified name as people write it: objects in public need no schema."""
    return key.removeprefix("public.")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
