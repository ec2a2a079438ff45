"""Risk in context, without a database (issue 10): runs of corpus files judged as one run and against live table
sizes given as catalog rows (tests/data/risk/context.json); the one catalog query per run; DO blocks; moot
findings in a down section; human grouping and the refusal's list of findings."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import pytest

from migration_core import parsing
from migration_core.risk import RunRisks, TableRef, assess_run, group_lines, plan_lines, read_table_stats, risk_refusal
from migration_core.risk.live import SELECT_TABLE_STATS, duration, table_stats

CORPUS = Path(__file__).resolve().parent.parent / "data" / "risk"
CASES: dict[str, Any] = {name: case for name, case in
                         json.loads((CORPUS / "context.json").read_text(encoding="utf-8")).items()
                         if not name.startswith("_")}
MIGRATIONS = {m.path.name: m for m in parsing.load_migrations(CORPUS)}
VERSION = "20260101_000000_change"


class Reader:
    """A stand-in for the catalog query: answers from the case's tables and counts the calls."""

    def __init__(self, tables: dict[str, list[Any]]) -> None:
        self.rows = tables
        self.calls: list[list[TableRef]] = []

    def __call__(self, refs: list[TableRef]) -> dict[TableRef, Any]:
        self.calls.append(refs)
        return {ref: table_stats(ref, *self.rows[ref.name], 8192) for ref in refs if ref.name in self.rows}


def run_of(case: dict[str, Any]) -> list[Any]:
    names = sorted(MIGRATIONS) if case["run"] == "corpus" else case["run"]
    return [MIGRATIONS[name] for name in names]


def up_findings(risks: RunRisks) -> dict[str, list[str]]:
    """Return each file's up findings as rule:severity (':ignored' when silenced); files without any left out."""
    found = {}
    for migration in risks.values():
        labels = [f"{f.rule}:{f.severity}" + (":ignored" if f.silenced else "")
                  for f in migration.findings if f.direction == "up"]
        if labels:
            found[migration.path.name] = labels
    return found


def migration(up: str, down: str | None = None, version: str = "20260101_000000") -> Any:
    text = f"-- DIRECTION: up\n{up}\n" + (f"-- DIRECTION: down\n{down}\n" if down is not None else "")
    return parsing.parse_migration_text(text, Path(f"{version}_change.sql"), "change")


# ---- the context corpus -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_each_context_case_yields_its_expected_severities(name):
    case = CASES[name]
    reader = Reader(case["tables"])

    risks = assess_run(run_of(case), 180000, read_tables=reader)

    assert up_findings(risks) == case["expected"]
    assert len(reader.calls) == case.get("lookups", len(reader.calls)) <= 1
    sized = [f for m in risks.values() for f in m.findings if f.size is not None]
    for text in case.get("message_contains", []):
        assert sized and all(text in f.message for f in sized), (text, [f.message for f in sized])


def test_the_context_cases_name_only_corpus_files():
    for case in CASES.values():
        assert case["run"] == "corpus" or set(case["run"]) <= set(MIGRATIONS)
        assert set(case["expected"]) <= set(MIGRATIONS)


def test_a_fresh_install_of_the_corpus_asks_the_catalog_once_for_every_table_it_does_not_create():
    reader = Reader({})

    assess_run(run_of(CASES["fresh_install"]), 180000, read_tables=reader)

    (asked,) = reader.calls
    assert {ref.name for ref in asked} == {"sessions", "login_attempts", "audit_log", "order_lines", "invoices",
                                           "settings"}


def test_a_small_table_finding_says_what_it_was_before_and_why_it_is_low():
    reader = Reader(CASES["small_orders"]["tables"])

    risks = assess_run([MIGRATIONS["20240105_090000_index_orders_placed_at.sql"]], 180000, read_tables=reader)

    [finding] = next(iter(risks.values())).findings[:1]
    assert (finding.severity, finding.lowered_from, str(finding.table)) == ("low", "high", "orders")
    assert finding.size is not None and finding.size.rows == 800
    assert "10,000 rows" in finding.message


def test_small_table_rows_zero_keeps_every_live_table_large():
    reader = Reader(CASES["small_orders"]["tables"])

    risks = assess_run([MIGRATIONS["20240105_090000_index_orders_placed_at.sql"]], 180000, read_tables=reader,
                       small_table_rows=0)

    [finding] = next(iter(risks.values())).findings[:1]
    assert (finding.severity, finding.lowered_from) == ("high", None)
    assert "orders: ~800 rows" in finding.message


def test_without_a_reader_the_judgement_is_static_and_states_no_size():
    risks = assess_run([MIGRATIONS["20240105_090000_index_orders_placed_at.sql"]], 180000)

    [finding] = next(iter(risks.values())).findings[:1]
    assert (finding.severity, finding.size, risks.live, risks.lookups) == ("high", None, False, 0)


@pytest.mark.parametrize(("size_bytes", "work", "label"), [
    (10 * 2**20, "build", "under a second"), (2 * 2**30, "build", "tens of seconds"),
    (20 * 2**30, "rewrite", "tens of minutes"), (200 * 2**30, "scan", "tens of minutes")])
def test_durations_are_orders_of_magnitude_from_the_size(size_bytes, work, label):
    stats = table_stats(TableRef(None, "t"), "r", 1e6, size_bytes // 8192, size_bytes, size_bytes, 0, 0, 0, True,
                        8192)

    assert duration(stats, work) == label


# ---- one catalog query per run ----------------------------------------------------------------------------

class CountingConnection:
    """A connection whose cursor records each statement and returns no rows."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def cursor(self) -> Self:
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: Any = None) -> None:
        self.statements.append((sql, params))

    def fetchall(self) -> list[tuple]:
        return []


def test_a_run_touching_many_existing_tables_reads_the_catalog_in_one_query():
    files = [migration(f"CREATE INDEX i{n} ON t{n} (a);\nALTER TABLE t{n} ALTER COLUMN a SET NOT NULL;",
                       version=f"2026010{n}_000000") for n in range(1, 8)]
    conn = CountingConnection()

    risks = assess_run(files, 180000, read_tables=lambda tables: read_table_stats(conn, tables))

    [(sql, (schemas, names))] = conn.statements
    assert sql == SELECT_TABLE_STATS
    assert sorted(names) == [f"t{n}" for n in range(1, 8)] and schemas == [None] * 7
    assert risks.lookups == 1


def test_a_run_that_only_touches_tables_it_creates_reads_nothing():
    conn = CountingConnection()

    assess_run([migration("CREATE TABLE a (id int);"), migration("CREATE INDEX ON a (id);", version="20260102_000000")],
               180000, read_tables=lambda tables: read_table_stats(conn, tables))

    assert conn.statements == []


# ---- run order, drops and DO blocks -----------------------------------------------------------------------

def test_a_table_created_by_an_earlier_migration_of_the_run_is_new():
    first = migration("CREATE TABLE users (id int, email text);", "DROP TABLE users;")
    second = migration("CREATE INDEX idx_users_email ON users (email);\nALTER TABLE users ALTER email SET NOT NULL;",
                       "DROP INDEX idx_users_email;", version="20260102_000000")

    risks = assess_run([first, second], 180000)

    assert up_findings(risks) == {}
    assert [f.rule for f in risks[second.version].findings] == []


def test_a_table_dropped_and_created_again_in_the_run_is_new_even_when_it_exists_live():
    rebuild = migration("DROP TABLE orders;\nCREATE TABLE orders (id int);\nCREATE INDEX ON orders (id);")
    reader = Reader(CASES["large_orders"]["tables"])

    risks = assess_run([rebuild], 180000, read_tables=reader)

    assert up_findings(risks) == {"20260101_000000_change.sql": ["dropping_table:high"]}


def test_a_down_section_that_drops_a_table_makes_earlier_findings_on_it_moot():
    up = "CREATE TABLE notes (id int, body text);"
    down = ("UPDATE notes SET body = NULL;\nCREATE INDEX notes_body_idx ON notes (body);\n"
            "ALTER TABLE orders ALTER COLUMN total TYPE bigint;\nDROP TABLE notes;")

    findings = assess_run([migration(up, down)], 180000)[VERSION].findings

    assert [(f.rule, f.line) for f in findings] == [("changing_column_type", 6), ("rollback_drops_data", 7)]


def test_a_rollback_run_judges_only_down_sections_and_carries_its_drops_forward():
    first = migration("CREATE TABLE a (id int);", "DROP TABLE a;")
    second = migration("ALTER TABLE a ADD COLUMN b int;", "ALTER TABLE a DROP COLUMN b;", "20260102_000000")

    risks = assess_run([second, first], 180000, direction="down")

    assert {v: [(f.rule, f.direction) for f in m.findings] for v, m in risks.items()} == {
        second.version: [("rollback_drops_data", "down")], first.version: [("rollback_drops_data", "down")]}


def test_statements_inside_a_do_block_are_judged_at_their_file_lines():
    up = ("DO $body$\nDECLARE n int;\nBEGIN\n  ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n"
          "  UPDATE orders SET total = 0;\n  EXECUTE 'VACUUM orders';\nEND\n$body$;")

    findings = assess_run([migration(up)], 180000)[VERSION].findings

    assert [(f.rule, f.severity, f.line) for f in findings] == [
        ("changing_column_type", "high", 5), ("update_without_where", "high", 6),
        ("dynamic_sql_not_analysed", "low", 7)]


def test_a_do_block_in_another_language_and_a_function_body_are_not_analysed():
    up = ("DO LANGUAGE plperl $$ spi_exec_query('DELETE FROM users') $$;\n"
          "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN DELETE FROM users; END$$;")

    assert assess_run([migration(up)], 180000)[VERSION].findings == []


def test_a_do_block_creating_a_table_makes_it_new_for_later_statements():
    up = "DO $$BEGIN CREATE TABLE t (id int); END$$;\nCREATE INDEX ON t (id);"

    assert assess_run([migration(up)], 180000)[VERSION].findings == []


def test_a_silence_above_a_do_block_covers_the_statements_inside_it():
    up = ("-- risk: ignore dynamic_sql_not_analysed because the statement is reviewed in the PR\n"
          "DO $$BEGIN EXECUTE 'SELECT 1'; END$$;")

    [finding] = assess_run([migration(up)], 180000)[VERSION].findings

    assert finding.ignored_reason == "the statement is reviewed in the PR"


# ---- how findings read ------------------------------------------------------------------------------------

def many_drops(count: int) -> RunRisks:
    files = [migration(f"CREATE TABLE t{n} (id int);", f"DROP TABLE t{n};", version=f"202601{n:02d}_000000")
             for n in range(1, count + 1)]
    return assess_run(files, 180000)


def test_a_rule_found_many_times_is_one_grouped_line_and_verbose_lists_each():
    risks = many_drops(16)

    grouped = group_lines(risks)
    under_each = [line for version in risks for line in plan_lines(risks, version)]
    risks.verbose = True
    verbose = [line for version in risks for line in plan_lines(risks, version)]

    assert any("rollback_drops_data ×16 — data written since apply is lost on rollback" in line for line in grouped)
    assert any("and 12 more" in line for line in grouped)
    assert under_each == []
    assert sum("rollback_drops_data:" in line for line in verbose) == 16 and group_lines(risks) == []


def test_a_refusal_lists_each_finding_for_json_and_groups_its_message_when_there_are_many():
    files = [migration(f"CREATE INDEX i{n} ON t{n} (a);", version=f"202601{n:02d}_000000") for n in range(1, 9)]
    reader = Reader({f"t{n}": ["r", 300000, 3000, 30_000_000, 24_576_000, 600, 300000, 0, True]
                     for n in range(1, 9)})
    risks = assess_run(files, 180000, read_tables=reader)

    refusal = risk_refusal(risks, "up", "medium")
    verbose = risk_refusal(risks, "up", "medium", verbose=True)

    assert refusal is not None and verbose is not None
    assert "adding_index_non_concurrently ×8 (high): 20260101_000000_change line 2" in refusal.message
    assert "and 4 more" in refusal.message and verbose.message.count("adding_index_non_concurrently") == 8
    first = refusal.findings[0]
    assert {k: first[k] for k in ("version", "rule", "severity", "line", "table")} == {
        "version": VERSION, "rule": "adding_index_non_concurrently", "severity": "high", "line": 2,
        "table": "t1"}
    assert first["size"]["rows"] == 300000 and "t1: ~300k rows" in first["size"]["text"]
    assert len(refusal.findings) == 8
