"""Apply pending migrations in order, each in its own transaction with its history row. See README.md#apply."""
from migration_utils import apply, base_parser, progress_printer, run


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--dry-run", action="store_true", help="print the exact SQL it would run; touch nothing")
    parser.add_argument("--target", metavar="VERSION", help="apply up to and including VERSION")
    parser.add_argument("--plan-id", metavar="ID",
                        help="run only if the plan still has this id (from plan or --dry-run)")
    parser.add_argument("--lock-timeout", type=float, default=60, metavar="SECONDS",
                        help="wait this long for another run's lock, then exit 3 (default 60)")
    return parser


def main(args):
    return apply(args.migrations_dir, target=args.target, dry_run=args.dry_run, plan_id=args.plan_id,
                 lock_timeout=args.lock_timeout, progress=progress_printer(args))


if __name__ == "__main__":
    raise SystemExit(run("apply", build_parser(), main))
