"""Apply pending migrations in order, each in its own transaction with its history row. See README.md#apply."""
from migration_utils import (add_run_options, apply, base_parser, forget_failed, history_only_refusal,
                             progress_printer, record_schema, record_without_running, run, run_options)
from migration_utils import add_fleet_options, fleet, fleet_requested


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--target", metavar="VERSION", help="apply up to and including VERSION")
    add_run_options(parser)
    parser.add_argument("--allow-out-of-order", action="store_true",
                        help="also apply pending migrations older than the newest applied one")
    adopt = parser.add_mutually_exclusive_group()
    adopt.add_argument("--baseline", metavar="VERSION",
                       help="record every migration up to VERSION as applied without running it")
    adopt.add_argument("--accept-checksum", metavar="VERSION",
                       help="after review, record the edited file of drifted VERSION as the applied one")
    adopt.add_argument("--record-schema", action="store_true",
                       help="after review, make the live schema the reference of the drift check (ends 'stale')")
    adopt.add_argument("--forget-failed", metavar="VERSION",
                       help="acknowledge the failed attempt(s) of VERSION, whose file no longer exists (appends a row)")
    add_fleet_options(parser)
    return parser


def main(args):
    if fleet_requested(args):
        return fleet("apply", args)
    history_only_refusal(args, ("--record-schema", args.record_schema), ("--baseline", args.baseline),
                         ("--accept-checksum", args.accept_checksum), ("--forget-failed", args.forget_failed))
    if args.forget_failed:
        return forget_failed(args.migrations_dir, args.forget_failed, args.lock_timeout, args.dry_run)
    if args.record_schema:
        return record_schema(args.lock_timeout, args.dry_run)
    if args.baseline or args.accept_checksum:
        action = "baseline" if args.baseline else "accept_checksum"
        return record_without_running(args.migrations_dir, action, args.baseline or args.accept_checksum,
                                      args.lock_timeout, args.dry_run)
    return apply(args.migrations_dir, args.target, run_options(args), progress_printer(args))


if __name__ == "__main__":
    raise SystemExit(run("apply", build_parser(), main))
