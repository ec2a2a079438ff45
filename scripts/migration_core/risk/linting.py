"""Risk lint over the migration files of a directory, for CI and pre-commit (issues 5, 10).

Offline (the default) it needs no database: each file is judged on its own, statically, for the server version of
--pg-version. With --db it judges as the next apply would: the files not yet applied to DB_URL's database as one
run against the live tables, for that server's version (applied files keep the static judgement: they will not
run again). Pure offline: stdlib, parsing and the risk modules; --db imports the database layer on demand.
"""
from __future__ import annotations

import argparse
from contextlib import closing
from pathlib import Path

from .. import parsing
from ..model import SMALL_TABLE_ROWS, Migration
from .analysis import DEFAULT_PG_VERSION
from .live import read_table_stats
from .nodes import Severity
from .report import LintResult, assess_migration
from .run import MigrationRisk, assess_run

SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")
LINT_LOCK_TIMEOUT_MS = 5_000        # --db reads like plan: bounded, read-only
LINT_STATEMENT_TIMEOUT_MS = 60_000


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


def lint(migrations_dir: Path, pg_version: int = DEFAULT_PG_VERSION, fail_on: Severity = "high", *,
         versions: set[str] | None = None, use_db: bool = False, small_table_rows: int = SMALL_TABLE_ROWS,
         verbose: bool = False) -> LintResult:
    """Analyze the migration files of the directory (only `versions`, when given), in version order."""
    migrations = [m for m in parsing.load_migrations(migrations_dir) if versions is None or m.version in versions]
    if use_db:
        pg_version, risks = judge_live(migrations, small_table_rows)
    else:
        risks = [assess_migration(m, pg_version) for m in migrations]
    return LintResult(migrations_dir, pg_version, fail_on, risks, live=use_db, verbose=verbose)


def judge_live(migrations: list[Migration], small_table_rows: int) -> tuple[int, list[MigrationRisk]]:
    """Return the server's version and each file's findings: the pending ones judged as one run, live."""
    from .. import config, db, planning  # --db only: offline lint never loads the driver
    conn = db.connect(config.read_db_url(), read_only=True)
    with closing(conn), db.server_errors(conn, "reading the history and the live tables"):
        db.set_local_timeouts(conn, LINT_LOCK_TIMEOUT_MS, LINT_STATEMENT_TIMEOUT_MS)
        pending = {m.version for m in planning.compute_plan(migrations, db.load_history(conn)).pending}
        server_version = int(conn.server_version)
        run = assess_run([m for m in migrations if m.version in pending], server_version,
                         read_tables=lambda tables: read_table_stats(conn, tables), small_table_rows=small_table_rows)
        conn.rollback()
    return server_version, [run[m.version] if m.version in run else assess_migration(m, server_version)
                            for m in migrations]
