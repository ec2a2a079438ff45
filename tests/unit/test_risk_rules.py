"""Pure tests of migration_core.risk: every rule fires on its trigger and stays quiet on a near miss; server
versions, transaction mode, silencing, line numbers and syntax errors (issue 5)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCRIPTS

from migration_core import parsing
from migration_core.errors import InvalidMigrationFile
from migration_core.risk import (RULES_BY_ID, Finding, TableRef, analyze_migration, assess_migration,
                                 highest_severity, parse_pg_version, risk_refusal)

FILE = Path("20260101_000000_change.sql")


def analyze(up: str, down: str | None = None, *, pg_version: int = 180000, header: str = "") -> list[Finding]:
    text = f"{header}-- DIRECTION: up\n{up}\n" + (f"-- DIRECTION: down\n{down}\n" if down is not None else "")
    return analyze_migration(parsing.parse_migration_text(text, FILE, "change"), pg_version)


def active_rules(up: str, down: str | None = None, **options) -> list[str]:
    return [f.rule for f in analyze(up, down, **options) if not f.silenced]


NON_TRANSACTIONAL = "-- TRANSACTION: none\n"

# rule id -> (up SQL, down SQL or None, options): each must produce that rule.
TRIGGERS = {
    "adding_index_non_concurrently": ("CREATE INDEX users_email_idx ON users (email);", None, {}),
    "adding_column_with_default": ("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", None, {}),
    "setting_not_null": ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", None, {}),
    "constraint_missing_not_valid": (
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);", None, {}),
    "constraint_validated_in_same_transaction": (
        ("ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;\n"
         "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;"), None, {}),
    "changing_column_type": ("ALTER TABLE orders ALTER COLUMN total TYPE bigint;", None, {}),
    "constraint_without_using_index": ("ALTER TABLE order_lines ADD PRIMARY KEY (order_id, line_no);", None, {}),
    "cannot_run_in_transaction": ("CREATE INDEX CONCURRENTLY users_email_idx ON users (email);", None, {}),
    "adding_enum_value_in_transaction": ("ALTER TYPE mood ADD VALUE 'meh';", None, {"pg_version": 110000}),
    "renaming_column": ("ALTER TABLE users RENAME COLUMN name TO full_name;", None, {}),
    "renaming_table": ("ALTER TABLE payments RENAME TO charges;", None, {}),
    "dropping_column": ("ALTER TABLE users DROP COLUMN legacy;", None, {}),
    "dropping_table": ("DROP TABLE sessions;", None, {}),
    "rollback_drops_data": ("CREATE TABLE notes (id int, body text);", "DROP TABLE notes;", {}),
    "truncating_table": ("TRUNCATE login_attempts;", None, {}),
    "update_without_where": ("UPDATE orders SET archived = false;", None, {}),
    "delete_without_where": ("DELETE FROM audit_log;", None, {}),
    "locking_table": ("LOCK TABLE orders;", None, {}),
    "vacuum_full": ("VACUUM FULL orders;", None, {"header": NON_TRANSACTIONAL}),
    "clustering_table": ("CLUSTER orders USING orders_placed_at_idx;", None, {}),
    "dynamic_sql_not_analysed": ("DO $$BEGIN EXECUTE format('ALTER TABLE %I ADD COLUMN x int', 'users'); END $$;",
                                 None, {}),
}

# name -> (rule id, up SQL, down SQL or None, options): the safe neighbour of a trigger, which must not fire.
NEAR_MISSES = {
    "index_concurrently": ("adding_index_non_concurrently",
                           "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);", None,
                           {"header": NON_TRANSACTIONAL}),
    "index_on_table_created_here": ("adding_index_non_concurrently",
                                    "CREATE TABLE tags (name text);\nCREATE INDEX tags_name_idx ON tags (name);",
                                    None, {}),
    "stable_default_now": ("adding_column_with_default",
                           "ALTER TABLE users ADD COLUMN seen_at timestamptz DEFAULT now();", None, {}),
    "constant_default_on_11": ("adding_column_with_default",
                               "ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active';", None,
                               {"pg_version": 110000}),
    "not_null_after_validated_check": ("setting_not_null",
                                       ("ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) "
                                        "NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
                                        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"), None,
                                       {"header": NON_TRANSACTIONAL}),
    "foreign_key_not_valid": ("constraint_missing_not_valid",
                              ("ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) "
                               "REFERENCES users (id) NOT VALID;"), None, {}),
    "validate_in_a_later_migration": ("constraint_validated_in_same_transaction",
                                      "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;", None, {}),
    "widening_to_text": ("changing_column_type", "ALTER TABLE users ALTER COLUMN name TYPE text;", None, {}),
    "primary_key_using_index": ("constraint_without_using_index",
                                ("ALTER TABLE order_lines ADD CONSTRAINT order_lines_pkey PRIMARY KEY "
                                 "USING INDEX order_lines_pkey_idx;"), None, {}),
    "concurrently_without_transaction": ("cannot_run_in_transaction",
                                         "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;", None,
                                         {"header": NON_TRANSACTIONAL}),
    "enum_value_on_12": ("adding_enum_value_in_transaction", "ALTER TYPE mood ADD VALUE 'meh';", None,
                         {"pg_version": 120000}),
    "renaming_a_constraint": ("renaming_column",
                              "ALTER TABLE users RENAME CONSTRAINT users_email_key TO users_email_unique;", None, {}),
    "renaming_a_table_created_here": ("renaming_table",
                                      "CREATE TABLE draft (id int);\nALTER TABLE draft RENAME TO drafts;", None, {}),
    "dropping_a_default": ("dropping_column", "ALTER TABLE users ALTER COLUMN status DROP DEFAULT;", None, {}),
    "dropping_an_index": ("dropping_table", "DROP INDEX IF EXISTS users_email_idx;", None, {}),
    "down_dropping_only_an_index": ("rollback_drops_data", "CREATE INDEX CONCURRENTLY i ON users (email);",
                                    "DROP INDEX CONCURRENTLY i;", {"header": NON_TRANSACTIONAL}),
    "truncating_a_table_created_here": ("truncating_table",
                                        "CREATE TABLE staging (id int);\nTRUNCATE staging;", None, {}),
    "update_with_where": ("update_without_where",
                          "UPDATE orders SET archived = false WHERE id BETWEEN 1 AND 1000;", None, {}),
    "delete_with_where": ("delete_without_where",
                          "DELETE FROM audit_log WHERE created_at < now() - interval '1 year';", None, {}),
    "lock_on_a_table_created_here": ("locking_table", "CREATE TABLE t (id int);\nLOCK TABLE t;", None, {}),
    "plain_vacuum": ("vacuum_full", "VACUUM (ANALYZE) orders;", None, {"header": NON_TRANSACTIONAL}),
    "cluster_in_a_string": ("clustering_table", "SELECT 'CLUSTER orders';", None, {}),
    "static_sql_in_a_do_block": ("dynamic_sql_not_analysed",
                                 "DO $$BEGIN ALTER TABLE users ADD COLUMN x int; END $$;", None, {}),
}


def test_every_rule_has_a_trigger_and_a_near_miss():
    assert set(TRIGGERS) == set(RULES_BY_ID)
    assert {rule for rule, *_ in NEAR_MISSES.values()} == set(RULES_BY_ID)


@pytest.mark.parametrize("rule", list(TRIGGERS))
def test_each_rule_fires_on_its_trigger(rule):
    up, down, options = TRIGGERS[rule]

    assert rule in active_rules(up, down, **options)


@pytest.mark.parametrize("case", list(NEAR_MISSES))
def test_no_rule_fires_on_its_near_miss(case):
    rule, up, down, options = NEAR_MISSES[case]

    assert rule not in active_rules(up, down, **options)


def test_a_finding_says_what_happens_and_what_to_do_instead():
    [finding] = analyze("CREATE INDEX users_email_idx ON users (email);")

    assert finding == Finding(rule="adding_index_non_concurrently", severity="high", line=2,
                              message=finding.message, hint=finding.hint, direction="up", ignored_reason=None,
                              table=TableRef(None, "users"), lock="SHARE (writes wait)")
    assert "SHARE lock" in finding.message and "users" in finding.message
    assert "CONCURRENTLY" in finding.hint and "TRANSACTION: none" in finding.hint


# ---- server versions and transaction mode ---------------------------------------------------------------

@pytest.mark.parametrize(("pg_version", "flagged"), [(100000, True), (110000, False), (180000, False)])
def test_a_constant_default_is_flagged_only_before_postgresql_11(pg_version, flagged):
    rules = active_rules("ALTER TABLE users ADD COLUMN status text DEFAULT 'active';", pg_version=pg_version)

    assert ("adding_column_with_default" in rules) is flagged


@pytest.mark.parametrize("default", ["random()", "gen_random_uuid()", "clock_timestamp()", "my_function()"])
def test_a_volatile_or_unknown_default_is_flagged_on_every_version(default):
    rules = active_rules(f"ALTER TABLE users ADD COLUMN x text DEFAULT {default};")

    assert rules == ["adding_column_with_default"]


@pytest.mark.parametrize("column", ["n bigserial", "n int GENERATED ALWAYS AS IDENTITY",
                                    "n int GENERATED ALWAYS AS (a + b) STORED"])
def test_columns_filled_row_by_row_are_flagged(column):
    assert active_rules(f"ALTER TABLE t ADD COLUMN {column};") == ["adding_column_with_default"]


def test_enum_add_value_in_a_transaction_is_flagged_only_before_postgresql_12():
    sql = "ALTER TYPE mood ADD VALUE 'meh';"

    assert active_rules(sql, pg_version=110000) == ["adding_enum_value_in_transaction"]
    assert active_rules(sql, pg_version=120000) == []
    assert active_rules(sql, pg_version=110000, header=NON_TRANSACTIONAL) == []


def test_before_postgresql_12_set_not_null_scans_even_after_a_validated_check():
    sql = ("ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
           "ALTER TABLE users ALTER COLUMN email SET NOT NULL;")

    assert active_rules(sql, pg_version=120000) == []
    assert active_rules(sql, pg_version=110000) == ["setting_not_null"]


def test_a_validated_check_on_another_column_does_not_spare_set_not_null():
    sql = ("ALTER TABLE users ADD CONSTRAINT users_name_nn CHECK (name IS NOT NULL) NOT VALID;\n"
           "ALTER TABLE users VALIDATE CONSTRAINT users_name_nn;\n"
           "ALTER TABLE users ALTER COLUMN email SET NOT NULL;")

    assert active_rules(sql, header=NON_TRANSACTIONAL) == ["setting_not_null"]


def test_the_transaction_header_of_the_file_decides_whether_concurrently_fails():
    sql = "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"

    assert active_rules(sql) == ["cannot_run_in_transaction"]
    assert active_rules(sql, header=NON_TRANSACTIONAL) == []


def test_an_explicit_transactional_argument_overrides_the_header():
    migration = parsing.parse_migration_text("-- DIRECTION: up\nVACUUM orders;\n", FILE, "change")

    assert [f.rule for f in analyze_migration(migration, transactional=False)] == []
    assert [f.rule for f in analyze_migration(migration, transactional=True)] == ["cannot_run_in_transaction"]


def test_a_varchar_limit_change_is_a_low_finding_because_only_widening_is_free():
    [finding] = analyze("ALTER TABLE users ALTER COLUMN name TYPE varchar(100);")

    assert (finding.rule, finding.severity) == ("changing_column_type", "low")
    assert "varchar(100)" in finding.message


def test_a_type_change_with_using_is_high_even_to_text():
    [finding] = analyze("ALTER TABLE users ALTER COLUMN age TYPE text USING age::text;")

    assert (finding.rule, finding.severity) == ("changing_column_type", "high")


def test_a_weak_explicit_lock_is_low_and_a_strong_one_high():
    assert [f.severity for f in analyze("LOCK TABLE orders IN ROW EXCLUSIVE MODE;")] == ["low"]
    assert [f.severity for f in analyze("LOCK TABLE orders IN SHARE MODE;")] == ["high"]


# ---- tables created in the same migration, and rollbacks --------------------------------------------------

def test_nothing_is_flagged_on_a_table_created_in_the_same_migration():
    up = ("CREATE TABLE products (id bigint, sku text, price int);\n"
          "ALTER TABLE products ADD PRIMARY KEY (id);\n"
          "ALTER TABLE products ADD CONSTRAINT products_price CHECK (price > 0);\n"
          "ALTER TABLE products ADD CONSTRAINT products_fk FOREIGN KEY (id) REFERENCES items (id);\n"
          "CREATE UNIQUE INDEX products_sku_idx ON products (sku);\n"
          "ALTER TABLE products ADD COLUMN token uuid DEFAULT gen_random_uuid();\n"
          "ALTER TABLE products ALTER COLUMN sku SET NOT NULL;\n"
          "ALTER TABLE products ALTER COLUMN price TYPE bigint;\n"
          "UPDATE products SET price = 1;\n"
          "DELETE FROM products;")

    assert active_rules(up) == []


def test_rolling_back_a_created_table_or_added_column_is_a_medium_data_loss():
    findings = analyze("CREATE TABLE notes (id int);\nALTER TABLE users ADD COLUMN bio text;",
                       "DROP TABLE notes;\nALTER TABLE users DROP COLUMN bio;")

    assert [(f.rule, f.severity, f.direction, f.line) for f in findings] == [
        ("rollback_drops_data", "medium", "down", 5), ("rollback_drops_data", "medium", "down", 6)]


def test_a_down_section_dropping_a_table_the_up_did_not_create_is_a_high_drop():
    findings = analyze("ALTER TABLE users ADD COLUMN bio text;", "DROP TABLE users;")

    assert [(f.rule, f.severity, f.direction) for f in findings] == [("dropping_table", "high", "down")]


def test_the_down_section_is_checked_with_the_same_rules():
    findings = analyze("DROP INDEX users_email_idx;", "CREATE INDEX users_email_idx ON users (email);")

    assert [(f.rule, f.direction, f.line) for f in findings] == [("adding_index_non_concurrently", "down", 4)]


# ---- silencing ---------------------------------------------------------------------------------------------

def test_a_comment_directly_above_silences_that_rule_for_that_statement_only():
    findings = analyze("-- risk: ignore adding_index_non_concurrently because settings holds ten rows\n"
                       "CREATE INDEX settings_key_idx ON settings (key);\n"
                       "CREATE INDEX orders_status_idx ON orders (status);")

    assert [(f.line, f.ignored_reason) for f in findings] == [(3, "settings holds ten rows"), (4, None)]
    assert highest_severity(findings) == "high"


def test_a_comment_on_the_statement_line_silences_it():
    [finding] = analyze("UPDATE flags SET on_ = true; -- risk: ignore update_without_where because flags has 3 rows")

    assert finding.silenced and finding.ignored_reason == "flags has 3 rows"
    assert highest_severity([finding]) is None


def test_a_silence_covers_only_the_rules_it_names():
    findings = analyze("-- risk: ignore dropping_column because nothing reads it since v2.3\n"
                       "ALTER TABLE users DROP COLUMN legacy, ALTER COLUMN email SET NOT NULL;")

    assert [(f.rule, f.silenced) for f in findings] == [("setting_not_null", False), ("dropping_column", True)]


def test_one_comment_may_silence_several_rules_of_one_statement():
    findings = analyze("-- risk: ignore truncating_table, locking_table because staging is rebuilt nightly\n"
                       "LOCK TABLE staging; TRUNCATE staging;\n"
                       "TRUNCATE staging_archive;")

    assert [(f.rule, f.silenced) for f in findings] == [
        ("locking_table", True), ("truncating_table", True), ("truncating_table", False)]


@pytest.mark.parametrize(("comment", "error"), [
    ("-- risk: ignore adding_index_non_concurrently", "line 2: silencing adding_index_non_concurrently needs a "),
    ("-- risk: ignore adding_index_non_concurrently because   ", "needs a reason"),
    ("-- risk: ignore no_such_rule because it is fine", "unknown risk rule 'no_such_rule'"),
    ("-- risk: skip adding_index_non_concurrently", "unrecognised risk comment"),
], ids=["no_reason", "blank_reason", "unknown_rule", "unknown_verb"])
def test_a_malformed_silence_is_an_invalid_migration_naming_file_and_line(comment, error):
    with pytest.raises(InvalidMigrationFile, match=str(FILE).replace(".", r"\.") + ":2: ") as caught:
        analyze(f"{comment}\nCREATE INDEX i ON users (email);")

    assert error.replace("line 2: ", "") in caught.value.message


def test_a_silence_separated_from_its_statement_by_a_blank_line_is_an_error():
    with pytest.raises(InvalidMigrationFile, match=":2: a '-- risk: ignore' comment must sit directly above"):
        analyze("-- risk: ignore adding_index_non_concurrently because tiny\n\nCREATE INDEX i ON t (a);")


def test_a_silence_inside_a_string_is_not_a_silence():
    findings = analyze("SELECT '-- risk: ignore update_without_where because no';\nUPDATE t SET a = 1;")

    assert [(f.rule, f.silenced) for f in findings] == [("update_without_where", False)]


# ---- lines and syntax errors -------------------------------------------------------------------------------

def test_lines_are_file_lines_across_headers_comments_and_multi_line_statements():
    text = ("-- MIGRATION: x\n-- a header comment\n-- DIRECTION: up\n\n"
            "/* a block\n   comment */\nCREATE TABLE a (\n  id int\n);\n"
            "-- a comment\nUPDATE users\n   SET x = 1;\n"
            "-- DIRECTION: down\nSELECT 1;\n\nDROP TABLE users;\n")
    findings = analyze_migration(parsing.parse_migration_text(text, FILE, "x"))

    assert [(f.rule, f.line) for f in findings] == [("update_without_where", 11), ("dropping_table", 16)]


def test_lines_count_characters_not_bytes():
    findings = analyze("SELECT 'café, naïve, 日本';\n-- é\nUPDATE users SET x = 1;")

    assert [f.line for f in findings] == [4]


@pytest.mark.parametrize(("up", "down", "line"), [
    ("CREATE TABLE a (id int);\nCREATE TABEL b (id int);", None, 3),
    ("SELECT 1;", "SELECT 1;\n\nDROP TABEL a;", 6),
], ids=["up", "down"])
def test_a_syntax_error_is_an_invalid_migration_naming_file_and_line(up, down, line):
    with pytest.raises(InvalidMigrationFile, match=rf"{FILE.stem}\.sql:{line}: SQL syntax error"):
        analyze(up, down)


def test_sql_inside_dollar_quotes_and_comments_is_not_analysed():
    up = ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  DELETE FROM users;\nEND;\n$$;\n"
          "-- TRUNCATE users;\nCOMMENT ON TABLE users IS 'DROP TABLE users';")

    assert active_rules(up) == []


# ---- severities and versions ---------------------------------------------------------------------------------

def test_highest_severity_ignores_silenced_findings_and_is_none_without_findings():
    low = Finding("locking_table", "low", 1, "m", "h", "up")
    high = Finding("dropping_table", "high", 2, "m", "h", "up", ignored_reason="a backup exists")
    medium = Finding("renaming_table", "medium", 3, "m", "h", "down")

    assert highest_severity([]) is None
    assert highest_severity([low, high]) == "low"
    assert highest_severity([low, medium, high]) == "medium"


def test_highest_severity_of_one_direction_separates_applying_from_rolling_back():
    findings = analyze("CREATE TABLE notes (id int);\nCREATE INDEX users_email_idx ON users (email);",
                       "DROP TABLE notes;")

    assert highest_severity(findings, "up") == "high"
    assert highest_severity(findings, "down") == "medium"


@pytest.mark.parametrize(("text", "number"), [("15", 150000), ("9.6", 90600), ("15.4", 150004),
                                             ("150004", 150004), ("9", 90000)])
def test_pg_version_accepts_major_dotted_and_numeric_forms(text, number):
    assert parse_pg_version(text) == number


def test_importing_the_risk_modules_loads_neither_psycopg2_nor_the_parser():
    code = ("import migration_core.risk, sys; "
            "assert 'psycopg2' not in sys.modules and 'pglast' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True, timeout=60,
                            check=False)

    assert result.returncode == 0, result.stderr


def test_apply_is_refused_above_the_allowed_risk_and_rollback_judges_the_down_section():
    text = ("-- DIRECTION: up\nCREATE TABLE notes (id int);\nALTER TABLE users RENAME COLUMN a TO b;\n"
            "-- DIRECTION: down\nALTER TABLE users RENAME COLUMN b TO a;\nDROP TABLE notes;\n")
    risks = [assess_migration(parsing.parse_migration_text(text, FILE, "change"))]

    refusal = risk_refusal(risks, "up", "low")
    assert refusal is not None and refusal.exit_code == 3 and refusal.code == "risk_too_high"
    assert "20260101_000000_change line 3: renaming_column (medium)" in refusal.message
    assert risk_refusal(risks, "up", "medium") is None
    assert risk_refusal(risks, "down", "medium") is None
    assert risk_refusal(risks, "down", "low") is not None


def test_every_rule_marked_for_some_statement_kinds_flags_no_other_kind():
    """The engine runs a check only on the statement kinds it is marked for (checks.reads): over every statement
    of the repository's SQL and the triggers above, in every state, a check hits nothing outside its mark."""
    from migration_core.risk.analysis import runnable
    from migration_core.risk.nodes import node_type, remember
    from migration_core.risk.rules import RULES
    root = Path(__file__).resolve().parent.parent.parent
    texts = [p.read_text(encoding="utf-8") for folder in ("tests", "examples") for p in (root / folder).rglob("*.sql")]
    texts += [f"{up}\n{down or ''}" for up, down, _ in TRIGGERS.values()]
    checked, flagged = 0, set()
    for text in texts:
        try:
            statements = analysis_statements(text)
        except InvalidMigrationFile:
            continue
        for state in every_state(statements):
            for statement in statements:
                for node, _ in runnable(statement):
                    for rule in RULES:
                        kinds = getattr(rule.check, "statement_kinds", None)
                        hits = kinds is not None and list(rule.check(node, state))
                        if kinds is not None and node_type(node) not in kinds:
                            assert not hits, (rule.id, node_type(node), text[:120])
                            checked += 1
                        elif hits:
                            flagged.add(rule.id)
                    remember(node, state)
    assert checked > 10_000 and flagged >= set(TRIGGERS)  # every marked rule was seen flagging its own kind


def analysis_statements(text: str) -> list:
    from migration_core.risk.analysis import parse_section
    body = "\n".join(line for line in text.split("\n") if not line.lstrip().lower().startswith("-- direction"))
    return parse_section(body, 1, FILE)


def every_state(statements: list) -> list:
    """Each direction, transaction mode and server version; for a down, with every name the text mentions made
    by the up (as a table, and as a column of each), or none."""
    from migration_core.risk.nodes import RunTables, SectionState, walk
    names = frozenset(str(getattr(n, "sval", None) or getattr(n, "relname", "")) for s in statements
                      for n in walk(s.node))
    states = []
    for direction in ("up", "down"):
        for transactional in (True, False):
            for version in (110000, 180000):
                for made_by_up in (frozenset(), names):
                    state = SectionState(direction, version, transactional, RunTables())
                    state.up_tables = made_by_up
                    state.up_columns = frozenset((table, column) for table in made_by_up for column in made_by_up)
                    states.append(state)
    return states
