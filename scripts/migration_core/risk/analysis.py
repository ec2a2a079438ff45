"""Risk analysis: what each statement of a migration does to a live database, before it runs (issues 5, 10).

Parses each section once with pglast (the real PostgreSQL parser; a DO block's PL/pgSQL too), runs the rules over
every statement in the state the run has reached, judges each hit against the live table when the caller read
one, and applies `-- risk: ignore RULE because REASON` comments. Pure: stdlib and pglast, never psycopg2; pglast
is imported on first use, so importing this module costs nothing.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from ..model import SMALL_TABLE_ROWS, Direction, Migration
from ..statements import LineCounter, parse_raw
from .checks import Hit, dropped_tables
from .live import WORK_NOUNS, TableStats, duration, is_small
from .nodes import Node, RunTables, SectionState, Severity, Statement, TableRef, node_type, remember
from .plpgsql import body_location, embedded_statements, is_plpgsql_block
from .rules import RULES, RULES_BY_ID, Rule
from .silences import read_silences

DEFAULT_PG_VERSION = 180000
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)  # what may precede a statement's first token


@dataclass(frozen=True)
class Finding:
    """One risk in one statement of a migration."""

    rule: str                   # stable id, e.g. adding_index_non_concurrently
    severity: Severity
    line: int                   # file line where the statement starts
    message: str                # what happens on a live database: which lock, how long, what breaks
    hint: str                   # a concrete safer alternative
    direction: Direction
    ignored_reason: str | None = None   # set when a `-- risk: ignore` comment silenced it
    table: TableRef | None = None       # the table it is about, when one
    size: TableStats | None = None      # that table as the live database has it, when the run was judged live
    lowered_from: Severity | None = None  # the severity before the live table's size lowered it
    lock: str | None = None             # rules whose cost grows with the table: the lock held meanwhile

    @property
    def silenced(self) -> bool:
        return self.ignored_reason is not None


@dataclass(frozen=True)
class LiveTables:
    """The live tables a run touches (one catalog read), and the size under which a table counts as small."""

    tables: dict[TableRef, TableStats] = field(default_factory=dict)
    small_table_rows: int = SMALL_TABLE_ROWS

    def names(self) -> set[str]:
        return {ref.name for ref in self.tables}


def analyze_migration(migration: Migration, pg_version: int = DEFAULT_PG_VERSION,
                      transactional: bool | None = None, with_down: bool = True) -> list[Finding]:
    """Return the findings of one migration on its own, offline (transactional=None: from the file header).

    with_down=False skips the down section: apply judges only what it runs, and parsing is its main cost.
    """
    if transactional is None:
        transactional = bool(migration.transactional)
    up = SectionState("up", pg_version, transactional)
    findings = analyze_section(migration.up_sql, migration.up_line, migration.path, up)
    if migration.down_sql is not None and with_down:
        findings += analyze_down(migration, up, pg_version, transactional)
    return findings


def analyze_down(migration: Migration, up: SectionState, pg_version: int, transactional: bool,
                 live: LiveTables | None = None, run: RunTables | None = None) -> list[Finding]:
    """Return the findings of a down section, judged as at rollback time: what its up created holds data by then.

    run: the state of a rollback run so far; None judges the section on its own (plan, lint).
    """
    if run is None:
        run = RunTables(live=live.names() if live else set())
    state = SectionState("down", pg_version, transactional, run, up_tables=frozenset(up.created_here),
                         up_columns=frozenset(up.added_columns))
    assert migration.down_sql is not None
    return analyze_section(migration.down_sql, migration.down_line, migration.path, state, live)


def highest_severity(findings: Iterable[Finding], direction: Direction | None = None) -> Severity | None:
    """Return the highest severity among findings not silenced (of one direction, if given), or None."""
    active = [f.severity for f in findings if not f.silenced and direction in (None, f.direction)]
    if not active:
        return None
    return max(active, key=lambda severity: SEVERITY_RANK[severity])


def at_or_above(severity: Severity | None, threshold: Severity) -> bool:
    """Return whether a severity reaches a threshold (None, no finding, reaches nothing)."""
    return severity is not None and SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


def analyze_section(sql: str, first_line: int, path: Path, state: SectionState,
                    live: LiveTables | None = None) -> list[Finding]:
    """Run every rule over every statement of one section, in order, in the state the run has reached."""
    statements = parse_section(sql, first_line, path)
    silences = read_silences(sql, first_line, path, statements)
    found: list[tuple[int, Finding]] = []
    for index, statement in enumerate(statements):
        for node, line in runnable(statement):
            for rule in rules_for(node_type(node)):
                for rule_hit in rule.check(node, state):
                    if rule.context != "always" and rule_hit.table and state.is_new(rule_hit.table.name):
                        continue  # created earlier in the run: no rows, no traffic, nothing to lose
                    reason = silences.get(index, {}).get(rule.id)
                    found.append((index, make_finding(rule, rule_hit, line, state.direction, reason, live)))
            remember(node, state)
    if state.direction == "down":
        found = without_moot(found, statements)
    return [finding for _, finding in found]


@lru_cache(maxsize=None)
def rules_for(kind: str) -> tuple[Rule, ...]:
    """Return the rules whose check can hit a statement of this kind (checks.reads), in registry order."""
    return tuple(rule for rule in RULES if kind in getattr(rule.check, "statement_kinds", (kind,)))


def runnable(statement: Statement) -> list[tuple[Node, int]]:
    """Return what a statement runs, with file lines: itself, or for a DO block each statement inside it."""
    if not is_plpgsql_block(statement.node):
        return [(statement.node, statement.line)]
    return embedded_statements(statement.node, statement.text, statement.body_line)


def without_moot(found: list[tuple[int, Finding]], statements: list[Statement]) -> list[tuple[int, Finding]]:
    """Drop the findings on a table that a later statement of the same down section drops: they are moot."""
    dropped_at = {table.name: index for index, statement in enumerate(statements)
                  for table in dropped_tables(statement.node)}
    return [(index, f) for index, f in found
            if not (f.table and f.table.name in dropped_at and index < dropped_at[f.table.name])]


def make_finding(rule: Rule, rule_hit: Hit, line: int, direction: Direction, reason: str | None,
                 live: LiveTables | None) -> Finding:
    """Return the finding of one hit, judged against its live table when the run was read live."""
    held = rule_hit.fields.get("held", rule.lock) if rule.context == "rows" else None
    finding = Finding(rule=rule.id, severity=rule_hit.severity or rule.severity, line=line,
                      message=rule.message.format(**rule_hit.fields), hint=rule.hint.format(**rule_hit.fields),
                      direction=direction, ignored_reason=reason, table=rule_hit.table, lock=held)
    return judged_live(finding, live) if live else finding


def judged_live(finding: Finding, live: LiveTables) -> Finding:
    """Return a static finding judged against its live table, if the catalog read found one."""
    rule = RULES_BY_ID[finding.rule]
    stats = live.tables.get(finding.table) if finding.table else None
    if stats is None or rule.context == "always":
        return finding
    return judge_live(finding, rule, stats, live.small_table_rows, finding.lock or "")


def judge_live(finding: Finding, rule: Rule, stats: TableStats, small_table_rows: int, held: str) -> Finding:
    """State the live table's size; a rows rule drops to low on a small table and says how long on a large one."""
    sized = replace(finding, size=stats, message=f"{finding.message} Live: {stats.describe()}.")
    if rule.context != "rows" or rule.work is None or stats.rows is None:
        return sized
    work = WORK_NOUNS[rule.work]
    if is_small(stats, small_table_rows):
        lowered = None if finding.severity == "low" else finding.severity
        return replace(sized, severity="low", lowered_from=lowered,
                       message=f"{sized.message} That is below the small-table threshold ({small_table_rows:,} "
                               f"rows), so the {work} takes moments and the lock is brief: low risk here.")
    threshold = f"{small_table_rows:,} rows" if small_table_rows else "0: no table counts as small"
    return replace(sized, message=f"{sized.message} That is above the small-table threshold ({threshold}): expect "
                                  f"the {work} to take {duration(stats, rule.work)} (a rough order of magnitude from "
                                  f"its size), holding {held} throughout.")


def parse_section(sql: str, first_line: int, path: Path) -> list[Statement]:
    """Parse a section with pglast; a syntax error names the file and line (exit 2)."""
    statements = []
    lines = LineCounter(sql, first_line)  # one pass over the text for the whole section: linear in its size
    for item in parse_raw(sql, first_line, path):  # shared with the runner's statement split: one parse per run
        location = item.stmt_location or 0
        start = LEADING.match(sql, location).end()  # type: ignore[union-attr]
        end = location + item.stmt_len if item.stmt_len else len(sql.rstrip())
        body = body_location(item.stmt, location) if node_type(item.stmt) == "DoStmt" else location
        body_line = lines.line_at(body)
        statements.append(Statement(item.stmt, lines.line_at(start), lines.line_at(end), sql[location:end],
                                    body_line))
    return statements
