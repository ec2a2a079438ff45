"""Show applied and pending migrations, drift (files and live schema), missing files, failed attempts and risks.

Strictly read-only. See README.md#plan. Exit 0: clean or only pending; 3: drift or missing files.
"""
from migration_utils import add_risk_options, base_parser, bounded_int, plan, run, schema_diff
from migration_utils import add_fleet_options, fleet, fleet_requested


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--target", metavar="VERSION", help="compute the plan id for apply --target VERSION")
    parser.add_argument("--no-schema-check", action="store_true",
                        help="skip comparing the live schema with the last recorded snapshot")
    parser.add_argument("--schema-diff", action="store_true",
                        help="list every difference between the live schema and the last snapshot (or --against)")
    parser.add_argument("--against", metavar="URL", help="with --schema-diff: compare with this database instead")
    parser.add_argument("--lock-timeout-ms", type=bounded_int(1, 2_147_483_647, "milliseconds"), default=5000, metavar="MS",
                        help="a catalog read waits at most this long behind a table lock, then the live-schema "
                             "check is skipped, naming the blocker (default 5000)")
    add_risk_options(parser)
    add_fleet_options(parser, run=False)
    return parser


def main(args):
    if fleet_requested(args):
        return fleet("plan", args)
    if args.schema_diff or args.against:
        return schema_diff(args.against)
    return plan(args.migrations_dir, args.target, check_live_schema=not args.no_schema_check,
                lock_timeout_ms=args.lock_timeout_ms, small_table_rows=args.small_table_rows, verbose=args.verbose)


if __name__ == "__main__":
    raise SystemExit(run("plan", build_parser(), main))
