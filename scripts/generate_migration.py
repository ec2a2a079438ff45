"""Create a new timestamped migration file (UTC) with up and down sections. See README.md#generate."""
from migration_utils import base_parser, generate, run


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--name", required=True, help="description: lowercase letters, digits, underscores")
    parser.add_argument("--up", metavar="SQL", help="fill the up section (otherwise a commented placeholder)")
    parser.add_argument("--down", metavar="SQL", help="fill the down section")
    return parser


if __name__ == "__main__":
    raise SystemExit(run("generate", build_parser(), lambda a: generate(a.migrations_dir, a.name, a.up, a.down)))
