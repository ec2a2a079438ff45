"""Fleet results, and how they read: JSON payloads, human text, and the error each result stands for.

Rendered through output.py's extension_renderers hook, like the risk and verify results. Every string that leaves
here is redacted with the secrets of every target (output.redact), on top of what run() redacts for DB_URL.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import MigrationError, Refused, UnexpectedError
from ..output import command_line, redact

RISK_ORDER = {None: 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class TargetPlan:
    """One target in the fleet plan. state: up_to_date, pending, drifted, blocked (apply would refuse for
    another reason: out of order, risk above the gate, the schema check could not run), unreachable, error."""

    name: str
    state: str
    plan_id: str | None = None
    applied_count: int = 0
    pending: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    schema_check: str | None = None
    highest_risk: str | None = None
    decision: str | None = None
    error: dict[str, Any] | None = None
    exit_code: int = 0
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state in ("up_to_date", "pending")


@dataclass(frozen=True)
class TargetRun:
    """One target in a fleet apply or rollback (or its dry run).

    status: applied (rolled_back), up_to_date, failed, refused, skipped, not_started; in a dry run pending,
    up_to_date, refused or skipped. A target stopped between migrations after another target failed keeps
    status applied with ok false and error code `stopped`.
    """

    name: str
    status: str
    plan_id: str | None = None
    steps: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status not in ("failed", "refused", "not_started")


@dataclass(frozen=True)
class FleetPlanResult:
    targets: list[TargetPlan]
    plan_id: str
    shard: str | None = None
    words: tuple[str, ...] = ()          # fleet options a suggested command repeats
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetRunResult:
    command: str                         # apply or rollback
    dry_run: bool
    targets: list[TargetRun]
    plan_id: str
    outcome: str                         # previewed, refused, plan_changed, done, failed, interrupted
    confirmed_plan_id: str | None = None
    shard: str | None = None
    words: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


def fleet_plan_id(pairs: list[tuple[str, str | None]]) -> str:
    """Return the fleet plan id: a short hash over (name, target plan id) in rollout order.

    A target that would be refused counts as (name, None): the id changes when it is fixed, so a rollout confirmed
    with it refused never runs on it unseen; and it is the same with or without --skip-refused.
    """
    return hashlib.sha256(json.dumps([list(pair) for pair in pairs]).encode()).hexdigest()[:12]


# ---- errors ------------------------------------------------------------------------------------------------

def run_error(result: FleetPlanResult | FleetRunResult) -> MigrationError | None:
    """Return the error a finished fleet result stands for (exit codes: docs/fleet.md), its text redacted."""
    error = plan_error(result) if isinstance(result, FleetPlanResult) else rollout_error(result)
    if error is not None:
        error.message = redact(error.message, list(result.secrets))
        error.hint = redact(error.hint, list(result.secrets))
    return error


def plan_error(result: FleetPlanResult) -> MigrationError | None:
    """A target whose own plan failed (drift: 3, unreachable: 4) makes the fleet plan fail with the highest code."""
    bad = [t for t in result.targets if t.exit_code]
    if not bad:
        return None
    error = MigrationError(f"{len(bad)} of {len(result.targets)} target(s) not ready: "
                           + "; ".join(f"{t.name}: {t.state}" for t in bad[:5]) + (" ..." if len(bad) > 5 else "")
                           + ".", code="targets_not_ready",
                           hint="Look at each target listed above (plan on it alone shows the details); apply "
                                "--targets refuses while any target would be refused, unless --skip-refused.")
    error.exit_code = max(t.exit_code for t in bad)
    return error


def rollout_error(result: FleetRunResult) -> MigrationError | None:
    refused = [t for t in result.targets if t.status == "refused"]
    if result.outcome in ("refused", "previewed") and refused:
        return Refused(f"{len(refused)} target(s) would be refused, so nothing was run: "
                       + "; ".join(f"{t.name} ({(t.error or {}).get('code', 'refused')})" for t in refused[:5])
                       + (" ..." if len(refused) > 5 else "") + ".", code="targets_refused",
                       hint="Fix each refused target (its error is listed), then preview again; running the others "
                            "without them (--skip-refused) is the person's decision.")
    if result.outcome == "plan_changed":
        return Refused(f"The fleet plan changed since it was previewed (confirmed {result.confirmed_plan_id}, now "
                       f"{result.plan_id}); nothing was run.", code="plan_changed",
                       hint=f"Preview again with {command_line(result.command, (*result.words, '--dry-run'))}, "
                            "review the new plan, then confirm its id.")
    failed = [t for t in result.targets if t.status == "failed"]
    if result.outcome == "interrupted":
        return UnexpectedError("Interrupted: no new target was started; running targets stopped after their "
                               "current migration (each target's state is listed).", code="interrupted",
                               hint="Run the same command again to resume: targets already up to date do nothing.")
    if failed:
        first = failed[0]
        error = MigrationError(f"{len(failed)} target(s) failed, so the rollout stopped: {first.name}: "
                               f"{(first.error or {}).get('message', 'failed')}", code="target_failed",
                               hint="Fix the failed target(s) (each error is listed), then run the same command "
                                    "again: it resumes, and targets already up to date do nothing.")
        error.exit_code = 1
        return error
    return None


# ---- JSON --------------------------------------------------------------------------------------------------

def to_json_payload(result: FleetPlanResult | FleetRunResult) -> dict[str, Any]:
    """Return the fleet document's payload (the envelope and error come from output.to_json), redacted."""
    payload = plan_payload(result) if isinstance(result, FleetPlanResult) else run_payload(result)
    return redact(json.loads(json.dumps(payload, default=str)), list(result.secrets))


def plan_payload(result: FleetPlanResult) -> dict[str, Any]:
    preview, run = plan_commands(result, ("--json",))
    return {"plan_id": result.plan_id, "shard": result.shard, "next_command": preview, "run_command": run,
            "summary": plan_summary(result),
            "targets": [{"name": t.name, "ok": t.ok, "state": t.state, "error": t.error, "plan_id": t.plan_id,
                         "applied_count": t.applied_count, "pending": t.pending, "drift": t.drift,
                         "missing": t.missing, "failed": t.failed, "out_of_order": t.out_of_order,
                         "schema_check": t.schema_check, "highest_risk": t.highest_risk, "decision": t.decision,
                         "duration_ms": t.duration_ms} for t in result.targets]}


def run_payload(result: FleetRunResult) -> dict[str, Any]:
    key = "applied" if result.command == "apply" else "rolled_back"
    if result.dry_run:
        targets = [{"name": t.name, "ok": t.ok, "status": t.status, "plan_id": t.plan_id, "steps": t.steps,
                    "error": t.error, "duration_ms": t.duration_ms} for t in result.targets]
    else:
        targets = [{"name": t.name, "ok": t.ok, "status": t.status, key: t.done, "failed": t.failed,
                    "error": t.error, "duration_ms": t.duration_ms} for t in result.targets]
    run = run_command(result, ("--json",))
    return {"dry_run": result.dry_run, "plan_id": result.plan_id, "shard": result.shard,
            "next_command": run, "run_command": run, "summary": run_summary(result), "targets": targets}


def plan_summary(result: FleetPlanResult) -> dict[str, int]:
    states = [t.state for t in result.targets]
    summary = {"targets": len(states)} | {s: states.count(s) for s in
                                          ("up_to_date", "pending", "drifted", "blocked", "unreachable", "error")}
    summary["pending_migrations"] = sum(len(t.pending) for t in result.targets if t.state == "pending")
    return summary


def run_summary(result: FleetRunResult) -> dict[str, int]:
    statuses = [t.status for t in result.targets]
    names = ("pending", "up_to_date", "refused", "skipped") if result.dry_run else \
        ("applied", "rolled_back", "up_to_date", "failed", "refused", "skipped", "not_started")
    summary = {"targets": len(statuses)} | {s: statuses.count(s) for s in names}
    if not result.dry_run:
        summary["stopped"] = sum(1 for t in result.targets if (t.error or {}).get("code") == "stopped")
        summary["migrations"] = sum(len(t.done) for t in result.targets)
    else:
        summary["migrations"] = sum(len(t.steps) for t in result.targets if t.status == "pending")
    return summary


# ---- suggested commands ------------------------------------------------------------------------------------

def plan_commands(result: FleetPlanResult, extra: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """Return the fleet preview (apply --targets ... --dry-run) and the run of exactly this fleet plan.

    No run command while a target is not ready: that is for the person to fix, or to skip (--skip-refused).
    """
    if not any(t.pending for t in result.targets if t.state in ("pending", "blocked")):
        return None, None
    preview = command_line("apply", (*result.words, *extra, "--dry-run"))
    ready = all(t.ok for t in result.targets)
    return preview, command_line("apply", (*result.words, *extra, "--plan-id", result.plan_id)) if ready else None


def run_command(result: FleetRunResult, extra: tuple[str, ...] = ()) -> str | None:
    """Return the command that runs exactly what a fleet dry run previewed; None if it would be refused."""
    if not result.dry_run or any(t.status == "refused" for t in result.targets) or \
            not any(t.status == "pending" for t in result.targets):
        return None
    skip = ("--skip-refused",) if any(t.status == "skipped" for t in result.targets) else ()
    return command_line(result.command, (*result.words, *skip, *extra, "--plan-id", result.plan_id))


# ---- human -------------------------------------------------------------------------------------------------

def to_human(result: FleetPlanResult | FleetRunResult) -> str:
    """Return one line per target and a summary, redacted."""
    text = human_plan(result) if isinstance(result, FleetPlanResult) else human_run(result)
    return redact(text, list(result.secrets))


def human_plan(result: FleetPlanResult) -> str:
    width = max([len(t.name) for t in result.targets] + [8])
    shard = f" (shard {result.shard})" if result.shard else ""
    lines = [f"Fleet plan: {len(result.targets)} target(s){shard}."]
    for t in result.targets:
        lines.append(f"  {t.name:<{width}}  {describe_plan_target(t)}")
    s = plan_summary(result)
    parts = [f"{s['up_to_date']} up to date"]
    if s["pending"]:
        parts.append(f"{s['pending']} pending ({s['pending_migrations']} migration(s))")
    parts += [f"{s[key]} {key.replace('_', ' ')}" for key in ("drifted", "blocked", "unreachable", "error")
              if s[key]]
    lines.append(", ".join(parts) + ".")
    preview, run = plan_commands(result)
    if run:
        lines.append(f"Fleet plan id {result.plan_id}. Next: {preview}, then {run}")
    elif preview:
        lines.append(f"Fleet plan id {result.plan_id}. Not every target is ready (above): apply --targets will "
                     f"refuse until each is fixed; skipping them (--skip-refused) is the person's decision. "
                     f"Preview: {preview}")
    else:
        lines.append(f"Fleet plan id {result.plan_id}: nothing pending.")
    return "\n".join(lines)


def describe_plan_target(t: TargetPlan) -> str:
    """Return one target's plan line: applied count, pending, drift, failed, highest risk, its plan id."""
    if t.state in ("unreachable", "error"):
        return f"{t.state.upper()}: {(t.error or {}).get('message', '')}"
    parts = [f"{t.applied_count} applied", f"{len(t.pending)} pending" if t.pending else "up to date"]
    if t.highest_risk:
        parts.append(f"risk {t.highest_risk.upper()}")
    parts += [f"DRIFT {', '.join(t.drift)}"] if t.drift else []
    parts += [f"MISSING {', '.join(t.missing)}"] if t.missing else []
    parts += ["SCHEMA DRIFT (live schema changed outside the migrations)"] if t.schema_check == "drift" else []
    parts += [f"FAILED {', '.join(t.failed)}"] if t.failed else []
    parts += [f"OUT OF ORDER {', '.join(t.out_of_order)}"] if t.out_of_order else []
    if t.state == "blocked" and t.decision:
        parts.append("BLOCKED: " + t.decision.split(". ")[0].removeprefix("Nothing to run yet: ").replace(" (above)", ""))
    return ", ".join(parts) + (f"  plan {t.plan_id}" if t.plan_id else "")


RUN_LABELS = {"applied": "applied", "rolled_back": "rolled back", "up_to_date": "up to date", "failed": "FAILED",
              "refused": "REFUSED", "skipped": "skipped", "not_started": "not started", "pending": "pending"}


def human_run(result: FleetRunResult) -> str:
    width = max([len(t.name) for t in result.targets] + [8])
    verb = "apply" if result.command == "apply" else "roll back"
    lines = []
    for t in result.targets:
        label = RUN_LABELS.get(t.status, t.status)
        if (t.error or {}).get("code") == "stopped":
            label = "STOPPED"
        lines.append(f"  {label:<12} {t.name:<{width}}  {describe_run_target(t, result.dry_run)}".rstrip())
    s = run_summary(result)
    shard = f", shard {result.shard}" if result.shard else ""
    counted = ", ".join(f"{s[k]} {RUN_LABELS.get(k, k)}" for k in s if k not in ("targets", "migrations") and s[k])
    if result.dry_run:
        lines.append(f"Fleet dry run ({s['targets']} target(s){shard}): {counted or 'nothing'}; would {verb} "
                     f"{s['migrations']} migration(s); nothing was executed. Fleet plan id {result.plan_id}.")
        run = run_command(result)
        if run:
            lines.append(f"To run exactly this: {run}")
        elif any(t.status == "refused" for t in result.targets):
            lines.append("Nothing to confirm yet: the refused target(s) need the person's decision first.")
    else:
        lines.append(f"Fleet {result.command} ({s['targets']} target(s){shard}): {counted or 'nothing'}; "
                     f"{s['migrations']} migration(s) {'applied' if result.command == 'apply' else 'rolled back'}.")
    return "\n".join(lines)


def describe_run_target(t: TargetRun, dry_run: bool) -> str:
    took = f"({t.duration_ms / 1000:.1f}s)" if t.duration_ms else ""
    if dry_run:
        if t.status == "pending":
            return f"{len(t.steps)} migration(s): {', '.join(t.steps)}  plan {t.plan_id}"
        if t.status in ("refused", "skipped"):
            return f"{(t.error or {}).get('code', '')}: {(t.error or {}).get('message', '')}"
        return ""
    if t.status in ("not_started", "up_to_date"):
        return ""
    done = f"{len(t.done)} migration(s)" + (f" ({', '.join(t.done)})" if t.done else "")
    if t.status == "failed":
        return f"{done} before: {(t.error or {}).get('message', '')} {took}".strip()
    if t.status in ("refused", "skipped"):
        return f"{(t.error or {}).get('code', '')}: {(t.error or {}).get('message', '')}"
    if t.error:
        return f"{done}, then {t.error.get('message', '')} {took}"
    return f"{done} {took}"
