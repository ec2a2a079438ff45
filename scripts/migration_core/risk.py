"""Risk analysis: what each statement of a migration does to a live database, before it runs (issue 5).

Parses each section once with pglast (the real PostgreSQL parser), runs the rules of risk_rules over every
statement, and applies `-- risk: ignore RULE because REASON` comments. Pure: stdlib and pglast, never psycopg2;
pglast is imported on first use, so importing this module costs nothing.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidMigrationFile
from .model import Direction, Migration
from .risk_checks import Hit
from .risk_nodes import SectionState, Severity, remember
from .risk_rules import RULES, RULES_BY_ID, Rule
from .statements import parse_raw

DEFAULT_PG_VERSION = 180000
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
DIRECTIVE = re.compile(r"^--\s*risk\s*:", re.IGNORECASE)
IGNORE = re.compile(r"^--\s*risk\s*:\s*ignore\s+(?P<rules>[a-z0-9_]+(?:\s*,\s*[a-z0-9_]+)*)"
                    r"(?:\s+because\b\s*(?P<reason>.*?))?\s*$", re.IGNORECASE)
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

    @property
    def silenced(self) -> bool:
        return self.ignored_reason is not None


@dataclass(frozen=True)
class Statement:
    node: Any           # the pglast statement node
    line: int           # file line of its first token
    last_line: int      # file line of its end (its semicolon, when it has one)


def analyze_migration(migration: Migration, pg_version: int = DEFAULT_PG_VERSION,
                      transactional: bool | None = None, with_down: bool = True) -> list[Finding]:
    """Return the findings of a migration's up and down sections (transactional=None: from the file header).

    with_down=False skips the down section: apply judges only what it runs, and parsing is its main cost.
    """
    if transactional is None:
        transactional = bool(migration.transactional)
    up = SectionState("up", pg_version, transactional)
    findings = analyze_section(migration.up_sql, migration.up_line, migration.path, up)
    if migration.down_sql is not None and with_down:
        down = SectionState("down", pg_version, transactional, up_tables=frozenset(up.created_tables),
                            up_columns=frozenset(up.added_columns))
        findings += analyze_section(migration.down_sql, migration.down_line, migration.path, down)
    return findings


def highest_severity(findings: Iterable[Finding], direction: Direction | None = None) -> Severity | None:
    """Return the highest severity among findings not silenced (of one direction, if given), or None."""
    active = [f.severity for f in findings if not f.silenced and direction in (None, f.direction)]
    if not active:
        return None
    return max(active, key=lambda severity: SEVERITY_RANK[severity])


def at_or_above(severity: Severity | None, threshold: Severity) -> bool:
    """Return whether a severity reaches a threshold (None, no finding, reaches nothing)."""
    return severity is not None and SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


def analyze_section(sql: str, first_line: int, path: Path, state: SectionState) -> list[Finding]:
    """Run every rule over every statement of one section, in order."""
    statements = parse_section(sql, first_line, path)
    silences = read_silences(sql, first_line, path, statements)
    findings = []
    for index, statement in enumerate(statements):
        for rule in RULES:
            for rule_hit in rule.check(statement.node, state):
                reason = silences.get(index, {}).get(rule.id)
                findings.append(make_finding(rule, rule_hit, statement.line, state.direction, reason))
        remember(statement.node, state)
    return findings


def make_finding(rule: Rule, rule_hit: Hit, line: int, direction: Direction, reason: str | None) -> Finding:
    return Finding(rule=rule.id, severity=rule_hit.severity or rule.severity, line=line,
                   message=rule.message.format(**rule_hit.fields), hint=rule.hint.format(**rule_hit.fields),
                   direction=direction, ignored_reason=reason)


def parse_section(sql: str, first_line: int, path: Path) -> list[Statement]:
    """Parse a section with pglast; a syntax error names the file and line (exit 2)."""
    statements = []
    for item in parse_raw(sql, first_line, path):  # shared with the runner's statement split: one parse per run
        start = LEADING.match(sql, item.stmt_location or 0).end()  # type: ignore[union-attr]
        end = (item.stmt_location or 0) + item.stmt_len if item.stmt_len else len(sql.rstrip())
        statements.append(Statement(item.stmt, first_line + sql.count("\n", 0, start),
                                    first_line + sql.count("\n", 0, end)))
    return statements


# ---- silencing: `-- risk: ignore RULE because REASON` -------------------------------------------------------

def read_silences(sql: str, first_line: int, path: Path,
                  statements: list[Statement]) -> dict[int, dict[str, str]]:
    """Return, per statement index, the rules silenced for it and why."""
    if "risk" not in sql.lower():
        return {}  # the common case: no directive, no scan
    from pglast.parser import scan
    silences: dict[int, dict[str, str]] = {}
    for token in scan(sql):
        text = sql[token.start: token.end + 1]
        if token.name != "SQL_COMMENT" or not DIRECTIVE.match(text):
            continue
        line = first_line + sql.count("\n", 0, token.start)
        rules, reason = parse_directive(text, path, line)
        for index in silenced_statements(sql, first_line, line, statements, path):
            silences.setdefault(index, {}).update(dict.fromkeys(rules, reason))
    return silences


def parse_directive(text: str, path: Path, line: int) -> tuple[list[str], str]:
    """Return the rule ids and reason of a `-- risk: ignore` comment; anything malformed is an error."""
    match = IGNORE.match(text.strip())
    if not match:
        raise InvalidMigrationFile(f"{path}:{line}: unrecognised risk comment {text.strip()!r}.",
                                   hint="Write '-- risk: ignore RULE_ID because REASON'.")
    rules = [r.strip().lower() for r in match["rules"].split(",")]
    unknown = [r for r in rules if r not in RULES_BY_ID]
    if unknown:
        raise InvalidMigrationFile(f"{path}:{line}: unknown risk rule {unknown[0]!r}.",
                                   hint="Known rules: " + ", ".join(RULES_BY_ID) + ".")
    if not (match["reason"] or "").strip():
        raise InvalidMigrationFile(f"{path}:{line}: silencing {', '.join(rules)} needs a reason.",
                                   hint=f"Write '-- risk: ignore {', '.join(rules)} because <why it is safe here>'.")
    return rules, match["reason"].strip()


def silenced_statements(sql: str, first_line: int, line: int, statements: list[Statement],
                        path: Path) -> list[int]:
    """Return the statements a directive on this line covers: the ones on its line, else those starting just below."""
    same = [i for i, s in enumerate(statements) if s.line <= line <= s.last_line]
    if same:
        return same
    below = next((i for i, s in enumerate(statements) if s.line > line), None)
    lines = sql.split("\n")
    between = lines[line - first_line + 1: statements[below].line - first_line] if below is not None else []
    if below is None or any(not text.strip() for text in between):
        raise InvalidMigrationFile(f"{path}:{line}: a '-- risk: ignore' comment must sit directly above (or on) "
                                   f"the statement it silences.",
                                   hint="Move it to the line just above the statement, with no blank line between.")
    return [i for i, s in enumerate(statements) if s.line == statements[below].line]
