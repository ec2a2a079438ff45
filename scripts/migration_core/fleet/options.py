"""The fleet's command-line options, and the words of a fleet command passed on to each target's run."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError

MAX_PARALLEL = 256
# Options of the fleet itself: never passed on to a target's own run (which gets --json, and --dry-run or its own
# --plan-id, from the fleet).
FLEET_VALUES = {"--targets", "--targets-query", "--shard", "--parallel", "--canary", "--plan-id"}
FLEET_SWITCHES = {"--skip-refused", "--json", "--dry-run"}
PLAN_ONLY_SWITCHES = {"--no-schema-check"}  # plan's options that apply does not take


def count(low: int, high: int, what: str) -> Any:
    """Return an argparse type: a whole number from low to high."""
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number of {what} from {low} to {high}, got {text!r}")
        return int(text)
    return parse


def add_fleet_options(parser: argparse.ArgumentParser, run: bool) -> None:
    """Add --targets, --targets-query, --shard, --parallel; and for apply and rollback --canary, --skip-refused."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--targets", type=Path, metavar="FILE",
                       help="run on every database listed in FILE (NAME URL or URL per line; see docs/fleet.md)")
    where.add_argument("--targets-query", metavar="SQL",
                       help="run on every database named by SQL's rows (run on DB_URL; same server and credentials)")
    parser.add_argument("--shard", metavar="I/N", help="with --targets: take only every N-th target, from the I-th")
    parser.add_argument("--parallel", type=count(1, MAX_PARALLEL, "targets"), metavar="N",
                        help="with --targets: read or run N targets at a time (default 8)")
    if run:
        parser.add_argument("--canary", type=count(0, 1_000_000, "targets"), metavar="K",
                            help="with --targets: run the first K targets with work first, alone; the rest only if "
                                 "all succeed (default 1)")
        parser.add_argument("--skip-refused", action="store_true",
                            help="with --targets: run the other targets and report the refused ones as skipped")


def fleet_requested(args: argparse.Namespace) -> bool:
    """Say whether this is a fleet run; the fleet's options without --targets are a usage error."""
    if getattr(args, "targets", None) is not None or getattr(args, "targets_query", None) is not None:
        for flag in ("baseline", "accept_checksum", "record_schema", "forget_failed", "schema_diff", "against"):
            if getattr(args, flag, None):
                raise UsageError(f"--{flag.replace('_', '-')} works on one database, not with --targets.",
                                 hint="Run it with DB_URL set to the database it is for.")
        return True
    given = [f"--{name.replace('_', '-')}" for name in ("shard", "parallel", "canary", "skip_refused")
             if getattr(args, name, None)]
    if given:
        raise UsageError(f"{given[0]} works only with --targets or --targets-query.",
                         hint="Name the databases with --targets FILE or --targets-query SQL.")
    return False


def child_words(argv: list[str], drop_switches: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Return the command's words without the fleet's own options: what each target's run repeats."""
    words: list[str] = []
    skip_next = False
    for word in argv:
        if skip_next:
            skip_next = False
            continue
        flag = word.split("=", 1)[0]
        if flag in FLEET_VALUES:
            skip_next = "=" not in word
            continue
        if word in FLEET_SWITCHES or word in drop_switches:
            continue
        words.append(word)
    return words


def suggest_words(argv: list[str]) -> tuple[str, ...]:
    """Return the words a suggested fleet command repeats: argv without --json, --dry-run, --plan-id, plan-only
    switches; the targets file and migrations directory made absolute, so it runs from any directory."""
    words: list[str] = []
    skip_next = False
    absolute = {"--targets", "--migrations-dir"}
    pending_flag = ""
    for word in argv:
        if skip_next:
            skip_next = False
            if pending_flag != "--plan-id":
                words.append(os.path.abspath(word) if pending_flag in absolute else word)
            continue
        flag, eq, value = word.partition("=")
        if flag in FLEET_VALUES or flag in absolute or flag in ("--target", "--to", "--history-schema"):
            if flag == "--plan-id":
                skip_next = not eq
                pending_flag = flag
                continue
            if eq:
                words += [flag, os.path.abspath(value) if flag in absolute else value]
            else:
                words.append(flag)
                skip_next, pending_flag = True, flag
            continue
        if word in ("--json", "--dry-run", "--skip-refused") or word in PLAN_ONLY_SWITCHES:
            continue
        words.append(word)
    if "--migrations-dir" not in words:
        words = ["--migrations-dir", os.path.abspath("migrations"), *words]
    return tuple(words)
