"""Pure tests of migration_core.schema_diff: every kind of difference, described in words (issue 4)."""
from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from conftest import SCRIPTS
from migration_core.schema_diff import SchemaChange, diff_snapshots


def column(type_name: str = "integer", nullable: bool = True, default: str | None = None) -> dict[str, Any]:
    return {"type": type_name, "nullable": nullable, "default": default, "generated": None, "identity": None,
            "collation": None}


def table(**columns: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "table", "unlogged": False, "row_security": False, "options": [], "partition_key": None,
            "partition_bound": None, "inherits": [], "columns": columns, "column_order": list(columns),
            "constraints": {}, "triggers": {}}


def base() -> dict[str, Any]:
    """A snapshot shaped like take_snapshot's: users with an index, a view, a function, an enum."""
    return {
        "format": 1,
        "schemas": {"public": {}},
        "extensions": {"plpgsql": {"version": "1.0", "schema": "pg_catalog"}},
        "tables": {"public.users": table(id=column("bigint", nullable=False), email=column("text"))},
        "views": {"public.active_users": {"kind": "view", "definition": " SELECT id\n   FROM users;", "options": [],
                                          "triggers": {}}},
        "indexes": {"public.idx_x": {"table": "public.users", "valid": True,
                                     "definition": "CREATE INDEX idx_x ON public.users USING btree (email)"}},
        "sequences": {},
        "functions": {"public.f(integer)": {"kind": "function", "arguments": "n integer", "returns": "integer",
                                            "language": "sql", "volatility": "immutable", "strict": False,
                                            "security_definer": False, "parallel": "unsafe", "config": [],
                                            "body_md5": "0" * 32}},
        "types": {"public.mood": {"kind": "enum", "labels": ["happy", "ok"]}},
    }


def changed(edit) -> list[str]:
    """Return the descriptions of the changes one edit makes to the base snapshot."""
    old = base()
    new = copy.deepcopy(old)
    edit(new)
    return [change.describe() for change in diff_snapshots(old, new)]


def add_status(s):
    s["tables"]["public.users"]["columns"]["status"] = column("text")
    s["tables"]["public.users"]["column_order"].append("status")


def drop_email(s):
    del s["tables"]["public.users"]["columns"]["email"]
    s["tables"]["public.users"]["column_order"].remove("email")


def add_value_first(s):
    s["types"]["public.mood"]["labels"].insert(0, "sad")


CASES = [
    ("column added", add_status, ["table users: column status added (text, nullable)"]),
    ("column removed", drop_email, ["table users: column email removed"]),
    ("type changed", lambda s: s["tables"]["public.users"]["columns"]["email"].update(type="character varying(80)"),
     ["table users: column email type changed (text -> character varying(80))"]),
    ("nullability changed", lambda s: s["tables"]["public.users"]["columns"]["email"].update(nullable=False),
     ["table users: column email nullability changed (nullable -> not null)"]),
    ("default changed", lambda s: s["tables"]["public.users"]["columns"]["email"].update(default="''::text"),
     ["table users: column email default changed (none -> ''::text)"]),
    ("constraint added", lambda s: s["tables"]["public.users"]["constraints"].update(users_pkey="PRIMARY KEY (id)"),
     ["table users: constraint users_pkey added (PRIMARY KEY (id))"]),
    ("table added", lambda s: s["tables"].update({"public.t": table(a=column())}), ["table t added (1 column)"]),
    ("table removed", lambda s: s["tables"].pop("public.users") and s["indexes"].clear(),
     ["table users removed", "index idx_x removed"]),
    ("index removed", lambda s: s["indexes"].clear(), ["index idx_x removed"]),
    ("index added", lambda s: s["indexes"].update({"public.uq": {
        "table": "public.users", "valid": True,
        "definition": "CREATE UNIQUE INDEX uq ON public.users USING btree (lower(email))"}}),
     ["index uq added (unique on users USING btree (lower(email)))"]),
    ("index invalid", lambda s: s["indexes"]["public.idx_x"].update(valid=False),
     ["index idx_x: became INVALID (a failed CREATE INDEX CONCURRENTLY?)"]),
    ("view changed", lambda s: s["views"]["public.active_users"].update(definition=" SELECT id\n   FROM admins;"),
     ["view active_users: definition changed (SELECT id FROM users; -> SELECT id FROM admins;)"]),
    ("long view changed", lambda s: s["views"]["public.active_users"].update(definition="SELECT " + "x, " * 60 + "y"),
     ["view active_users: definition changed"]),
    ("function body changed", lambda s: s["functions"]["public.f(integer)"].update(body_md5="1" * 32),
     ["function f(integer): body changed"]),
    ("function volatility changed", lambda s: s["functions"]["public.f(integer)"].update(volatility="stable"),
     ["function f(integer): volatility changed (immutable -> stable)"]),
    ("enum value added", lambda s: s["types"]["public.mood"]["labels"].append("sad"),
     ["type mood: value 'sad' added (after 'ok')"]),
    ("enum value added first", add_value_first, ["type mood: value 'sad' added (first)"]),
    ("enum values reordered", lambda s: s["types"]["public.mood"].update(labels=["ok", "happy"]),
     ["type mood: values reordered ('ok', 'happy')"]),
    ("extension version", lambda s: s["extensions"]["plpgsql"].update(version="1.1"),
     ["extension plpgsql: version changed (1.0 -> 1.1)"]),
    ("other schema keeps its name", lambda s: s["tables"].update({"app.users": table()}),
     ["table app.users added (0 columns)"]),
]


@pytest.mark.parametrize("edit, expected", [(edit, expected) for _, edit, expected in CASES],
                         ids=[case_id for case_id, _, _ in CASES])
def test_each_kind_of_difference_is_described_in_words(edit, expected):
    assert changed(edit) == expected


def test_equal_snapshots_have_no_differences():
    assert diff_snapshots(base(), base()) == []


def test_dropping_a_column_is_not_reported_as_reordering_the_others():
    assert changed(drop_email) == ["table users: column email removed"]


def test_reordered_columns_are_reported_once():
    assert changed(lambda s: s["tables"]["public.users"].update(column_order=["email", "id"])) == \
        ["table users: columns reordered (id, email -> email, id)"]


def test_changes_are_listed_types_first_then_tables_then_indexes():
    def several(s):
        s["indexes"].clear()
        add_status(s)
        s["types"]["public.mood"]["labels"].append("sad")
    assert [line.split()[0] for line in changed(several)] == ["type", "table", "index"]


def test_a_change_carries_its_parts_and_description_for_json():
    new = base()
    add_status(new)
    (change,) = diff_snapshots(base(), new)
    assert change == SchemaChange("added", "column", "status", "text, nullable", "table users")
    assert change.to_dict() == {"kind": "added", "object_type": "column", "name": "status",
                                "detail": "text, nullable", "parent": "table users",
                                "description": "table users: column status added (text, nullable)"}


def test_snapshots_of_another_format_are_not_compared_object_by_object():
    newer = base() | {"format": 2}
    assert [c.describe() for c in diff_snapshots(base(), newer)] == \
        ["snapshot format: format changed (1 -> 2); take a new snapshot"]


def test_the_diff_and_snapshot_modules_import_without_psycopg2():
    code = ("import migration_core.schema_diff, migration_core.snapshot, migration_core.snapshot_store, "
            "migration_core.verify, sys; assert 'psycopg2' not in sys.modules, 'psycopg2 was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
