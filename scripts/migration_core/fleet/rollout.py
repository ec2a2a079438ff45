"""Fleet apply and rollback: refuse before anything runs, then a canary, then the rest in parallel; stop at the
first failure.

Each target runs this project's own apply (rollback) script in a subprocess with its DB_URL, so its runner lock,
drift and risk checks all hold per target. First a dry run on every target (the refusals, and each target's
plan id); then each target's real run is given its own plan id, which it re-checks under its lock. Running targets
are asked to stop between migrations through a stop file (MIGRATIONS_STOP_FILE, checked by running.py).
"""
from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .. import parsing
from ..lock import handling_signals
from .children import ChildOutcome, ProgressLine, run_child, run_each
from .options import child_words, suggest_words
from .plan import DEFAULT_PARALLEL, choose_targets
from .report import FleetRunResult, TargetRun, fleet_plan_id
from .targets import Target

DEFAULT_CANARY = 1
RUN_KEYS = {"apply": "applied", "rollback": "rolled_back"}


def fleet_run(command: str, args: argparse.Namespace, argv: list[str], live: TextIO | None = None) -> FleetRunResult:
    """Preview every target; refuse, or (not a dry run) roll out: canary first, then the rest.

    argv: the command's words (passed on to each target without the fleet's own); live: where the TTY progress
    line goes, or None.
    """
    targets, shard, secrets = choose_targets(args)
    parsing.load_migrations(args.migrations_dir)  # bad files: one error (exit 2), not one per target
    words = child_words(argv)
    parallel = args.parallel or DEFAULT_PARALLEL
    with ProgressLine(len(targets), live) as progress:
        outcomes = run_each(targets, lambda t: run_child(command, [*words, "--dry-run"], t), parallel, progress,
                            failed=lambda outcome: outcome.exit_code != 0)
    previews = [preview_target(t.name, outcomes[i], args.skip_refused) for i, t in enumerate(targets)]
    plan_id = fleet_plan_id([(p.name, p.plan_id if p.status in ("pending", "up_to_date") else None)
                             for p in previews])
    result = dict(command=command, plan_id=plan_id, confirmed_plan_id=args.plan_id, shard=shard,
                  words=suggest_words(argv), secrets=secrets)
    if args.dry_run:
        return FleetRunResult(dry_run=True, targets=previews, outcome="previewed", **result)
    if any(p.status == "refused" for p in previews):
        return FleetRunResult(dry_run=False, targets=[p if p.status == "refused" else not_started(p)
                                                      for p in previews], outcome="refused", **result)
    if args.plan_id is not None and args.plan_id != plan_id:
        return FleetRunResult(dry_run=False, targets=[not_started(p) for p in previews], outcome="plan_changed",
                              **result)
    targets_by_name = {t.name: t for t in targets}
    runs, interrupted = roll_out(command, words, previews, targets_by_name, parallel,
                                 DEFAULT_CANARY if args.canary is None else args.canary, live)
    failed = any(r.status == "failed" for r in runs)
    return FleetRunResult(dry_run=False, targets=runs, outcome="interrupted" if interrupted else
                          "failed" if failed else "done", **result)


def preview_target(name: str, outcome: ChildOutcome, skip_refused: bool) -> TargetRun:
    """Read one target's dry run: pending (its steps and plan id), up_to_date, or refused (skipped)."""
    doc = outcome.document
    refusal = outcome.error or doc.get("would_refuse")
    if outcome.exit_code or refusal:
        error = {key: (refusal or {}).get(key) for key in ("code", "message", "hint")}
        return TargetRun(name, "skipped" if skip_refused else "refused", error=error,
                         duration_ms=outcome.duration_ms)
    steps = [s["version"] for s in doc.get("steps", [])]
    return TargetRun(name, "pending" if steps else "up_to_date", doc.get("plan_id"), steps,
                     duration_ms=outcome.duration_ms)


def not_started(preview: TargetRun) -> TargetRun:
    """Return a previewed target as one the rollout did not start (skipped ones stay skipped)."""
    if preview.status in ("skipped", "up_to_date"):
        return preview
    return TargetRun(preview.name, "not_started", preview.plan_id, preview.steps)


def roll_out(command: str, words: list[str], previews: list[TargetRun], targets: dict[str, Target],
             parallel: int, canary: int, live: TextIO | None) -> tuple[list[TargetRun], bool]:
    """Run the pending targets in listed order: the first `canary` alone, then the rest `parallel` at a time.

    At the first failure no new target starts, and the file that running targets watch is created, so each ends
    after its current migration. SIGINT/SIGTERM to the fleet does the same.
    """
    pending = [p for p in previews if p.status == "pending"]
    runs: dict[str, TargetRun] = {}
    with tempfile.TemporaryDirectory(prefix="migrations-fleet-") as scratch, \
            stop_on_signal(Path(scratch) / "stop") as stop:
        def work(preview: TargetRun) -> TargetRun:
            run = finish_target(command, preview, run_child(command, [*words, "--plan-id", preview.plan_id or ""],
                                                            targets[preview.name], stop.file))
            if run.status == "failed":
                stop.request()
            return run

        with ProgressLine(len(pending), live) as progress:
            for group, width in ((pending[:canary], max(1, min(canary, parallel))), (pending[canary:], parallel)):
                if stop.requested:
                    break
                outcomes = run_each(group, work, width, progress, failed=lambda run: run.status == "failed",
                                    keep_going=lambda: not stop.requested)
                runs.update({run.name: run for run in outcomes.values()})
        interrupted = stop.signalled
    return [runs.get(p.name) or not_started(p) for p in previews], interrupted


def finish_target(command: str, preview: TargetRun, outcome: ChildOutcome) -> TargetRun:
    """Read one target's real run: applied (all its steps, or stopped between them), or failed."""
    doc = outcome.document
    done = list(doc.get(RUN_KEYS[command]) or [])
    status = "applied" if command == "apply" else "rolled_back"
    stopped = (outcome.error or {}).get("code") == "stopped"
    if outcome.exit_code and not stopped:
        error = {key: (outcome.error or {}).get(key) for key in ("code", "message", "hint")}
        return TargetRun(preview.name, "failed", preview.plan_id, preview.steps, done, doc.get("failed"), error,
                         outcome.duration_ms)
    if doc.get("retried"):  # it had reached the previewed end already (a run of this plan finished before)
        return TargetRun(preview.name, "up_to_date", preview.plan_id, preview.steps, [], None, None,
                         outcome.duration_ms)
    if stopped or len(done) < len(preview.steps):  # asked to stop between migrations: another target failed
        left = [v for v in preview.steps if v not in done]
        error = {"code": "stopped", "message": f"Stopped after {len(done)} of {len(preview.steps)} migration(s) "
                                               f"because the rollout stopped; not run: {', '.join(left)}.",
                 "hint": "Run the same command again to resume once the failed target is fixed."}
        return TargetRun(preview.name, status, preview.plan_id, preview.steps, done, None, error,
                         outcome.duration_ms)
    return TargetRun(preview.name, status, preview.plan_id, preview.steps, done, None, None, outcome.duration_ms)


class StopRequest:
    """The rollout's stop: a flag for the fleet, and a file for the targets' runs (checked between migrations)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.requested = False
        self.signalled = False

    def request(self) -> None:
        self.requested = True
        self.file.touch()


@contextmanager
def stop_on_signal(file: Path) -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM to the fleet into a stop request: no new target, running ones end after their current
    migration (a Ctrl-C in the terminal also reaches the targets' runs, which cancel their statement)."""
    stop = StopRequest(file)

    def handle(_signum: int, _frame: Any) -> None:
        stop.signalled = True
        stop.request()

    with handling_signals(handle):
        yield stop
