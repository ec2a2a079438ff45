"""Show applied and pending migrations, drift, missing files and failed attempts. Strictly read-only.

See README.md#plan. Exit 0: clean or only pending; 3: drift or missing files.
"""
from migration_utils import base_parser, plan, run


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--target", metavar="VERSION", help="compute the plan id for apply --target VERSION")
    return parser


if __name__ == "__main__":
    raise SystemExit(run("plan", build_parser(), lambda a: plan(a.migrations_dir, a.target)))
