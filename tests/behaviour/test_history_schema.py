"""The history lives in one explicit schema, whatever the connecting role's search_path (issue 9).

Roles with a schema of their own first on their search_path share public.schema_migrations; --history-schema and
MIGRATIONS_SCHEMA move both tool tables elsewhere; a role that only has privileges on the tables (not ownership)
can plan, apply and roll back. The embedded server trusts local connections, so a role connects by changing the
URL's user name. Real subprocesses on a real server.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import migration, query

A = "20260101_000000_create_items"
B = "20260102_000000_create_more"
FILES = {f"{A}.sql": migration("CREATE TABLE items (id int);", "DROP TABLE items;"),
         f"{B}.sql": migration("CREATE TABLE more_items (id int);", "DROP TABLE more_items;")}

TOOL_TABLES = ("schema_migrations", "schema_migrations_snapshots")


def as_role(url: str, role: str) -> str:
    """Return url connecting as role, without a password (the test server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def tool_tables(db_url: str) -> list[tuple[str, str]]:
    """Return (schema, table) of every table named schema_migrations*, wherever it is."""
    return query(db_url, "SELECT schemaname::text, tablename::text FROM pg_tables "
                         "WHERE tablename LIKE 'schema_migrations%%' ORDER BY 1, 2")


def rows_in(db_url: str, schema: str) -> list[tuple[str, str, str]]:
    return query(db_url, f'SELECT version, direction, status FROM "{schema}".schema_migrations ORDER BY id')


@pytest.fixture
def make_role(db_url: str) -> Iterator[Callable[..., tuple[str, str]]]:
    """Return a factory of login roles on the test database: make_role(own_schema=True) -> (name, url)."""
    made: list[str] = []

    def make(own_schema: bool = False) -> tuple[str, str]:
        name = "r_" + uuid.uuid4().hex[:10]
        query(db_url, f'CREATE ROLE "{name}" LOGIN')
        made.append(name)
        if own_schema:  # first on the default search_path ("$user", public)
            query(db_url, f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
        query(db_url, f'GRANT USAGE, CREATE ON SCHEMA public TO "{name}"')
        return name, as_role(db_url, name)

    yield make
    for name in made:
        query(db_url, f'DROP OWNED BY "{name}" CASCADE')
        query(db_url, f'DROP ROLE "{name}"')


def grant_history_use(db_url: str, role: str, schema: str = "public") -> None:
    """Give role what it needs on tables it does not own: read and write rows, use the id sequences."""
    for table in TOOL_TABLES:
        query(db_url, f'GRANT SELECT, INSERT, UPDATE ON "{schema}"."{table}" TO "{role}"')
        query(db_url, f"GRANT USAGE ON SEQUENCE {pg_sequence(db_url, schema, table)} TO \"{role}\"")


def pg_sequence(db_url: str, schema: str, table: str) -> str:
    return query(db_url, "SELECT pg_get_serial_sequence(%s, 'id')", (f'"{schema}"."{table}"',))[0][0]


# ---- roles with their own schema first on the search_path --------------------------------------------------------

def test_a_role_with_its_own_schema_first_writes_the_history_to_public_and_another_role_sees_it(
        db_url, migrations_dir, run_script, make_role):
    first, first_url = make_role(own_schema=True)
    second, second_url = make_role(own_schema=True)
    directory = migrations_dir(FILES)

    applied = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=first_url, timeout=60)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["applied"] == [A, B]
    assert tool_tables(db_url) == [("public", "schema_migrations"), ("public", "schema_migrations_snapshots")]
    assert rows_in(db_url, "public") == [(A, "up", "success"), (B, "up", "success")]
    # The migrations themselves follow the role's search_path: that is the user's choice, not the tool's.
    assert query(db_url, "SELECT schemaname::text FROM pg_tables WHERE tablename = 'items'") == [(first,)]

    for table in TOOL_TABLES:  # the second role may read and write the shared history, as the first could
        query(db_url, f'GRANT SELECT, INSERT, UPDATE ON public."{table}" TO "{second}"')
    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=second_url, timeout=60)
    again = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=second_url, timeout=60)

    assert plan.returncode == 0, plan.stdout + plan.stderr
    plan_doc = json.loads(plan.stdout)
    assert plan_doc["pending"] == [] and [r["version"] for r in plan_doc["applied"]] == [A, B]
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["applied"] == []
    assert tool_tables(db_url) == [("public", "schema_migrations"), ("public", "schema_migrations_snapshots")]
    assert rows_in(db_url, "public") == [(A, "up", "success"), (B, "up", "success")]
    assert query(db_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'items'") == [(1,)]


# ---- --history-schema and MIGRATIONS_SCHEMA ---------------------------------------------------------------------

HOW = {"flag": (("--history-schema", "audit"), {}),
       "env": ((), {"MIGRATIONS_SCHEMA": "audit"}),
       "flag_wins_over_env": (("--history-schema", "audit"), {"MIGRATIONS_SCHEMA": "elsewhere"})}


@pytest.mark.parametrize("how", list(HOW), ids=list(HOW))
def test_the_history_schema_setting_puts_both_tool_tables_there_and_plan_and_rollback_read_them_there(
        how, db_url, migrations_dir, run_script):
    args, env = HOW[how]
    directory = migrations_dir(FILES)

    def run(command: str, *extra: str):
        return run_script(command, "--migrations-dir", str(directory), "--json", *args, *extra, db_url=db_url,
                          env=env, timeout=60)

    applied = run("apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["applied"] == [A, B]
    assert tool_tables(db_url) == [("audit", "schema_migrations"), ("audit", "schema_migrations_snapshots")]
    assert rows_in(db_url, "audit") == [(A, "up", "success"), (B, "up", "success")]
    assert query(db_url, "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('audit', 'elsewhere')") == [
        ("audit",)]

    plan = run("plan")

    assert plan.returncode == 0, plan.stdout + plan.stderr
    plan_doc = json.loads(plan.stdout)
    assert [r["version"] for r in plan_doc["applied"]] == [A, B] and plan_doc["pending"] == []
    assert plan_doc["schema_check"] == "clean"

    rollback = run("rollback")

    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert json.loads(rollback.stdout)["rolled_back"] == [B]
    assert rows_in(db_url, "audit") == [(A, "up", "success"), (B, "up", "success"), (B, "down", "success")]
    assert query(db_url, "SELECT to_regclass('public.more_items') IS NULL") == [(True,)]
    assert tool_tables(db_url) == [("audit", "schema_migrations"), ("audit", "schema_migrations_snapshots")]

    after = json.loads(run("plan").stdout)
    assert [p["version"] for p in after["pending"]] == [B]


def test_without_the_setting_plan_does_not_see_a_history_kept_in_another_schema(db_url, migrations_dir,
                                                                                 run_script):
    directory = migrations_dir(FILES)
    applied = run_script("apply", "--migrations-dir", str(directory), "--history-schema", "audit",
                         db_url=db_url, timeout=60)
    assert applied.returncode == 0, applied.stdout + applied.stderr

    plan = run_script("plan", "--migrations-dir", str(directory), "--json", "--no-schema-check", db_url=db_url,
                      timeout=60)

    assert plan.returncode == 0, plan.stdout + plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["applied"] == [] and [p["version"] for p in doc["pending"]] == [A, B]
    assert tool_tables(db_url) == [("audit", "schema_migrations"), ("audit", "schema_migrations_snapshots")]


# ---- a role with privileges on the tool tables but not owning them ----------------------------------------------

def test_a_role_that_does_not_own_the_history_tables_can_plan_apply_and_roll_back(db_url, migrations_dir,
                                                                                  run_script, make_role):
    directory = migrations_dir({f"{A}.sql": FILES[f"{A}.sql"]})
    owner = run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60)
    assert owner.returncode == 0, owner.stdout + owner.stderr
    user, user_url = make_role()
    grant_history_use(db_url, user)
    directory = migrations_dir(FILES)

    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=user_url, timeout=60)

    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert [p["version"] for p in json.loads(plan.stdout)["pending"]] == [B]

    applied = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=user_url, timeout=60)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["applied"] == [B]
    assert query(db_url, "SELECT tableowner::text FROM pg_tables WHERE schemaname = 'public' "
                         "AND tablename = 'more_items'") == [(user,)]
    assert rows_in(db_url, "public") == [(A, "up", "success"), (B, "up", "success")]
    assert tool_tables(db_url) == [("public", "schema_migrations"), ("public", "schema_migrations_snapshots")]

    rollback = run_script("rollback", "--migrations-dir", str(directory), "--json", db_url=user_url, timeout=60)

    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert json.loads(rollback.stdout)["rolled_back"] == [B]
    assert query(db_url, "SELECT to_regclass('public.more_items') IS NULL") == [(True,)]
    assert rows_in(db_url, "public") == [(A, "up", "success"), (B, "up", "success"), (B, "down", "success")]
    # The owner still owns the tool's tables: nothing was recreated under the other role.
    assert query(db_url, "SELECT DISTINCT tableowner::text FROM pg_tables WHERE tablename LIKE "
                         "'schema_migrations%%'") == [(query(db_url, "SELECT current_user::text")[0][0],)]
