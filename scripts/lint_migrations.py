"""Check migration files for risky changes, offline (no database): long locks, table rewrites, data loss.

See README.md#lint. Exit 0: nothing at or above --fail-on; 3: findings at or above it; 2: invalid files.
"""
import argparse
import re

from migration_core.lint import SEVERITIES, lint, parse_pg_version
from migration_utils import base_parser, run

OLDEST, NEWEST = 90000, 999999  # PostgreSQL 9.0 to 99: anything else is a typo, caught as a usage error


def pg_version(text):
    """Parse --pg-version, refusing signs and numbers outside the PostgreSQL versions (e.g. 10.-5 or 99999999)."""
    number = parse_pg_version(text)
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text.strip()) or not OLDEST <= number <= NEWEST:
        raise argparse.ArgumentTypeError(f"expected a PostgreSQL version from 9.0 to 99 (e.g. 15, 9.6 or 150004), "
                                         f"got {text!r}")
    return number


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--pg-version", type=pg_version, default=180000, metavar="N",
                        help="PostgreSQL version the rules assume: 15, 9.6 or 150004 (default 18)")
    parser.add_argument("--fail-on", choices=SEVERITIES, default="high", metavar="SEVERITY",
                        help="exit 3 when a finding not silenced is at or above: low, medium or high (default high)")
    return parser


if __name__ == "__main__":
    raise SystemExit(run("lint", build_parser(), lambda a: lint(a.migrations_dir, a.pg_version, a.fail_on)))
