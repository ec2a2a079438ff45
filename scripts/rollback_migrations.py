"""Roll back the latest applied migration, or every one applied after --to VERSION. See README.md#rollback."""
from migration_utils import add_run_options, base_parser, progress_printer, rollback, run, run_options
from migration_utils import add_fleet_options, fleet, fleet_requested


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--to", metavar="VERSION", help="undo every migration applied after VERSION (it stays applied)")
    add_run_options(parser)
    add_fleet_options(parser)
    return parser


def main(args):
    if fleet_requested(args):
        return fleet("rollback", args)
    return rollback(args.migrations_dir, args.to, run_options(args), progress_printer(args))


if __name__ == "__main__":
    raise SystemExit(run("rollback", build_parser(), main))
