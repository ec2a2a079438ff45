"""Pure tests of migration_core.statements: which statements a migration may hold in each transaction mode.

The server-side proof of the non-transactional list is tests/behaviour/test_non_transactional_statements.py; the
cases here are the ones the server cannot show without a live publisher or an old server, and the option parsing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from pglast.parser import parse_sql

from migration_core import parsing, statements
from migration_core.errors import InvalidMigrationFile

FILE = Path("20260101_000000_change.sql")
NONE = "-- TRANSACTION: none\n"


def node(sql: str):
    [raw] = parse_sql(sql)
    return raw.stmt


def migration(up: str, down: str | None = None, header: str = ""):
    text = f"{header}-- DIRECTION: up\n{up}\n" + (f"-- DIRECTION: down\n{down}\n" if down else "")
    return parsing.parse_migration_text(text, FILE, "change")


# ---- statements that cannot run inside a transaction block -------------------------------------------------

FORBIDDEN = {
    # Only these need a live publisher (or the catalog) on the server, so the server test leaves them out.
    "create_subscription_connecting_with_a_slot": (
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", "CREATE SUBSCRIPTION ... WITH (create_slot = true)"),
    "create_subscription_create_slot_on": (
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = on)",
        "CREATE SUBSCRIPTION ... WITH (create_slot = true)"),
    "create_subscription_create_slot_bare": (
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot)",
        "CREATE SUBSCRIPTION ... WITH (create_slot = true)"),
    "create_subscription_unreadable_create_slot": (  # the server rejects the value; the safe answer is kept
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = maybe)",
        "CREATE SUBSCRIPTION ... WITH (create_slot = true)"),
    "drop_subscription_if_exists": ("DROP SUBSCRIPTION IF EXISTS s", "DROP SUBSCRIPTION"),
    "refresh_publication": ("ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false)",
                            "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"),
    "set_publication_refreshing_by_default": ("ALTER SUBSCRIPTION s SET PUBLICATION p",
                                              "ALTER SUBSCRIPTION ... SET PUBLICATION with refresh"),
    "add_publication_refresh_1": ("ALTER SUBSCRIPTION s ADD PUBLICATION p WITH (refresh = 1)",
                                  "ALTER SUBSCRIPTION ... ADD PUBLICATION with refresh"),
    "drop_publication_refresh_bare": ("ALTER SUBSCRIPTION s DROP PUBLICATION p WITH (refresh)",
                                      "ALTER SUBSCRIPTION ... DROP PUBLICATION with refresh"),
    "set_failover_false": ("ALTER SUBSCRIPTION s SET (failover = false)", "ALTER SUBSCRIPTION ... SET (failover)"),
    "set_two_phase_off": ("ALTER SUBSCRIPTION s SET (two_phase = off)",
                          "ALTER SUBSCRIPTION ... SET (two_phase = false)"),
    "vacuum_full": ("VACUUM FULL t", "VACUUM"),
    "vacuum_analyze_option": ("VACUUM (ANALYZE, VERBOSE) t", "VACUUM"),
    "cluster_with_options_only": ("CLUSTER (VERBOSE)", "CLUSTER without a table"),
    "reindex_concurrently_option": ("REINDEX (CONCURRENTLY) INDEX i", "REINDEX CONCURRENTLY"),
    "reindex_concurrently_true": ("REINDEX (CONCURRENTLY true) TABLE t", "REINDEX CONCURRENTLY"),
    "reindex_database_without_name": ("REINDEX DATABASE", "REINDEX DATABASE"),
    "alter_database_with_tablespace": ("ALTER DATABASE d WITH TABLESPACE x", "ALTER DATABASE ... SET TABLESPACE"),
    "create_unique_index_concurrently": ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
                                         "CREATE INDEX CONCURRENTLY"),
}

ALLOWED = {
    "create_subscription_without_connecting": (
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false)"),
    "create_subscription_create_slot_off": (
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = off)"),
    "create_subscription_create_slot_0": (
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = 0, slot_name = NONE)"),
    "set_publication_without_refresh": "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
    "add_publication_refresh_quoted_false": "ALTER SUBSCRIPTION s ADD PUBLICATION p WITH (refresh = 'false')",
    "set_two_phase_on": "ALTER SUBSCRIPTION s SET (two_phase = true)",
    "set_slot_name": "ALTER SUBSCRIPTION s SET (slot_name = NONE)",
    "disable": "ALTER SUBSCRIPTION s DISABLE",
    "new_connection": "ALTER SUBSCRIPTION s CONNECTION 'host=y'",
    "analyze": "ANALYZE t",
    "cluster_a_table": "CLUSTER t USING i",
    "reindex_concurrently_false": "REINDEX (CONCURRENTLY false) TABLE t",
    "reindex_index": "REINDEX INDEX i",
    "alter_database_set_a_setting": "ALTER DATABASE d SET default_tablespace = x",
    "alter_table_set_tablespace": "ALTER TABLE t SET TABLESPACE x",
    "detach_partition": "ALTER TABLE p DETACH PARTITION p1",
    "detach_partition_finalize": "ALTER TABLE p DETACH PARTITION p1 FINALIZE",
    "discard_temp": "DISCARD TEMP",
    "refresh_materialized_view_concurrently": "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
    "add_enum_value": "ALTER TYPE mood ADD VALUE 'meh'",
    "drop_index": "DROP INDEX i",
}


@pytest.mark.parametrize(("sql", "name"), list(FORBIDDEN.values()), ids=list(FORBIDDEN))
def test_statements_the_server_refuses_in_a_transaction_block_are_named(sql, name):
    assert statements.transaction_forbidden(node(sql)) == name
    assert statements.non_transactional_reason(node(sql), 180000) == name


@pytest.mark.parametrize("sql", list(ALLOWED.values()), ids=list(ALLOWED))
def test_statements_that_run_in_a_transaction_block_are_not_flagged(sql):
    assert statements.transaction_forbidden(node(sql)) is None
    assert statements.non_transactional_reason(node(sql), 180000) is None


@pytest.mark.parametrize(("server_version", "refused"), [(110000, True), (120000, False), (180000, False)])
def test_adding_an_enum_value_is_refused_in_a_transaction_only_before_postgresql_12(server_version, refused):
    reason = statements.non_transactional_reason(node("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh'"),
                                                 server_version)

    assert (reason == "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)") is refused
    assert statements.non_transactional_reason(node("ALTER TYPE mood RENAME VALUE 'a' TO 'b'"), 110000) is None


def test_a_transactional_migration_holding_a_non_transactional_statement_is_invalid_at_its_line():
    step = migration("CREATE TABLE t (id int);\n\nVACUUM t;")

    with pytest.raises(InvalidMigrationFile, match=re.escape(f"{FILE}:4: VACUUM cannot run inside a transaction")):
        statements.check_transaction_mode(step, "up", 180000)


# ---- transaction control: never, in any mode or direction --------------------------------------------------

TRANSACTION_CONTROL = {
    "begin": "BEGIN", "begin_work": "BEGIN WORK", "start_transaction": "START TRANSACTION",
    "start_transaction_serializable": "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "commit": "COMMIT", "commit_and_chain": "COMMIT AND CHAIN", "end": "END", "rollback": "ROLLBACK",
    "abort": "ABORT", "prepare_transaction": "PREPARE TRANSACTION 'm1'", "commit_prepared": "COMMIT PREPARED 'm1'",
    "rollback_prepared": "ROLLBACK PREPARED 'm1'",
}
SECTIONS = {
    "up_transactional": ("up", ""),
    "up_none": ("up", NONE),
    "down_transactional": ("down", ""),
    "down_none": ("down", NONE),
}


@pytest.mark.parametrize("section", list(SECTIONS.values()), ids=list(SECTIONS))
@pytest.mark.parametrize("control", list(TRANSACTION_CONTROL.values()), ids=list(TRANSACTION_CONTROL))
def test_transaction_control_is_invalid_in_every_section_naming_line_and_statement(control, section):
    direction, header = section
    body = f"CREATE TABLE a (id int);\n-- why not\n{control};\nSELECT 1;"
    step = migration(body, "DROP TABLE a;", header) if direction == "up" else migration("SELECT 1;", body, header)
    line = 4 if direction == "up" else 6
    line += header.count("\n")

    with pytest.raises(InvalidMigrationFile, match=re.escape(f"{FILE}:{line}: transaction control ({control}) "
                                                             "is not allowed in a migration.")) as raised:
        statements.check_transaction_mode(step, direction, 180000)
    assert raised.value.exit_code == 2 and "'-- TRANSACTION: none'" in raised.value.hint


def test_transaction_control_is_refused_by_the_parse_every_reader_shares():
    # parse_raw is what the risk rules (plan, lint) and verify parse with, not only apply and rollback.
    with pytest.raises(InvalidMigrationFile, match=re.escape(f"{FILE}:12: transaction control (COMMIT)")):
        statements.parse_raw("SELECT 1;\n  /* done */ COMMIT;\n", 11, FILE)


def test_a_statement_merely_mentioning_commit_is_not_transaction_control():
    step = migration("COMMENT ON TABLE t IS 'COMMIT; ROLLBACK;';\n"
                     "DO $$ BEGIN PERFORM 1; END $$;\nSELECT 'BEGIN' AS rollback;")

    assert len(statements.check_transaction_mode(step, "up", 180000)) == 3


def test_savepoints_are_allowed_in_a_transactional_migration():
    step = migration("SAVEPOINT before_a;\nCREATE TABLE a (id int);\nROLLBACK TO SAVEPOINT before_a;\n"
                     "RELEASE SAVEPOINT before_a;\nLOCK TABLE t;\nSET LOCAL lock_timeout = '1s';")

    parsed = statements.check_transaction_mode(step, "up", 180000)

    assert [s.line for s in parsed] == [2, 3, 4, 5, 6, 7]
    assert parsed[2].sql == "ROLLBACK TO SAVEPOINT before_a"


# ---- statements that need a transaction block: not under '-- TRANSACTION: none' ----------------------------

NEEDS_A_BLOCK = {
    "savepoint": ("SAVEPOINT s", "SAVEPOINT"),
    "release": ("RELEASE s", "RELEASE SAVEPOINT"),
    "rollback_to": ("ROLLBACK TO s", "ROLLBACK TO SAVEPOINT"),
    "lock_table": ("LOCK TABLE t IN SHARE MODE", "LOCK TABLE"),
    "declare_cursor": ("DECLARE c CURSOR FOR SELECT 1", "DECLARE CURSOR (without WITH HOLD)"),
    "set_local": ("SET LOCAL lock_timeout = '1s'", "SET LOCAL"),
    "set_transaction": ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION"),
    "set_constraints": ("SET CONSTRAINTS ALL DEFERRED", "SET CONSTRAINTS"),
}


@pytest.mark.parametrize(("sql", "name"), list(NEEDS_A_BLOCK.values()), ids=list(NEEDS_A_BLOCK))
def test_a_statement_needing_a_transaction_block_is_invalid_under_transaction_none(sql, name):
    step = migration(f"CREATE INDEX CONCURRENTLY i ON t (a);\n{sql};", header=NONE)

    with pytest.raises(InvalidMigrationFile, match=re.escape(f"{FILE}:4: {name} needs a transaction block")):
        statements.check_transaction_mode(step, "up", 180000)


@pytest.mark.parametrize("sql", ["DECLARE c CURSOR WITH HOLD FOR SELECT 1", "SET lock_timeout = '1s'",
                                 "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                                 "VACUUM t", "DISCARD ALL"],
                         ids=["cursor_with_hold", "plain_set", "session_characteristics", "vacuum", "discard_all"])
def test_statements_that_work_on_their_own_are_allowed_under_transaction_none(sql):
    step = migration(f"{sql};", header=NONE)

    assert [s.node for s in statements.check_transaction_mode(step, "up", 180000)] == [node(sql)]
