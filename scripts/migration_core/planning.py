"""Pure planning: (migration files, history rows) -> Plan, and the steps apply or rollback would take.

Imports: stdlib, model, errors. No database access, no output.
"""
from __future__ import annotations

import bisect
import hashlib
import json
from json.encoder import encode_basestring_ascii as quote_json  # what json.dumps uses for a str (ensure_ascii)

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


# The plan id hashes json.dumps({"applied", "command", "steps", "target"}, sort_keys=True), written out here in
# pieces so that completed_plan can hash a long applied list once and reuse it for every state it tries.
APPLIED_OPEN = b'{"applied": ['
# A retried plan of more steps than this is not recognised: its id then reads plan_changed (a refusal, never a run).
# It bounds the walk back through the history, so a long history costs one pass, not one per row.
RETRIED_PLAN_MAX_STEPS = 1000


def plan_id_of(command: str, applied: list[HistoryRow], steps: list[list[str]], target: str | None) -> str:
    """Return the plan id of a run from the applied rows and its steps as [version, direction, checksum]."""
    digest = hashlib.sha256(APPLIED_OPEN + ", ".join(applied_entry(r) for r in applied).encode())
    return finish_plan_id(digest, command, [json.dumps(s) for s in steps], target)


def applied_entry(row: HistoryRow) -> str:
    """Return the JSON of one applied row as the plan id hashes it: json.dumps([version, checksum])."""
    version, checksum = row.version, row.checksum
    if type(version) is str and type(checksum) is str:  # json's own string encoder, without a dumps per row
        return f"[{quote_json(version)}, {quote_json(checksum)}]"
    return json.dumps([version, checksum])


def finish_plan_id(applied_digest: hashlib._Hash, command: str, step_entries: list[str], target: str | None) -> str:
    """Return the plan id from a digest fed with the applied list so far (left unchanged) and the JSON steps."""
    digest = applied_digest.copy()
    digest.update(f'], "command": {json.dumps(command)}, "steps": [{", ".join(step_entries)}], '
                  f'"target": {json.dumps(target)}}}'.encode())
    return digest.hexdigest()[:12]


def completed_plan(command: str, plan_id: str, history: list[HistoryRow], current: Plan,
                   target: str | None, max_steps: int = RETRIED_PLAN_MAX_STEPS) -> list[str] | None:
    """Return the versions of the plan with this id when it has already run to the end (a retried call), else None.

    The id a preview gave was computed before its run: it is recomputed here for every state the newest history
    rows can have started from, the run's steps being the newest success rows of this command's direction (not
    noted rows: baseline and accepted checksums never ran anything). A match counts only if every one of those
    steps is still in the state the run left it in, with the same checksum, so an old id can only ever say "done,
    nothing to run": it never selects anything to run. The walk undoes one row per step from the newest and stops
    after max_steps rows: a longer plan is not recognised (its id is refused as changed, nothing runs).
    """
    direction = "up" if command == "apply" else "down"
    applied_now = {r.version: r.checksum for r in current.applied}
    first = max(len(history) - max_steps, 0)
    state = AppliedBefore(history, first)
    versions: list[str] = []  # the steps so far, newest first
    seen: set[str] = set()
    steps: list[str] = []  # and their JSON
    for cut in range(len(history) - 1, first - 1, -1):
        row = history[cut]
        if row.status != "success" or row.direction != direction or row.error_message \
                or row.version in seen:
            return None
        still = applied_now.get(row.version) == row.checksum if direction == "up" else row.version not in applied_now
        if not still:
            return None
        versions.append(row.version)
        seen.add(row.version)
        steps.append(json.dumps([row.version, direction, row.checksum]))
        state.undo(cut)
        if finish_plan_id(state.digest(), command, steps[::-1], target) == plan_id:
            return versions[::-1]
    return None


class AppliedBefore:
    """The applied list of the history cut before a row (compute_plan(...).applied), undone one newest row at a time.

    It keeps the plan-id digest of every prefix of that list, so undoing a row rehashes only what follows it in
    application order (normally nothing: the newest rows are applied last).
    """

    def __init__(self, history: list[HistoryRow], first: int) -> None:
        self.history = history
        latest: dict[str, HistoryRow] = {}
        self.previous: dict[int, HistoryRow | None] = {}  # for each row from `first`: its version's success before
        for index, row in enumerate(history):
            if row.status != "success":
                continue
            if index >= first:
                self.previous[index] = latest.get(row.version)
            latest[row.version] = row
        rows = sorted((r for r in latest.values() if r.direction == "up"), key=application_order)
        self.keys = [application_order(r) for r in rows]
        self.entries = [applied_entry(r) for r in rows]
        self.digests = [hashlib.sha256(APPLIED_OPEN)]  # digests[i]: fed with the first i entries

    def undo(self, index: int) -> None:
        """Drop history[index], the newest success row of its version, so its previous success row counts again."""
        row, previous = self.history[index], self.previous[index]
        if row.direction == "up":
            self.remove(application_order(row))
        if previous is not None and previous.direction == "up":
            self.insert(application_order(previous), applied_entry(previous))

    def remove(self, key: tuple) -> None:
        """Take the row with this application order out of the list; the digests after it go stale."""
        position = bisect.bisect_left(self.keys, key)
        del self.keys[position], self.entries[position]
        del self.digests[position + 1:]

    def insert(self, key: tuple, entry: str) -> None:
        """Put a row back in its place in application order; the digests after it go stale."""
        position = bisect.bisect_left(self.keys, key)
        self.keys.insert(position, key)
        self.entries.insert(position, entry)
        del self.digests[position + 1:]

    def digest(self) -> hashlib._Hash:
        """Return the digest fed with the whole applied list (not to be changed: finish_plan_id copies it)."""
        while len(self.digests) <= len(self.entries):
            done = len(self.digests) - 1
            digest = self.digests[-1].copy()
            digest.update(((", " if done else "") + self.entries[done]).encode())
            self.digests.append(digest)
        return self.digests[-1]


def application_order(row: HistoryRow) -> tuple:
    """Return the sort key of compute_plan's applied list: when it was applied, then row id."""
    return (row.applied_at, row.id)


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


def refuse_forgetting_partial(version: str, attempts: list[HistoryRow], partial: str) -> None:
    """Refuse to forget failed attempts when one stopped part way: its row is the only trace of what committed.

    partial: the words such a row holds (schema_check.PARTIAL). A row ending "(0 of N statements completed, not
    rolled back)" is a first statement that failed, so nothing committed (StepFailed.describe); an interrupted
    run's "0 of N" row says the first statement may have completed, so it counts as part way.
    """
    for row in attempts:
        note = row.error_message or ""
        nothing_done = note.endswith(" statements completed, not rolled back)") \
            and note.rpartition("(")[2].startswith("0 of ")
        if partial in note and not nothing_done:
            finish = ("run it again with apply if its statements are safe to re-run, or complete it by hand and "
                      f"record it with apply_migrations.py --baseline {version}") if row.direction == "up" else \
                "run rollback again if its statements are safe to re-run, or complete it by hand"
            raise UsageError(f"The failed attempt {row.id} of {version} stopped part way: what it committed "
                             "stays applied and its history row is the only record of it, so it is not forgotten.",
                             code="not_forgettable",
                             hint=f"Restore the file (e.g. git checkout) and finish what it started: {finish}; "
                                  "plan shows how many statements completed.")
