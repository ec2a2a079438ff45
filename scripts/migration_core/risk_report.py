"""Risk results and how they read, for humans and as JSON: lint's result, and the per-migration entries plan and
apply can show (issue 5). Imports: stdlib, model, errors, risk (output.py renders through these functions).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Refused
from .model import Direction, Migration
from .risk import DEFAULT_PG_VERSION, Finding, analyze_migration, at_or_above, highest_severity
from .risk_nodes import Severity


@dataclass(frozen=True)
class MigrationRisk:
    """The findings of one migration and its highest unsilenced severity."""

    version: str
    name: str
    path: Path
    transactional: bool
    findings: list[Finding]

    @property
    def risk(self) -> Severity | None:
        """Return the highest severity of applying it (up findings)."""
        return highest_severity(self.findings, "up")

    @property
    def rollback_risk(self) -> Severity | None:
        """Return the highest severity of rolling it back (down findings)."""
        return highest_severity(self.findings, "down")


@dataclass(frozen=True)
class LintResult:
    migrations_dir: Path
    pg_version: int
    fail_on: Severity
    migrations: list[MigrationRisk]

    @property
    def failing(self) -> list[Finding]:
        """Return the unsilenced findings at or above --fail-on."""
        return [f for m in self.migrations for f in m.findings
                if not f.silenced and at_or_above(f.severity, self.fail_on)]


def assess_migration(migration: Migration, pg_version: int = DEFAULT_PG_VERSION,
                     with_down: bool = True) -> MigrationRisk:
    """Analyze one migration, honouring its '-- TRANSACTION: none' header."""
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


def risk_refusal(risks: list[MigrationRisk], direction: Direction, max_risk: Severity) -> Refused | None:
    """Return the refusal (exit 3) for apply (up) or rollback (down) when a step's risk is above max_risk."""
    over = [(m, f) for m in risks for f in m.findings
            if f.direction == direction and not f.silenced and not at_or_above(max_risk, f.severity)]
    if not over:
        return None
    where = "; ".join(f"{m.version} line {f.line}: {f.rule} ({f.severity})" for m, f in over)
    return Refused(f"Refused: {len(over)} finding(s) above the allowed risk {max_risk}: {where}.",
                   code="risk_too_high",
                   hint="Read each finding in plan or --dry-run and make the change the safer way; if the risk is "
                        "understood and accepted, run again with --allow-risk (or silence it in the file with "
                        "'-- risk: ignore RULE because REASON').")


# ---- JSON ------------------------------------------------------------------------------------------------

def finding_json(finding: Finding) -> dict[str, Any]:
    """Return a finding as JSON: rule, severity, direction, line, message, hint, ignored_reason."""
    return {"rule": finding.rule, "severity": finding.severity, "direction": finding.direction,
            "line": finding.line, "message": finding.message, "hint": finding.hint,
            "ignored_reason": finding.ignored_reason}


def risk_json(findings: list[Finding]) -> dict[str, Any]:
    """Return the keys plan adds to each pending migration: risk (up), rollback_risk (down) and findings."""
    return {"risk": highest_severity(findings, "up"), "rollback_risk": highest_severity(findings, "down"),
            "findings": [finding_json(f) for f in findings]}


def to_json_payload(result: LintResult) -> dict[str, Any]:
    """Return the lint fields of the JSON document."""
    return {"migrations_dir": result.migrations_dir, "pg_version": result.pg_version, "fail_on": result.fail_on,
            "risk": highest_severity(f for m in result.migrations for f in m.findings),
            "migrations": [{"version": m.version, "name": m.name, "path": m.path, "transactional": m.transactional}
                           | risk_json(m.findings) for m in result.migrations]}


# ---- human -----------------------------------------------------------------------------------------------

def to_human(result: LintResult) -> str:
    """Return the findings, grouped by migration, and a one-line summary."""
    lines = []
    for migration in result.migrations:
        if migration.findings:
            lines.append(f"{migration.version}  {risk_label(migration)}")
            lines += human_findings(migration.findings)
    risky = sum(1 for m in result.migrations if m.risk or m.rollback_risk)
    lines.append(f"{len(result.migrations)} migration(s) checked for PostgreSQL {show_pg_version(result.pg_version)}"
                 f": {risky} with findings, {len(result.failing)} finding(s) at or above {result.fail_on}.")
    return "\n".join(lines)


def risk_label(migration: MigrationRisk) -> str:
    """Return e.g. 'risk: high, rollback: medium' for one migration's headline."""
    return f"risk: {migration.risk or 'none'}, rollback: {migration.rollback_risk or 'none'}"


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
