"""Check migration files for risky changes: long locks, table rewrites, data loss. Offline by default (no
database); --db judges the files not yet applied as the next apply would, against the live tables of DB_URL.

See README.md#lint. Exit 0: nothing at or above --fail-on; 3: findings at or above it; 2: invalid files.
"""
import argparse
import re

from migration_core.risk import SEVERITIES, lint, parse_pg_version
from migration_utils import add_risk_options, base_parser, run

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
    parser.add_argument("--db", action="store_true",
                        help="judge the unapplied files as one run against DB_URL's live tables and server version")
    parser.add_argument("--pending", action="store_true",
                        help="lint only the files not yet applied to DB_URL's database (read-only), so an applied "
                             "history need not pass today's rules")
    add_risk_options(parser)
    return parser


def main(args):
    versions = None
    if args.pending:
        from migration_core.commands import pending_versions  # needs the database; offline lint does not
        versions = pending_versions(args.migrations_dir)
    return lint(args.migrations_dir, args.pg_version, args.fail_on, versions=versions, use_db=args.db,
                small_table_rows=args.small_table_rows, verbose=args.verbose)


if __name__ == "__main__":
    raise SystemExit(run("lint", build_parser(), main))
