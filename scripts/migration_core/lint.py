"""Offline risk lint over every migration file of a directory, for CI and pre-commit (issue 5).

Needs no database: the server version comes from --pg-version. Pure: stdlib, parsing, risk (never psycopg2).
Results and their output live in risk_report.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import parsing
from .risk import DEFAULT_PG_VERSION
from .risk_nodes import Severity
from .risk_report import LintResult, assess_migration

SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")


def parse_pg_version(text: str) -> int:
    """Turn 15, 9.6, 15.4 or 150004 into PostgreSQL's version number (server_version_num)."""
    try:
        if "." in text:
            major, minor = (int(part) for part in text.split(".", 1))
            return major * 10000 + minor * (100 if major < 10 else 1)
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid PostgreSQL version {text!r} (e.g. 15, 9.6 or 150004)") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"invalid PostgreSQL version {text!r} (e.g. 15, 9.6 or 150004)")
    return number * 10000 if number < 100 else number


def lint(migrations_dir: Path, pg_version: int = DEFAULT_PG_VERSION, fail_on: Severity = "high") -> LintResult:
    """Analyze every migration file of the directory, in version order."""
    migrations = parsing.load_migrations(migrations_dir)
    return LintResult(migrations_dir, pg_version, fail_on, [assess_migration(m, pg_version) for m in migrations])
