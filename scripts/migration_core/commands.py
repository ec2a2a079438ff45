"""The four commands: glue parsing, planning and the database; return results, never print."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import config, db, parsing, planning, schema_check
from .errors import Interrupted, MigrationError, Refused
from .model import (GenerateResult, Migration, Plan, PlanResult, RecordResult, RunOptions, RunResult, RunSettings,
                    SchemaDiffResult, Step,
                    StepDone, StepFailed)
from .statements import Statement, check_transaction_mode

Progress = Callable[[str], None]


def plan(migrations_dir: Path, target: str | None = None, check_live_schema: bool = True) -> PlanResult:
    """Report applied, pending, drift (files and live schema), missing, out-of-order, failed and risks.

    Strictly read-only: the connection is read-only and nothing is created.
    """
    migrations = parsing.load_migrations(migrations_dir)
    conn = db.connect(config.read_db_url(), read_only=True)
    try:
        current = planning.compute_plan(migrations, db.load_history(conn))
        applied = current.applied_versions
        schema = schema_check.check_schema(conn, applied) if check_live_schema else None
        server_version = conn.server_version
    finally:
        conn.close()
    steps = planning.select_apply_steps(current, migrations, target)
    risks = assess_risks(current.pending, server_version)
    return PlanResult(current, migrations_dir, planning.compute_plan_id("apply", current, steps, target), target,
                      risks, schema)


def schema_diff(against: str | None) -> SchemaDiffResult:
    """Compare the live schema with the last recorded snapshot, or with another database's live schema."""
    conn = db.connect(config.read_db_url(), read_only=True)
    try:
        if against is None:
            check = schema_check.check_schema(conn, [r.version for r in planning.compute_plan(
                [], db.load_history(conn)).applied])
            return SchemaDiffResult("last recorded snapshot", check.changes, check.status)
        from .schema_diff import diff_snapshots
        from .snapshot import take_snapshot
        other = db.connect(against, read_only=True, label="--against")
        try:
            changes = diff_snapshots(take_snapshot(other), take_snapshot(conn))
        finally:
            other.close()
        return SchemaDiffResult(config.describe_target(against, "--against"), changes, "drift" if changes else "clean")
    finally:
        conn.close()


def apply(migrations_dir: Path, target: str | None = None, options: RunOptions = RunOptions(),
          progress: Progress = lambda _: None) -> RunResult:
    """Apply pending migrations in order, each in its own transaction; stop at the first failure."""
    def choose(current: Plan, migrations: list[Migration]) -> list[Step]:
        planning.refuse_if_blocked(current)
        steps = planning.select_apply_steps(current, migrations, target)
        if not options.allow_out_of_order:
            planning.refuse_out_of_order(current, steps)
        return steps
    return run_steps("apply", migrations_dir, choose, target, options, progress)


def rollback(migrations_dir: Path, to: str | None = None, options: RunOptions = RunOptions(),
             progress: Progress = lambda _: None) -> RunResult:
    """Roll back the latest applied migration, or every one applied after `to`, newest first."""
    def choose(current: Plan, migrations: list[Migration]) -> list[Step]:
        return planning.select_rollback_steps(current, migrations, to)
    return run_steps("rollback", migrations_dir, choose, to, options, progress)


def run_steps(command: str, migrations_dir: Path, choose: Callable[[Plan, list[Migration]], list[Step]],
              target: str | None, options: RunOptions, progress: Progress) -> RunResult:
    """Shared body of apply and rollback: plan under the lock, check the plan id, run each step."""
    migrations = parsing.load_migrations(migrations_dir)
    conn = db.connect(config.read_db_url(), read_only=options.dry_run)
    try:
        if options.dry_run:  # a preview takes no lock, creates nothing and never waits
            return preview_steps(conn, command, migrations, choose, target, options)
        with db.advisory_lock(conn, options.lock_timeout_s):
            current = planning.compute_plan(migrations, db.load_history(conn))
            drift_allowed = check_schema_drift(conn, current, options)
            steps = choose(current, migrations)
            computed_id = planning.compute_plan_id(command, current, steps, target)
            check_plan_id(command, options.plan_id, computed_id)
            parsed = parse_steps(steps, conn.server_version)  # every step checked before the first one runs
            # A real apply needs only the up findings it is gated on; rollback shows the down ones.
            risks = assess_risks([s.migration for s in steps], conn.server_version, with_down=command != "apply")
            refusal = risk_gate(command, risks, options)
            if refusal:
                raise refusal
            if steps:  # a refusal or an empty run leaves the database exactly as it was
                db.ensure_schema_table(conn)
            done, failed = execute_steps(conn, command, steps, parsed, options.settings, progress)
            # Even after a failure (the failed step was rolled back, the done ones changed the schema); and after
            # an allowed drift, so that the change it accepted is not reported again.
            if done or drift_allowed:
                schema_check.record_after_run(conn, schema_check.applied_after(
                    command, current.applied_versions, [d.version for d in done]))
            return RunResult(command, steps, done, failed, False, computed_id, risks)  # type: ignore[arg-type]
    finally:
        conn.close()


def preview_steps(conn: db.Connection, command: str, migrations: list[Migration],
                  choose: Callable[[Plan, list[Migration]], list[Step]], target: str | None,
                  options: RunOptions) -> RunResult:
    """Return what a run would do, with its plan id and risk findings, and why the real run would refuse."""
    current = planning.compute_plan(migrations, db.load_history(conn))
    check_schema_drift(conn, current, options)
    steps = choose(current, migrations)
    parse_steps(steps, conn.server_version)
    risks = assess_risks([s.migration for s in steps], conn.server_version, with_down=command != "apply")
    refusal = risk_gate(command, risks, options)
    return RunResult(command, steps, [], None, True,  # type: ignore[arg-type]
                     planning.compute_plan_id(command, current, steps, target), risks,
                     None if refusal is None else {"code": refusal.code, "message": refusal.message,
                                                   "hint": refusal.hint})


def risk_gate(command: str, risks: dict[str, Any], options: RunOptions) -> Refused | None:
    """Return the refusal of an apply whose steps have findings above --max-risk.

    Only apply is gated: a rollback exists to drop what its up created, so its data-loss findings are shown
    (plan's rollback_risk, the dry run) and confirmed with the plan id rather than refused.
    """
    if command != "apply" or not risks:
        return None
    from . import risk_report
    return risk_report.risk_refusal(list(risks.values()), "up", options.max_risk)  # type: ignore[arg-type]


def check_schema_drift(conn: db.Connection, current: Plan, options: RunOptions) -> bool:
    """Refuse while the live schema differs from the last snapshot; return True when the user allowed it."""
    check = schema_check.check_schema(conn, current.applied_versions)
    if not options.allow_schema_drift:
        schema_check.refuse_schema_drift(check)
    if not conn.autocommit:
        conn.commit()  # end the read-only snapshot queries' transaction before any migration starts
    return check.status == "drift"


def parse_steps(steps: list[Step], server_version: int) -> list[list[Statement]]:
    """Parse each step's SQL with the PostgreSQL parser; refuse statements its transaction mode cannot run."""
    return [check_transaction_mode(step.migration, step.direction, server_version) for step in steps]


def assess_risks(migrations: list[Migration], server_version: int, with_down: bool = True) -> dict[str, Any]:
    """Return each migration's risk findings (issue 5), judged for this server's version."""
    if not migrations:
        return {}
    from . import risk_report  # the rules load only when there is something to judge: plan's start-up stays lean
    return {m.version: risk_report.assess_migration(m, server_version, with_down) for m in migrations}


def record_without_running(migrations_dir: Path, action: str, version: str, lock_timeout_s: float,
                           dry_run: bool = False) -> RecordResult:
    """Baseline up to `version`, or accept the edited checksum of drifted `version`: history only, no SQL runs.

    A dry run, as elsewhere, takes no lock and writes nothing.
    """
    migrations = parsing.load_migrations(migrations_dir)
    conn = db.connect(config.read_db_url(), read_only=dry_run)
    try:
        with nullcontext() if dry_run else db.advisory_lock(conn, lock_timeout_s):
            current = planning.compute_plan(migrations, db.load_history(conn))
            applied = current.applied_versions
            if action == "baseline":  # adopting a database: its schema as it stands becomes the reference
                chosen = planning.select_baseline(current, migrations, version)
                note = "baseline: recorded as applied without running (the schema already had it)"
            else:  # a reviewed file edit is no licence for out-of-band schema changes
                schema_check.refuse_schema_drift(schema_check.check_schema(conn, applied))
                chosen = planning.select_accepted_drift(current, migrations, version)
                old = next(d.recorded_checksum for d in current.drift if d.version == version)
                note = f"accepted checksum change after review: was {old}"
            if chosen and not dry_run:
                record_noted(conn, chosen, note, current.applied, action)
            return RecordResult(action, [m.version for m in chosen], dry_run)  # type: ignore[arg-type]
    finally:
        conn.close()


def record_noted(conn: db.Connection, chosen: list[Migration], note: str, applied_rows: list[Any],
                 action: str) -> None:
    """Write the noted success rows, then the snapshot that matches the new applied list."""
    # An accepted checksum keeps its original applied_at, so the application order does not change.
    applied_at = {r.version: r.applied_at for r in applied_rows} if action != "baseline" else {}
    db.ensure_schema_table(conn)
    db.record_noted_successes(conn, [{"version": m.version, "name": m.name, "checksum": m.checksum,
                                      "note": note, "applied_at": applied_at.get(m.version)} for m in chosen])
    applied = [r.version for r in applied_rows]
    already = set(applied)
    schema_check.record_after_run(conn, applied + [m.version for m in chosen if m.version not in already])


def execute_steps(conn: db.Connection, command: str, steps: list[Step], parsed: list[list[Statement]],
                  settings: RunSettings, progress: Progress) -> tuple[list[StepDone], StepFailed | None]:
    """Run the steps in order until one fails; a signal or a lost connection stops the run with an error."""
    from . import runner  # only runs that execute migrations need it
    done: list[StepDone] = []
    failed: StepFailed | None = None
    from .output import RUN_KEYS
    key = RUN_KEYS[command]  # partial result for the error's JSON

    def run_all() -> StepFailed | None:
        for step, statements in zip(steps, parsed):
            if signals:
                return None
            progress(f"{'applying' if step.direction == 'up' else 'rolling back'} {step.version} ...")
            try:
                outcome = runner.run_step(conn, step, settings, statements, stop=lambda: bool(signals))
            except MigrationError as err:
                err.details[key] = [d.version for d in done]
                raise
            if isinstance(outcome, StepFailed):
                return outcome  # a cancelled statement fails too; the signal, if any, is the real cause
            done.append(outcome)
        return None

    with db.cancel_on_signal(conn) as signals:
        failed = db.run_in_worker(run_all)
    if signals:
        effect = "no further migration was started"
        if failed and failed.statements_total is None:
            effect = f"{failed.version} was cancelled and rolled back"
        elif failed:
            effect = (f"{failed.version} was cancelled part way: {failed.statements_done} of "
                      f"{failed.statements_total} statements had completed and stay applied")
        raise Interrupted(f"Interrupted by signal {signals[0]}; {effect}.",
                          hint="Run python scripts/plan_migrations.py to see the state, then run the command again.",
                          details={key: [d.version for d in done],
                                   "failed": None if failed is None else {**vars(failed), "error": failed.describe()}})
    return done, failed


def check_plan_id(command: str, expected: str | None, actual: str) -> None:
    """Refuse when the plan the user confirmed is no longer what would run."""
    if expected is not None and expected != actual:
        flag = "--dry-run" if command == "rollback" else "--dry-run (or python scripts/plan_migrations.py)"
        raise Refused(f"The plan changed since it was previewed (confirmed {expected}, now {actual}); "
                      "nothing was executed.", code="plan_changed",
                      hint=f"Run python scripts/{command}_migrations.py {flag} again, review the new plan, "
                           "then confirm its id.")


def generate(migrations_dir: Path, name: str, up: str | None = None, down: str | None = None,
             now: datetime | None = None) -> GenerateResult:
    """Create YYYYMMDD_HHMMSS_NAME.sql (UTC); never overwrite, moving the timestamp on instead."""
    parsing.check_name(name)
    migrations_dir.mkdir(parents=True, exist_ok=True)
    moment = now or datetime.now(timezone.utc)
    text = migration_template(name, up, down)
    taken = {p.name[:15] for p in migrations_dir.glob("*.sql")}
    while True:
        stamp = moment.strftime("%Y%m%d_%H%M%S")
        path = migrations_dir / f"{stamp}_{name}.sql"
        if stamp not in taken:
            # Validate before writing, so a bad --up never leaves an invalid file behind.
            migration = parsing.parse_migration_text(text, path, name) if up else None
            parsing.check_file_name(path)
            try:
                with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite
                    handle.write(text)
                break
            except FileExistsError:
                pass
        moment += timedelta(seconds=1)
    return GenerateResult(path, path.stem, migration.reversible if migration else None)


def migration_template(name: str, up: str | None, down: str | None) -> str:
    """Return the text of a new migration; the placeholders are comments so an unedited file is invalid."""
    up_body = up.strip() if up else (
        "-- Write the forward change here, e.g.\n-- ALTER TABLE users ADD COLUMN status TEXT;")
    down_body = down.strip() if down else (
        "-- Write the SQL that undoes the up section, e.g.\n-- ALTER TABLE users DROP COLUMN status;\n"
        "-- Leave only comments here if the change cannot be undone (the migration is then irreversible).")
    return f"-- MIGRATION: {name}\n-- DIRECTION: up\n{up_body}\n\n-- DIRECTION: down\n{down_body}\n"
