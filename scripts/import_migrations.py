"""Import a golang-migrate, dbmate, goose or Flyway folder as this tool's files; --adopt takes over its history.

With --adopt, the versions that tool applied in DB_URL's database are recorded as applied here, in one transaction
that moves its history table aside. See docs/switching.md.

Exit 0: imported (or adopted); 2: bad source folder, version collision or usage; 3: refused (target not empty,
another tool's dirty history, applied versions missing from the folder, plan changed); 4: connection problems.
"""
import os
from pathlib import Path

from migration_core import config
from migration_core.adoption.source import TOOLS
from migration_core.errors import UsageError
from migration_utils import base_parser, plan_id_required, run, seconds


def build_parser():
    parser = base_parser(__doc__)
    parser.add_argument("--from", dest="tool", required=True, choices=TOOLS, help="the tool the folder is written for")
    parser.add_argument("source_dir", type=Path, metavar="SOURCE_DIR", help="that tool's migrations folder")
    parser.add_argument("--dry-run", action="store_true",
                        help="show the files and the version mapping (with --adopt: what would be recorded, and a "
                             "plan id); write nothing")
    parser.add_argument("--merge", action="store_true",
                        help="import into a migrations directory that already holds files")
    parser.add_argument("--adopt", action="store_true",
                        help="record the versions the other tool applied in DB_URL as applied here, moving its "
                             "history table aside (after the import)")
    parser.add_argument("--plan-id", metavar="ID", help="with --adopt: adopt only if the dry run's plan id still holds")
    parser.add_argument("--require-plan-id", action="store_true",
                        help="with --adopt: refuse a real adoption without --plan-id (as MIGRATIONS_REQUIRE_PLAN_ID=1 "
                             "does)")
    parser.add_argument("--lock-timeout", type=seconds, default=60, metavar="SECONDS",
                        help="with --adopt: wait this long for another run's runner lock, then exit 3 (default 60)")
    return parser


def main(args):
    if args.adopt:
        if not args.dry_run and args.plan_id is None and plan_id_required(args):
            raise UsageError("--adopt requires --plan-id here (--require-plan-id or MIGRATIONS_REQUIRE_PLAN_ID=1); "
                             "nothing was changed.", code="plan_id_required",
                             hint="Preview with --adopt --dry-run, show the person what would be recorded, then run "
                                  "the command it prints once they confirm.")
        from migration_core.adoption.adopt import adopt
        return adopt(args.tool, args.source_dir, args.migrations_dir, args.lock_timeout, args.dry_run, args.plan_id,
                     invocation(args))
    if args.plan_id:
        build_parser().error("--plan-id goes with --adopt")
    from migration_core.adoption.importing import import_folder
    return import_folder(args.tool, args.source_dir, args.migrations_dir, args.dry_run, args.merge)


def invocation(args):
    """Return the arguments that repeat this adoption from any directory (for the suggested commands)."""
    words = ["--from", args.tool, os.path.abspath(args.source_dir), "--migrations-dir",
             os.path.abspath(args.migrations_dir), "--adopt"]
    if config.history_schema() != config.DEFAULT_HISTORY_SCHEMA:
        words += ["--history-schema", config.history_schema()]
    if config.history_table() != config.DEFAULT_HISTORY_TABLE:
        words += ["--history-table", config.history_table()]
    return tuple(words)


if __name__ == "__main__":
    raise SystemExit(run("import", build_parser(), main))
