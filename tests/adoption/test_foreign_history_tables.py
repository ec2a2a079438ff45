"""Another tool's history where ours goes is refused by every command, naming the tool; nothing is changed.

dbmate and golang-migrate keep their history in schema_migrations, as this tool does; goose and Flyway in tables
of their own, which mean another tool manages the database. Each table is created here with the tool's own DDL,
as its PostgreSQL driver writes it:
- dbmate (pkg/driver/postgres/postgres.go, CreateMigrationsTable; varchar(255) before dbmate 2),
- golang-migrate (database/postgres/postgres.go, ensureVersionTable),
- goose (internal/dialect/dialectquery/postgres.go, CreateTable; goose then records version 0),
- Flyway (org/flywaydb/core/internal/database/postgresql/createMetaDataTable.sql).
One database holds them all, one schema per tool (picked with --history-schema); golang-migrate's sits in public.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import foreign_tools
from conftest import fresh_database, migration, query

# The tools' own DDL (foreign_tools.py, where it says where each comes from), placed in this module's schemas.
DBMATE_DDL = foreign_tools.DBMATE_DDL.replace('"public".', '"dbm".')
DBMATE_1_DDL = 'create table if not exists "dbm1"."schema_migrations" (version varchar(255) primary key)'
GOLANG_MIGRATE_DDL = foreign_tools.GOLANG_MIGRATE_DDL
GOOSE_DDL = """CREATE TABLE goose.goose_db_version (
		id serial NOT NULL,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NULL default now(),
		PRIMARY KEY(id)
	)"""
FLYWAY_DDL = foreign_tools.FLYWAY_DDL.replace('"public".', '"fly".')
SETUP = f"""
CREATE SCHEMA dbm; CREATE SCHEMA dbm1; CREATE SCHEMA goose; CREATE SCHEMA fly; CREATE SCHEMA odd;
{DBMATE_DDL}; INSERT INTO "dbm"."schema_migrations" (version) VALUES ('20240101000000'), ('20240102000000');
{DBMATE_1_DDL}; INSERT INTO "dbm1"."schema_migrations" (version) VALUES ('20190101000000');
{GOLANG_MIGRATE_DDL}; INSERT INTO "public"."schema_migrations" (version, dirty) VALUES (2, false);
{GOOSE_DDL}; INSERT INTO goose.goose_db_version (version_id, is_applied) VALUES (0, true), (1, true);
{FLYWAY_DDL};
INSERT INTO fly.flyway_schema_history VALUES (1, '1', 'create items', 'SQL', 'V1__create_items.sql', 123, 'me',
                                              now(), 5, true);
CREATE TABLE odd.schema_migrations (id int, applied text);
"""
# (tool, --history-schema, the table the error names)
SHAPES = [("golang-migrate", "public", "public.schema_migrations"), ("dbmate", "dbm", "dbm.schema_migrations"),
          ("dbmate", "dbm1", "dbm1.schema_migrations"), ("goose", "goose", "goose.goose_db_version"),
          ("flyway", "fly", "fly.flyway_schema_history")]
V1 = "20260101_000000_create_items"
FILES = {f"{V1}.sql": migration("CREATE TABLE items (id int);", "DROP TABLE items;")}
# Everything a command could create or change: every relation, and every row of the foreign history tables.
FINGERPRINT = """
SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""
CONTENTS = ["public.schema_migrations", "dbm.schema_migrations", "dbm1.schema_migrations", "goose.goose_db_version",
            "fly.flyway_schema_history", "odd.schema_migrations"]


@pytest.fixture(scope="module")
def foreign_db(pg_server: str) -> Iterator[str]:
    """One database with every foreign history table in place (the commands are refused: they share it)."""
    with fresh_database(pg_server) as url:
        query(url, SETUP)
        yield url


def fingerprint(url: str) -> tuple:
    """Return every relation and every row of the foreign tables: equal before and after means nothing changed."""
    rows = tuple(tuple(map(str, query(url, f"SELECT * FROM {table} ORDER BY 1"))) for table in CONTENTS)
    return query(url, FINGERPRINT)[0][0], rows


def refused(result, tool: str, table: str) -> dict:
    """Assert the JSON refusal of a foreign history table and return its error object."""
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["tool"], error["table"]) == ("foreign_history_table", tool, table)
    return error


@pytest.mark.parametrize("tool, schema, table", SHAPES, ids=[s[1] for s in SHAPES])
def test_each_tools_history_table_is_refused_by_plan_apply_rollback_and_dry_runs(
        foreign_db, migrations_dir, run_script, tool, schema, table):
    before = fingerprint(foreign_db)
    folder = str(migrations_dir(FILES))
    commands = [["plan"]] if schema == "dbm1" else [["plan"], ["apply"], ["apply", "--dry-run"], ["rollback"]]
    for command in commands:  # dbmate 1's table differs from dbmate 2's in its type only: plan says enough
        result = run_script(*command, "--migrations-dir", folder, "--history-schema", schema, "--json",
                            db_url=foreign_db)
        error = refused(result, tool, table)
        assert f"--from {tool} MIGRATIONS_SOURCE_DIR --adopt" in error["hint"]
        assert f"--history-schema {schema}" in error["hint"] or schema == "public"
    assert fingerprint(foreign_db) == before


def test_the_human_refusal_is_one_line_naming_the_tool_the_table_and_the_adoption_command(
        foreign_db, migrations_dir, run_script):
    before = fingerprint(foreign_db)
    result = run_script("apply", "--migrations-dir", str(migrations_dir(FILES)), db_url=foreign_db)
    assert result.returncode == 3 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "public.schema_migrations (version, dirty) looks like golang-migrate's history" in lines[0]
    assert "python scripts/import_migrations.py --from golang-migrate MIGRATIONS_SOURCE_DIR --adopt" in lines[0]
    assert "--history-table" in lines[0]  # the way to keep both tools
    assert fingerprint(foreign_db) == before


@pytest.mark.parametrize("command", [["apply", "--baseline", V1], ["apply", "--accept-checksum", V1],
                                     ["apply", "--record-schema"], ["rollback", "--dry-run"], ["lint", "--pending"],
                                     ["verify", "--pending"]],
                         ids=lambda c: " ".join(c))
def test_every_other_command_that_reads_or_writes_history_is_refused_too(
        foreign_db, migrations_dir, run_script, command):
    before = fingerprint(foreign_db)
    result = run_script(*command, "--migrations-dir", str(migrations_dir(FILES)), "--history-schema", "dbm",
                        "--json", db_url=foreign_db)
    refused(result, "dbmate", "dbm.schema_migrations")
    assert fingerprint(foreign_db) == before


def test_a_table_of_unknown_shape_is_refused_with_the_way_to_another_name(foreign_db, migrations_dir, run_script):
    before = fingerprint(foreign_db)
    for command in (["plan"], ["apply"]):
        result = run_script(*command, "--migrations-dir", str(migrations_dir(FILES)), "--history-schema", "odd",
                            "--json", db_url=foreign_db)
        error = refused(result, "unknown", "odd.schema_migrations")
        assert "(id, applied)" in error["message"]
        assert "--history-table" in error["hint"] and "MIGRATIONS_TABLE" in error["hint"]
        assert "import_migrations" not in error["hint"]
    assert fingerprint(foreign_db) == before


def test_another_history_table_name_leaves_the_other_tools_table_alone(db_url, migrations_dir, run_script):
    query(db_url, GOLANG_MIGRATE_DDL + "; INSERT INTO public.schema_migrations VALUES (7, false)")
    folder = str(migrations_dir(FILES))
    result = run_script("apply", "--migrations-dir", folder, "--history-table", "app_history", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert query(db_url, "SELECT version, direction FROM app_history") == [(V1, "up")]
    assert query(db_url, "SELECT * FROM public.schema_migrations") == [(7, False)]
    result = run_script("plan", "--migrations-dir", folder, "--json", env={"MIGRATIONS_TABLE": "app_history"},
                        db_url=db_url)
    assert result.returncode == 0, result.stdout
    assert [r["version"] for r in json.loads(result.stdout)["applied"]] == [V1]


def test_tables_are_told_apart_by_their_columns_whatever_their_name():
    from migration_core.history_shape import Column, classify
    ours = [Column(name, "text") for name in ("id", "version", "name", "checksum", "applied_at", "direction",
                                              "status", "error_message")]
    assert classify(ours) is None and classify(ours, "v") == "unknown"  # a view in the place is not ours
    assert classify([Column("version", "text")]) == "dbmate"  # Rails' table has the same shape
    assert classify([Column("version", "bigint")]) == "unknown"
    assert classify([Column("version", "bigint"), Column("dirty", "boolean")]) == "golang-migrate"
    assert classify([Column(n, "bigint") for n in ("id", "version_id", "is_applied", "tstamp")]) == "goose"
    assert classify([Column(n, "text") for n in ("installed_rank", "version", "description", "type", "script",
                                                 "checksum", "success")]) == "flyway"
    assert classify([]) == "unknown"
