"""Prove each migration's down undoes its up exactly, on a scratch database; the target is never written.

See README.md#verify. Exit 0: every migration verified; 3: any problem (a down that leaves a difference or
fails, an up that cannot run again, an irreversible migration unless --allow-irreversible).
"""
from migration_core.verify import verify
from migration_utils import base_parser, progress_printer, run


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--pending", action="store_true",
                        help="verify only the migrations not yet applied to the DB_URL database")
    parser.add_argument("--from", dest="from_version", metavar="VERSION", help="verify from VERSION on (inclusive)")
    parser.add_argument("--to", dest="to_version", metavar="VERSION", help="verify up to VERSION (inclusive)")
    parser.add_argument("--scratch-url", metavar="URL",
                        help="server (or empty database) to verify on, instead of one created on the DB_URL server")
    parser.add_argument("--allow-irreversible", action="store_true",
                        help="report irreversible migrations without failing")
    return parser


def main(args):
    return verify(args.migrations_dir, pending=args.pending, from_version=args.from_version,
                  to_version=args.to_version, scratch_url=args.scratch_url,
                  allow_irreversible=args.allow_irreversible, progress=progress_printer(args))


if __name__ == "__main__":
    raise SystemExit(run("verify", build_parser(), main))
