"""Pure planning: (migration files, history rows) -> Plan, and the steps apply or rollback would take.

Imports: stdlib, model, errors. No database access, no output.
"""
from __future__ import annotations

import hashlib
import json

from .errors import Refused, UsageError
from .model import Drift, HistoryRow, Migration, Plan, Step


def compute_plan(migrations: list[Migration], history: list[HistoryRow] | None) -> Plan:
    """Compare the files with the history (None: no history table) and classify every version."""
    rows = history or []
    files = {m.version: m for m in migrations}
    latest_success: dict[str, HistoryRow] = {}
    latest_failed: dict[str, HistoryRow] = {}
    for row in rows:  # rows come ordered by id, so later rows win
        if row.status == "success":
            latest_success[row.version] = row
        elif row.status == "failed":
            latest_failed[row.version] = row
        elif row.status == "forgotten":  # apply --forget-failed: the failed attempts before it are acknowledged
            latest_failed.pop(row.version, None)
    # Application order: when it was applied (an accepted checksum keeps the original time), then row id.
    applied = sorted((r for r in latest_success.values() if r.direction == "up"), key=lambda r: (r.applied_at, r.id))
    applied_versions = {r.version for r in applied}
    pending = [m for m in migrations if m.version not in applied_versions]
    newest_applied = max(applied_versions, default="")
    failed = [r for v, r in latest_failed.items()
              if v not in latest_success or latest_success[v].id < r.id]
    return Plan(
        applied=applied,
        pending=pending,
        drift=[Drift(r.version, r.name, r.checksum, files[r.version].checksum)
               for r in applied if r.version in files and files[r.version].checksum != r.checksum],
        missing=[r for r in applied if r.version not in files],
        out_of_order=[m for m in pending if m.version < newest_applied],
        failed=sorted(failed, key=lambda r: r.id),
        history_exists=history is not None,
    )


def refuse_if_blocked(plan: Plan, plan_command: str = "python scripts/plan_migrations.py") -> None:
    """Refuse to apply while any applied file has drifted or gone missing; plan_command: how to look (a hint)."""
    if plan.drift:
        versions = ", ".join(d.version for d in plan.drift)
        raise Refused(f"Applied migration file(s) changed since they were applied: {versions}.",
                      code="drift_detected",
                      hint="Restore the original file(s) (e.g. git checkout) and write a new migration for the change "
                           "(if you only added a '-- risk: ignore' comment, that is still an edit: revert it, or use "
                           "apply_migrations.py --accept-checksum VERSION after review); "
                           f"run {plan_command} to see the drift.")
    if plan.missing:
        versions = ", ".join(r.version for r in plan.missing)
        raise Refused(f"Applied migration file(s) missing from the migrations directory: {versions}.",
                      code="missing_file",
                      hint=f"Restore the missing file(s) from version control, then run {plan_command} again.")


def refuse_out_of_order(plan: Plan, steps: list[Step],
                        allowed: str = "python scripts/apply_migrations.py --allow-out-of-order --dry-run") -> None:
    """Refuse to run pending migrations older than the newest applied one, unless the user allowed it.

    allowed: the command that previews the run with the older migrations allowed (a hint).
    """
    older = {m.version for m in plan.out_of_order}
    late = [s.version for s in steps if s.version in older]
    if late:
        raise Refused(f"Pending migration(s) older than the newest applied one: {', '.join(late)}.",
                      code="out_of_order",
                      hint="Check they don't conflict with what was applied since (a merged branch?); if the person "
                           f"decides to run them, preview with {allowed}.")


def select_baseline(plan: Plan, migrations: list[Migration], version: str) -> list[Migration]:
    """Return the migrations up to and including `version` not yet applied, to record without running."""
    if version not in {m.version for m in migrations}:
        raise UsageError(f"Unknown baseline version {version!r}: no such migration file.", code="unknown_version",
                         hint="Run plan_migrations.py with the same --migrations-dir to list the versions.")
    return [m for m in plan.pending if m.version <= version]


def select_accepted_drift(plan: Plan, migrations: list[Migration], version: str) -> list[Migration]:
    """Return the drifted migration whose new checksum the user accepts; only drifted versions qualify."""
    if version not in {d.version for d in plan.drift}:
        raise UsageError(f"{version!r} has not drifted, so there is no checksum change to accept.",
                         code="not_drifted",
                         hint="Run plan_migrations.py with the same --migrations-dir to see which versions drifted.")
    return [m for m in migrations if m.version == version]


def select_apply_steps(plan: Plan, migrations: list[Migration], target: str | None) -> list[Step]:
    """Return the pending migrations apply runs, in version order, up to and including target."""
    if target is not None and target not in {m.version for m in migrations}:
        raise UsageError(f"Unknown target version {target!r}: no such migration file.",
                         code="unknown_version",
                         hint="Run plan_migrations.py with the same --migrations-dir to list the versions.")
    return [Step(m, "up") for m in plan.pending if target is None or m.version <= target]


def select_rollback_steps(plan: Plan, migrations: list[Migration], to: str | None) -> list[Step]:
    """Return the applied migrations to undo, newest first; check the whole range before anything runs."""
    applied = plan.applied_versions
    if to is not None:
        if to not in applied:
            known = "not applied" if to in {m.version for m in migrations} else "unknown"
            raise UsageError(f"Cannot roll back to {to!r}: that version is {known}.",
                             code="unknown_version",
                             hint="Run plan_migrations.py with the same --migrations-dir to list the applied versions.")
        versions = applied[applied.index(to) + 1:]
    else:
        versions = applied[-1:]
    versions.reverse()
    check_rollback_range(plan, migrations, versions)
    files = {m.version: m for m in migrations}
    return [Step(files[v], "down") for v in versions]


def check_rollback_range(plan: Plan, migrations: list[Migration], versions: list[str]) -> None:
    """Refuse if any version in the range is missing, drifted or irreversible."""
    files = {m.version: m for m in migrations}
    missing = [v for v in versions if v not in files]
    if missing:
        raise Refused(f"Cannot roll back: migration file(s) missing: {', '.join(missing)}.", code="missing_file",
                      hint="Restore the file(s) from version control, then try again.")
    drifted = [d.version for d in plan.drift if d.version in versions]
    if drifted:
        raise Refused(f"Cannot roll back: file(s) changed since they were applied: {', '.join(drifted)}.",
                      code="drift_detected",
                      hint="Restore the applied version of the file(s) (e.g. git checkout), then try again.")
    irreversible = [v for v in versions if not files[v].reversible]
    if irreversible:
        raise Refused(f"Cannot roll back: migration(s) have no down section: {', '.join(irreversible)}.",
                      code="irreversible",
                      hint="Write a new migration that undoes the change instead, or roll back to a later version.")


def compute_plan_id(command: str, plan: Plan, steps: list[Step], target: str | None) -> str:
    """Return a short hash of exactly what a run would do now: applied state, steps, target."""
    return plan_id_of(command, plan.applied, [[s.version, s.direction, s.migration.checksum] for s in steps], target)


def plan_id_of(command: str, applied: list[HistoryRow], steps: list[list[str]], target: str | None) -> str:
    """Return the plan id of a run from the applied rows and its steps as [version, direction, checksum]."""
    state = {
        "command": command,
        "target": target,
        "applied": [[r.version, r.checksum] for r in applied],
        "steps": steps,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]


def completed_plan(command: str, plan_id: str, history: list[HistoryRow], current: Plan,
                   target: str | None) -> list[str] | None:
    """Return the versions of the plan with this id when it has already run to the end (a retried call), else None.

    The id a preview gave was computed before its run: it is recomputed here for every state the newest history
    rows can have started from, the run's steps being the newest success rows of this command's direction (not
    noted rows: baseline and accepted checksums never ran anything). A match counts only if every one of those
    steps is still in the state the run left it in, with the same checksum, so an old id can only ever say "done,
    nothing to run": it never selects anything to run.
    """
    direction = "up" if command == "apply" else "down"
    applied_now = {r.version: r.checksum for r in current.applied}
    tail: list[HistoryRow] = []
    for cut in range(len(history) - 1, -1, -1):
        row = history[cut]
        if row.status != "success" or row.direction != direction or row.error_message \
                or row.version in {r.version for r in tail}:
            return None
        tail.insert(0, row)
        still = all(applied_now.get(r.version) == r.checksum for r in tail) if direction == "up" \
            else all(r.version not in applied_now for r in tail)
        if not still:
            return None
        before = compute_plan([], history[:cut]).applied
        if plan_id_of(command, before, [[r.version, direction, r.checksum] for r in tail], target) == plan_id:
            return [r.version for r in tail]
    return None


def select_forgettable(plan: Plan, migrations: list[Migration], version: str) -> list[HistoryRow]:
    """Return the failed attempt of `version` that apply --forget-failed acknowledges (its file must be gone)."""
    if version in {m.version for m in migrations}:
        raise UsageError(f"Migration {version} still has a file, so its failed attempt is not forgotten: fix the "
                         "file and apply it, or delete the file first.", code="not_forgettable",
                         hint="Only a failed attempt whose file was renamed or deleted can be acknowledged.")
    failed = [r for r in plan.failed if r.version == version]
    if not failed:
        raise UsageError(f"{version!r} has no failed attempt to forget.", code="not_forgettable",
                         hint="Run plan_migrations.py with the same --migrations-dir to list the failed attempts.")
    return failed
