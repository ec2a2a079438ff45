"""Shared core of the migration scripts: the design's interface, plus the one entry point every script uses.

Scripts call base_parser() and run(); run() is the only place that catches errors, prints, and picks exit codes.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from migration_core import config, output, parsing, terminal
from migration_core.errors import MigrationError, UnexpectedError, UsageError
from migration_core.model import SMALL_TABLE_ROWS, HistoryRow, Migration, RunOptions, RunSettings

compute_checksum = parsing.compute_checksum
list_migration_files = parsing.list_migration_files
# The commands load on first use (PEP 562): generate never touches a database, so its script must not pay for, or
# need, the driver that commands and running import.
LAZY = {"plan": "commands", "apply": "running", "rollback": "running", "generate": "generating",
        "record_schema": "commands", "schema_diff": "commands", "record_without_running": "commands",
        "forget_failed": "commands"}


def __getattr__(name: str) -> Any:
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"migration_core.{LAZY[name]}"), name)


def parse_migration_file(path: Path) -> Migration:
    """Parse one migration file (the design's interface)."""
    return parsing.parse_migration_file(Path(path))


def get_db_connection() -> Any:
    """Open a connection from DB_URL (environment or .env)."""
    from migration_core import db
    return db.connect(config.read_db_url())


def ensure_schema_table(conn: Any) -> None:
    """Create schema_migrations if it does not exist."""
    from migration_core import db
    db.ensure_schema_table(conn)


def get_applied_up_migrations(conn: Any) -> list[HistoryRow]:
    """Return the up success row of every applied migration, in application order."""
    from migration_core import db, planning
    return planning.compute_plan([], db.load_history(conn)).applied


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError, so --json still yields one JSON document on exit 2, and answers --help
    with one JSON document too under --json. Abbreviations are off: `--js` must not silently mean --json."""

    command = ""        # set by run(): the JSON document's "command"
    as_json = False     # set by run(): --json was given (it may come after --help, so argv decides, not parsing)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}.", hint=f"Run {self.prog} --help for usage.")

    def print_help(self, file: Any = None) -> None:
        if not self.as_json:
            super().print_help(file)
            return
        document = {"schema_version": output.SCHEMA_VERSION, "command": self.command, "ok": True,
                    "help": self.format_help()}
        write(json.dumps(document, indent=2), sys.stdout)


def base_parser(doc: str | None) -> ArgumentParser:
    """Return a parser with the options every script shares."""
    parser = ArgumentParser(description=(doc or "").strip().split("\n")[0])
    parser.add_argument("--migrations-dir", default="migrations", type=Path, metavar="DIR",
                        help="directory of migration files (default: migrations)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    parser.add_argument("--no-color", action="store_true",
                        help="no colour or symbols even on a terminal (as NO_COLOR=1 does)")
    parser.add_argument("--history-schema", metavar="NAME",
                        help="schema of the history and snapshot tables (default: $MIGRATIONS_SCHEMA or public)")
    parser.add_argument("--history-table", metavar="NAME",
                        help="name of the history table; the snapshot table is NAME_snapshots "
                             "(default: $MIGRATIONS_TABLE or schema_migrations)")
    return parser


def add_run_options(parser: ArgumentParser) -> None:
    """Add the options apply and rollback share: preview, confirmation, locks and timeouts."""
    parser.add_argument("--dry-run", action="store_true", help="print the exact SQL it would run; touch nothing")
    parser.add_argument("--plan-id", metavar="ID",
                        help="run only if the plan still has this id (from plan or --dry-run)")
    parser.add_argument("--require-plan-id", action="store_true",
                        help="refuse a real run without --plan-id (as MIGRATIONS_REQUIRE_PLAN_ID=1 does)")
    parser.add_argument("--lock-timeout", type=seconds, default=60, metavar="SECONDS",
                        help="runner lock: wait this long for another run to finish, then exit 3 (default 60)")
    parser.add_argument("--lock-timeout-ms", type=milliseconds, default=5000, metavar="MS",
                        help="table locks: each migration waits at most this long for a lock (default 5000)")
    parser.add_argument("--statement-timeout-ms", type=milliseconds, default=0, metavar="MS",
                        help="each statement may run at most this long (default 0: no limit)")
    parser.add_argument("--lock-retries", type=retries, default=3, metavar="N",
                        help="retry a migration that timed out waiting for a lock N times (default 3)")
    parser.add_argument("--max-risk", choices=("low", "medium", "high"), default="medium",
                        help="refuse risk findings above this severity (default medium; see plan)")
    parser.add_argument("--allow-schema-drift", action="store_true",
                        help="run even though the live schema changed outside the migrations")
    parser.add_argument("--allow-risk", action="store_true",
                        help="allow high-risk findings too (the user's explicit choice; same as --max-risk high)")
    add_risk_options(parser)


def add_risk_options(parser: ArgumentParser) -> None:
    """Add the options of the risk judgement against the live database and of its output (plan, apply, ...)."""
    parser.add_argument("--small-table-rows", type=table_rows, default=SMALL_TABLE_ROWS, metavar="N",
                        help="a live table with fewer rows is small: lock and rewrite findings on it are low "
                             f"(default {SMALL_TABLE_ROWS}; 0: no table counts as small)")
    parser.add_argument("--verbose", action="store_true",
                        help="list every risk finding (without it, a rule found 3+ times is one line)")


def run_options(args: argparse.Namespace) -> RunOptions:
    settings = RunSettings(lock_timeout_ms=args.lock_timeout_ms, statement_timeout_ms=args.statement_timeout_ms,
                           lock_retries=args.lock_retries)
    return RunOptions(dry_run=args.dry_run, plan_id=args.plan_id, lock_timeout_s=args.lock_timeout,
                      settings=settings, allow_out_of_order=getattr(args, "allow_out_of_order", False),
                      max_risk="high" if args.allow_risk else args.max_risk,
                      allow_schema_drift=args.allow_schema_drift, small_table_rows=args.small_table_rows,
                      verbose=args.verbose, require_plan_id=plan_id_required(args))


def plan_id_required(args: argparse.Namespace) -> bool:
    """Return whether a real run needs --plan-id: --require-plan-id, or MIGRATIONS_REQUIRE_PLAN_ID=1 (true, yes)."""
    value = os.environ.get(config.REQUIRE_PLAN_ID_ENV, "").strip().lower()
    if value not in ("", "0", "false", "no", "1", "true", "yes"):
        raise UsageError(f"{config.REQUIRE_PLAN_ID_ENV}={value!r} is neither 1 nor 0.",
                         hint=f"Set {config.REQUIRE_PLAN_ID_ENV}=1 to require --plan-id, or unset it.")
    return bool(getattr(args, "require_plan_id", False)) or value in ("1", "true", "yes")


def history_only_refusal(args: argparse.Namespace, *actions: tuple[str, Any]) -> None:
    """Refuse apply's history-only actions (baseline, ...) under --require-plan-id but as dry runs: they have no
    plan id, so a harness that requires one would otherwise let them through unconfirmed."""
    chosen = [flag for flag, value in actions if value]
    if chosen and not args.dry_run and plan_id_required(args):
        raise UsageError(f"{chosen[0]} has no plan id, so it is refused under --require-plan-id "
                         f"({config.REQUIRE_PLAN_ID_ENV}=1); nothing was recorded.", code="plan_id_required",
                         hint=f"Preview it with {chosen[0]} ... --dry-run; the person runs it without the requirement.")


# Numeric flags are range-checked while parsing: a bad value is a usage error (exit 2) before anything connects,
# never a server error blamed on a migration, and never an endless wait.
MAX_LOCK_WAIT_S = 86_400            # a day: longer is a typo, not a plan
MAX_PG_MS = 2_147_483_647           # the largest lock_timeout / statement_timeout PostgreSQL accepts
MAX_LOCK_RETRIES = 100
MAX_TABLE_ROWS = 10**12             # --small-table-rows: more rows than any table holds


def bounded_int(low: int, high: int, unit: str) -> Callable[[str], int]:
    """Return an argparse type: a whole number from low to high, else a one-line usage error."""
    def parse(text: str) -> int:
        try:
            value: int | None = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number of {unit} from {low} to {high}, got {text!r}")
        return value
    return parse


def seconds(text: str) -> float:
    """Parse --lock-timeout: a finite number of seconds from 0 to MAX_LOCK_WAIT_S (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_LOCK_WAIT_S:  # false for nan too
        raise argparse.ArgumentTypeError(f"expected a number of seconds from 0 to {MAX_LOCK_WAIT_S}, got {text!r}")
    return value


milliseconds = bounded_int(0, MAX_PG_MS, "milliseconds")
retries = bounded_int(0, MAX_LOCK_RETRIES, "retries")
table_rows = bounded_int(0, MAX_TABLE_ROWS, "rows")


def run(command: str, parser: ArgumentParser, action: Callable[[argparse.Namespace], Any]) -> int:
    """Parse arguments, run the action, print its result or error, and return the exit code."""
    # One process per command, whose objects (files, statement trees, rows, findings) form no cycles: the cycle
    # collector would only rescan them, more of them each time (lint of a 20,000-statement file: 3.1 s with it,
    # 1.3 s without, the same memory).
    gc.disable()
    as_json = "--json" in sys.argv[1:]
    parser.command, parser.as_json = command, as_json
    # DB_URL's password, and those of URLs given as arguments (--against, --scratch-url, also as --flag=URL)
    secrets = [form for url in [config.find_db_url(), *(a for a in sys.argv if "://" in a)]
               for form in config.password_forms(url)]
    result, error = None, None
    try:
        args = parser.parse_args()
        config.set_history_schema(getattr(args, "history_schema", None))
        config.set_history_table(getattr(args, "history_table", None))
        result = action(args)
        terminal.finish()
        error = output.run_error(result)
    except MigrationError as err:
        error = err
    except KeyboardInterrupt:
        error = UnexpectedError("Interrupted; the open migration's transaction was rolled back.",
                                code="interrupted", hint="Run plan_migrations.py to check the state.")
    except Exception as err:  # the one catch-all: one line, traceback only with --debug
        if "--debug" in sys.argv[1:]:
            import traceback
            write(output.redact(traceback.format_exc().rstrip(), secrets), sys.stderr)
        error = UnexpectedError(f"Unexpected error: {type(err).__name__}: {err}",
                                hint="Run again with --debug for the traceback, and report it.")
    terminal.finish()  # the live progress line is erased before the final output
    emit(command, result, error, as_json, secrets)
    return error.exit_code if error else 0


def emit(command: str, result: Any, error: MigrationError | None, as_json: bool, secrets: list[str]) -> None:
    """Print the result (stdout) and error (stderr for humans, inside the JSON document otherwise)."""
    if as_json:
        write(output.to_json(command, result, error, secrets), sys.stdout)
        return
    if result is not None:
        text = output.redact(output.to_human(command, result), secrets)
        write(terminal.highlight(text, terminal.Style(sys.stdout, "--no-color" in sys.argv[1:])), sys.stdout)
    if error is not None:
        line = output.redact(output.error_line(error), secrets)
        style = terminal.Style(sys.stderr, "--no-color" in sys.argv[1:])
        write(style.paint("error:", "fail") + line.removeprefix("error:") if line.startswith("error:") else line,
              sys.stderr)


def write(text: str, stream: Any) -> None:
    """Print text; when the reader has gone (`plan_migrations.py | head -1`), stop quietly, keeping the exit code."""
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        # The Python docs' recipe: point the descriptor at devnull, so the final flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def progress_printer(args: argparse.Namespace) -> Callable[[Any], None]:
    """Return where progress goes: nowhere with --json; for humans, each finished migration on stdout as it ends,
    notes on stderr, and on a terminal a live counter with the elapsed time (terminal.RunProgress)."""
    if args.json:
        return lambda _line: None
    return terminal.run_progress(sys.stdout, sys.stderr, getattr(args, "no_color", False), write)


def add_fleet_options(parser: ArgumentParser, run: bool = True) -> None:
    """Add --targets, --targets-query, --shard, --parallel (and --canary, --skip-refused for apply and rollback)."""
    from migration_core.fleet import options
    options.add_fleet_options(parser, run)


def fleet_requested(args: argparse.Namespace) -> bool:
    """Say whether --targets or --targets-query was given (the fleet's other options alone: a usage error)."""
    from migration_core.fleet import options
    return options.fleet_requested(args)


def fleet(command: str, args: argparse.Namespace) -> Any:
    """Run plan, apply or rollback on every target (see docs/fleet.md); each target runs this script itself."""
    from migration_core.fleet import plan as fleet_plan, rollout
    live = sys.stderr if not args.json and sys.stderr.isatty() else None  # the progress line: for a person only
    if command == "plan":
        return fleet_plan.fleet_plan(args, sys.argv[1:], live)
    if not args.dry_run and args.plan_id is None and plan_id_required(args):  # one confirmed fleet id, too
        from migration_core import running
        raise running.plan_id_required(command, tuple(sys.argv[1:]))
    return rollout.fleet_run(command, args, sys.argv[1:], live)
