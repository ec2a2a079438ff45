"""The fleet plan: each target's own plan (read in parallel), one line per target, and the fleet plan id."""
from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from .. import config, parsing
from .children import ChildOutcome, ProgressLine, run_child, run_each
from .options import child_words, suggest_words
from .report import RISK_ORDER, FleetPlanResult, TargetPlan, fleet_plan_id
from .targets import Target, parse_shard, read_targets_file, select_shard, targets_from_query

DEFAULT_PARALLEL = 8


def choose_targets(args: argparse.Namespace) -> tuple[list[Target], str | None, tuple[str, ...]]:
    """Return the targets of this run (after --shard), the shard as given, and every target's password forms."""
    if args.targets is not None:
        targets = read_targets_file(args.targets, os.environ)
    else:
        targets = targets_from_query(config.read_db_url(), args.targets_query)
    shard = None
    if args.shard:
        index, count = parse_shard(args.shard)
        targets, shard = select_shard(targets, index, count), f"{index}/{count}"
    secrets = sorted({form for t in targets for form in config.password_forms(t.url)}, key=len, reverse=True)
    return targets, shard, tuple(secrets)


def fleet_plan(args: argparse.Namespace, argv: list[str], live: TextIO | None = None) -> FleetPlanResult:
    """Plan every target (plan_migrations.py --json on each, --parallel at a time) and sum them up.

    argv: the command's words (passed on to each target without the fleet's own); live: where the TTY progress
    line goes, or None.
    """
    targets, shard, secrets = choose_targets(args)
    parsing.load_migrations(args.migrations_dir)  # bad files: one error (exit 2), not one per target
    words = child_words(argv)
    with ProgressLine(len(targets), live) as progress:
        outcomes = run_each(targets, lambda t: run_child("plan", words, t), args.parallel or DEFAULT_PARALLEL,
                            progress, failed=lambda outcome: outcome.exit_code not in (0, 3))
    plans = [target_plan(t.name, outcomes[i], getattr(args, "target", None)) for i, t in enumerate(targets)]
    plan_id = fleet_plan_id([(p.name, p.plan_id if p.ok else None) for p in plans])
    return FleetPlanResult(plans, plan_id, shard, suggest_words(argv), secrets)


def target_plan(name: str, outcome: ChildOutcome, target: str | None) -> TargetPlan:
    """Read one target's plan document into its fleet line."""
    doc = outcome.document
    if "pending" not in doc:  # the plan could not be read: unreachable, or another error
        return TargetPlan(name, "unreachable" if outcome.exit_code == 4 else "error", error=doc.get("error"),
                          exit_code=outcome.exit_code or 1, duration_ms=outcome.duration_ms)
    pending = [m for m in doc["pending"] if target is None or m["version"] <= target]
    drift = [d["version"] for d in doc.get("drift", [])]
    missing = [m["version"] for m in doc.get("missing", [])]
    if drift or missing or doc.get("schema_check") == "drift":
        state = "drifted"
    elif doc.get("decision"):
        state = "blocked"
    else:
        state = "pending" if pending else "up_to_date"
    return TargetPlan(name, state, doc.get("plan_id"), len(doc.get("applied", [])), [m["version"] for m in pending],
                      drift, missing, [f["version"] for f in doc.get("failed", [])],
                      [m["version"] for m in doc.get("out_of_order", [])], doc.get("schema_check"),
                      highest_risk(pending), doc.get("decision"),
                      doc.get("error") if outcome.exit_code else None, outcome.exit_code, outcome.duration_ms)


def highest_risk(pending: list[dict[str, Any]]) -> str | None:
    """Return the highest risk among the pending migrations (None when none was judged)."""
    risks = [m.get("risk") for m in pending if m.get("risk") in RISK_ORDER]
    return max(risks, key=lambda r: RISK_ORDER[r], default=None)
