"""Roll back the latest applied migration, or every one applied after --to VERSION. See README.md#rollback."""
from migration_utils import base_parser, progress_printer, rollback, run


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--to", metavar="VERSION", help="undo every migration applied after VERSION (it stays applied)")
    parser.add_argument("--dry-run", action="store_true", help="print the down SQL it would run; touch nothing")
    parser.add_argument("--plan-id", metavar="ID", help="run only if the plan still has this id (from --dry-run)")
    parser.add_argument("--lock-timeout", type=float, default=60, metavar="SECONDS",
                        help="wait this long for another run's lock, then exit 3 (default 60)")
    return parser


def main(args):
    return rollback(args.migrations_dir, to=args.to, dry_run=args.dry_run, plan_id=args.plan_id,
                    lock_timeout=args.lock_timeout, progress=progress_printer(args))


if __name__ == "__main__":
    raise SystemExit(run("rollback", build_parser(), main))
