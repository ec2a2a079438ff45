"""Risk analysis of migrations (issues 5, 10): the one public entry of the risk package.

What each statement does to a live database before it runs: which lock, for how long, what breaks, what is lost,
judged in the state the run has reached (tables created earlier in the run are new and empty) and, given a
connection, against the live size of each table it touches (one catalog query per run).

Modules: rules (the registry) and checks (one function per rule) over nodes (parse-tree helpers and run state);
plpgsql (the SQL inside DO blocks); silences (`-- risk: ignore`); analysis (one section); live (the catalog read
and size judgement); run (a whole run); report (results, refusals, JSON and human text); linting (lint).
Importing the package loads neither psycopg2 nor the parser.
"""
from __future__ import annotations

from .analysis import DEFAULT_PG_VERSION, Finding, LiveTables, analyze_migration, at_or_above, highest_severity
from .linting import SEVERITIES, lint, parse_pg_version
from .live import TableStats, read_table_stats
from .nodes import Severity, TableRef
from .report import (LintResult, assess_migration, finding_json, group_lines, human_findings, lint_error,
                     plan_lines, risk_json, risk_refusal, to_human, to_json_payload)
from .rules import RULES, RULES_BY_ID, Rule
from .run import MigrationRisk, RunRisks, assess_run

__all__ = ["DEFAULT_PG_VERSION", "RULES", "RULES_BY_ID", "SEVERITIES", "Finding", "LintResult", "LiveTables",
           "MigrationRisk", "Rule", "RunRisks", "Severity", "TableRef", "TableStats", "analyze_migration",
           "assess_migration", "assess_run", "at_or_above", "finding_json", "group_lines", "highest_severity",
           "human_findings", "lint", "lint_error", "parse_pg_version", "plan_lines", "read_table_stats", "risk_json",
           "risk_refusal", "to_human", "to_json_payload"]
