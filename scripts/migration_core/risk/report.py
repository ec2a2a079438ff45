"""Risk results and how they read, for humans and as JSON: lint's result, the refusal of a risky apply, and the
per-migration entries plan and the dry runs show (issues 5, 10). Imports: stdlib, model, errors, the risk modules
(output.py renders through these functions).

Human output groups a rule found GROUP_FROM times or more into one line (`rollback_drops_data ×16 — data written
since apply is lost on rollback`); verbose output lists each finding. JSON always lists each one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Refused
from ..model import Direction, Migration
from .analysis import DEFAULT_PG_VERSION, Finding, analyze_migration, at_or_above, highest_severity
from .nodes import Severity
from .rules import RULES_BY_ID
from .run import MigrationRisk, RunRisks

GROUP_FROM = 3      # a rule found this often (same severity) is shown as one line, unless --verbose
LIST_UP_TO = 5      # a refusal names each finding up to this many, then groups them by rule
WHERE_SHOWN = 4     # places a grouped line names before "and N more"


@dataclass(frozen=True)
class LintResult:
    migrations_dir: Path
    pg_version: int
    fail_on: Severity
    migrations: list[MigrationRisk]
    live: bool = False              # --db: the pending files were judged as one run against the live tables
    verbose: bool = False

    @property
    def failing(self) -> list[Finding]:
        """Return the unsilenced findings at or above --fail-on."""
        return [f for m in self.migrations for f in m.findings
                if not f.silenced and at_or_above(f.severity, self.fail_on)]


def assess_migration(migration: Migration, pg_version: int = DEFAULT_PG_VERSION,
                     with_down: bool = True) -> MigrationRisk:
    """Analyze one migration on its own, offline, honouring its '-- TRANSACTION: none' header."""
    transactional = bool(migration.transactional)
    return MigrationRisk(migration.version, migration.name, migration.path, transactional,
                         analyze_migration(migration, pg_version, transactional, with_down))


def show_pg_version(version: int) -> str:
    major = version // 10000
    return f"{major}.{version // 100 % 100}" if major < 10 else str(major)


def lint_error(result: LintResult) -> Refused | None:
    """Return the refusal (exit 3) that findings at or above --fail-on stand for, if any."""
    failing = result.failing
    if not failing:
        return None
    return Refused(f"{len(failing)} risk finding(s) at or above {result.fail_on}.", code="risk_found",
                   hint="Make each change the safer way its hint describes, or, if it is safe here, silence it "
                        "with '-- risk: ignore RULE because REASON' directly above the statement.")


def risk_refusal(risks: list[MigrationRisk] | dict[str, MigrationRisk], direction: Direction, max_risk: Severity,
                 verbose: bool = False) -> Refused | None:
    """Return the refusal (exit 3) for apply (up) or rollback (down) when a step's risk is above max_risk.

    Its message names each finding (grouped by rule when there are many, unless verbose); its `findings`
    attribute lists each one for the JSON error object.
    """
    migrations = list(risks.values()) if isinstance(risks, dict) else risks
    over = [(m, f) for m in migrations for f in m.findings
            if f.direction == direction and not f.silenced and not at_or_above(max_risk, f.severity)]
    if not over:
        return None
    if verbose or len(over) <= LIST_UP_TO:
        where = "; ".join(f"{m.version} line {f.line}: {f.rule} ({f.severity}){size_note(f)}" for m, f in over)
    else:
        where = "; ".join(group_summary(group) for group in grouped(over))
    refusal = Refused(f"Refused: {len(over)} finding(s) above the allowed risk {max_risk}: {where}.",
                      code="risk_too_high",
                      hint="Read each finding in plan or --dry-run (--verbose lists every one) and make the change "
                           "the safer way; if the risk is understood and accepted, run again with --allow-risk (or "
                           "silence it in the file with '-- risk: ignore RULE because REASON').")
    refusal.findings = [{"version": m.version} | finding_json(f) for m, f in over]  # type: ignore[attr-defined]
    return refusal


def size_note(finding: Finding) -> str:
    return f" [{finding.size.describe()}]" if finding.size else ""


def grouped(pairs: list[tuple[MigrationRisk, Finding]]) -> list[list[tuple[MigrationRisk, Finding]]]:
    """Return the (migration, finding) pairs in groups of one rule and severity, in order of first appearance."""
    groups: dict[tuple[str, str], list[tuple[MigrationRisk, Finding]]] = {}
    for migration, finding in pairs:
        groups.setdefault((finding.rule, finding.severity), []).append((migration, finding))
    return list(groups.values())


def group_summary(group: list[tuple[MigrationRisk, Finding]]) -> str:
    """Return e.g. 'adding_index_non_concurrently ×30 (high): 20240105 line 3, ... and 26 more'."""
    first = group[0][1]
    return f"{first.rule} ×{len(group)} ({first.severity}): {places(group)}"


def places(group: list[tuple[MigrationRisk, Finding]], by_direction: bool = False) -> str:
    """Return where a group's findings are, e.g. 'v1 line 3, v2 line 2 and 4 more' (or 'v1 up:3, ...')."""
    shown = [f"{m.version} {f'{f.direction}:' if by_direction else 'line '}{f.line}" for m, f in group[:WHERE_SHOWN]]
    more = len(group) - WHERE_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


# ---- JSON ------------------------------------------------------------------------------------------------

def finding_json(finding: Finding) -> dict[str, Any]:
    """Return a finding as JSON: rule, severity, direction, line, message, hint, ignored_reason, and the table it
    is about, its live size (null when not judged live), the severity a small table lowered, and the lock held."""
    return {"rule": finding.rule, "severity": finding.severity, "direction": finding.direction,
            "line": finding.line, "message": finding.message, "hint": finding.hint,
            "ignored_reason": finding.ignored_reason,
            "table": str(finding.table) if finding.table else None,
            "size": finding.size.to_json() if finding.size else None, "lowered_from": finding.lowered_from,
            "lock": finding.lock}


def risk_json(findings: list[Finding]) -> dict[str, Any]:
    """Return the keys plan adds to each pending migration: risk (up), rollback_risk (down) and findings."""
    return {"risk": highest_severity(findings, "up"), "rollback_risk": highest_severity(findings, "down"),
            "findings": [finding_json(f) for f in findings]}


def to_json_payload(result: LintResult) -> dict[str, Any]:
    """Return the lint fields of the JSON document."""
    return {"migrations_dir": result.migrations_dir, "pg_version": result.pg_version, "fail_on": result.fail_on,
            "live": result.live, "risk": highest_severity(f for m in result.migrations for f in m.findings),
            "migrations": [{"version": m.version, "name": m.name, "path": m.path, "transactional": m.transactional}
                           | risk_json(m.findings) for m in result.migrations]}


# ---- human -----------------------------------------------------------------------------------------------

def to_human(result: LintResult) -> str:
    """Return the findings, by migration, repeated ones grouped, and a one-line summary."""
    risks = RunRisks({m.version: m for m in result.migrations}, verbose=result.verbose)
    lines = []
    for migration in result.migrations:
        if migration.findings:
            lines.append(f"{migration.version}  {risk_label(migration)}")
            lines += plan_lines(risks, migration.version)
    lines += group_lines(risks, indent="")
    risky = sum(1 for m in result.migrations if m.risk or m.rollback_risk)
    live = " against the live tables (--db)" if result.live else ""
    lines.append(f"{len(result.migrations)} migration(s) checked for PostgreSQL {show_pg_version(result.pg_version)}"
                 f"{live}: {risky} with findings, {len(result.failing)} finding(s) at or above {result.fail_on}.")
    return "\n".join(lines)


def risk_label(migration: MigrationRisk) -> str:
    """Return e.g. 'risk: high, rollback: medium' for one migration's headline."""
    return f"risk: {migration.risk or 'none'}, rollback: {migration.rollback_risk or 'none'}"


def repeated(risks: dict[str, MigrationRisk]) -> set[tuple[str, str]]:
    """Return the (rule, severity) pairs found GROUP_FROM times or more, unsilenced; none when verbose."""
    if getattr(risks, "verbose", False):
        return set()
    counts = Counter((f.rule, f.severity) for m in risks.values() for f in m.findings if not f.silenced)
    return {key for key, number in counts.items() if number >= GROUP_FROM}


def plan_lines(risks: dict[str, MigrationRisk], version: str, indent: str = "  ",
               direction: Direction | None = None) -> list[str]:
    """Return the findings shown under one migration (of one direction, if given); repeated ones are grouped."""
    hidden = repeated(risks)
    findings = [f for f in risks[version].findings if direction in (None, f.direction)
                and (f.silenced or (f.rule, f.severity) not in hidden)]
    return human_findings(findings, indent)


def group_lines(risks: dict[str, MigrationRisk], indent: str = "  ") -> list[str]:
    """Return one line per repeated rule (with where it was found and its hint), after the per-migration lines."""
    hidden = repeated(risks)
    if not hidden:
        return []
    pairs = [(m, f) for m in risks.values() for f in m.findings
             if not f.silenced and (f.rule, f.severity) in hidden]
    lines = [f"{indent}Repeated findings (--verbose lists each):"]
    for group in grouped(pairs):
        first = group[0][1]
        lines += [f"{indent}  {first.severity:<8} {first.rule} ×{len(group)} — {RULES_BY_ID[first.rule].summary}",
                  f"{indent}  {'':9}in {places(group, by_direction=True)}",
                  f"{indent}  {'':9}hint: {first.hint}"]
    return lines


def human_findings(findings: list[Finding], indent: str = "  ") -> list[str]:
    """Return each finding as what happens, then what to do instead (or why it was silenced)."""
    lines = []
    for f in findings:
        where = f"{f.direction}:{f.line}"
        if f.silenced:
            lines.append(f"{indent}ignored  {where:<8} {f.rule} (because {f.ignored_reason})")
        else:
            lines += [f"{indent}{f.severity:<8} {where:<8} {f.rule}: {f.message}",
                      f"{indent}{'':18}hint: {f.hint}"]
    return lines
