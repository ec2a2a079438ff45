"""apply and rollback: plan under the runner lock, check the plan id, run each step, record the schema.

Two connections: the runner lock lives on one that never runs user SQL; the migrations run on the other.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from . import config, db, lock, parsing, planning, schema_check
from .commands import (DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS, assess_run_risks, interruptible,
                       invocation)
from .errors import Interrupted, MigrationError, Refused, Stopped, UsageError
from .fleet import stop as fleet_stop
from .model import Migration, Plan, RunOptions, RunResult, RunSettings, Step, StepDone, StepEvent, StepFailed
from .output import RUN_KEYS, command_line
from .statements import Statement, check_transaction_mode

Progress = Callable[[Any], None]  # a note (str) or a StepEvent
Choose = Callable[[Plan, list[Migration]], list[Step]]


def apply(migrations_dir: Path, target: str | None = None, options: RunOptions = RunOptions(),
          progress: Progress = lambda _: None) -> RunResult:
    """Apply pending migrations in order, each in its own transaction; stop at the first failure."""
    def choose(current: Plan, migrations: list[Migration]) -> list[Step]:
        planning.refuse_if_blocked(current, command_line("plan", invocation(migrations_dir, "--target", target)))
        steps = planning.select_apply_steps(current, migrations, target)
        if not options.allow_out_of_order:
            words = invocation(migrations_dir, "--target", target, options)
            planning.refuse_out_of_order(current, steps,
                                         command_line("apply", (*words, "--allow-out-of-order", "--dry-run")))
        return steps
    return run_steps("apply", migrations_dir, choose, target, options, progress)


def rollback(migrations_dir: Path, to: str | None = None, options: RunOptions = RunOptions(),
             progress: Progress = lambda _: None) -> RunResult:
    """Roll back the latest applied migration, or every one applied after `to`, newest first."""
    def choose(current: Plan, migrations: list[Migration]) -> list[Step]:
        return planning.select_rollback_steps(current, migrations, to)
    return run_steps("rollback", migrations_dir, choose, to, options, progress)


def run_steps(command: str, migrations_dir: Path, choose: Choose, target: str | None, options: RunOptions,
              progress: Progress) -> RunResult:
    """Shared body of apply and rollback: a preview, or the real run under the runner lock."""
    words = invocation(migrations_dir, "--target" if command == "apply" else "--to", target, options)
    if options.require_plan_id and not options.dry_run and options.plan_id is None:
        raise plan_id_required(command, words)
    migrations = parsing.load_migrations(migrations_dir)
    url = config.read_db_url()
    conn = db.connect(url, read_only=options.dry_run)
    with closing(conn):
        if options.dry_run:  # a preview takes no lock, creates nothing and never waits
            return interruptible([conn], lambda: preview_steps(conn, command, migrations, choose, target, options,
                                                               words))
        lock_conn = db.connect(url, role="-lock")
        with closing(lock_conn), db.server_errors(lock_conn, "taking the runner lock"), \
                lock.runner_lock(lock_conn, options.lock_timeout_s, db.own_application_name(conn),
                                 waiting=progress) as held:
            return run_locked(conn, held, command, migrations, choose, target, options, progress, words)


def run_locked(conn: db.Connection, held: lock.RunnerLock, command: str,
               migrations: list[Migration], choose: Choose, target: str | None, options: RunOptions,
               progress: Progress, words: tuple[str, ...] = ()) -> RunResult:
    """Plan under the lock, refuse what is unsafe before anything runs, run the steps, record the schema.

    words: the invocation (commands.invocation), repeated by the commands that results and hints suggest.
    """
    started = time.monotonic()
    current, check, drift_allowed, recorded = read_state(conn, migrations, options)
    steps = choose(current, migrations)
    computed_id = planning.compute_plan_id(command, current, steps, target)
    if options.plan_id is not None and options.plan_id != computed_id:
        retried = completed_plan(conn, command, options.plan_id, current, target, options)
        if retried:  # a retried call: the confirmed plan ran to the end already; nothing runs
            return RunResult(command, [], [], None, False, options.plan_id, invocation=words,  # type: ignore[arg-type]
                             now_at=(current.applied_versions or [None])[-1], retried=retried)
    check_plan_id(command, options.plan_id, computed_id, command_line(command, (*words, "--dry-run")))
    parsed = parse_steps(steps, conn.server_version)  # every step checked before the first one runs
    # A real apply needs only the up findings it is gated on; rollback shows the down ones.
    risks = assess_run_risks(conn, command, [s.migration for s in steps], options)
    refusal = risk_gate(command, risks, options)
    if refusal:
        raise refusal
    if held.behind_pooler:
        refuse_session_state_behind_pooler(steps, parsed)
    if held.behind_pooler and any(not s.migration.transactional for s in steps):
        progress("note: behind a connection pooler, lock and statement timeouts are not set for statements of "
                 "'-- TRANSACTION: none' migrations (a session SET would leak to other clients of the pool)")
    done: list[StepDone] = []
    partial = lambda: {RUN_KEYS[command]: [d.version for d in done]}  # noqa: E731
    if steps:  # a refusal or an empty run leaves the database exactly as it was
        with db.server_errors(conn, "creating the history table"):
            db.ensure_schema_table(conn)
    with db.server_errors(conn, "running the migrations", partial):
        failed = execute_steps(conn, command, steps, parsed, options.settings, held, progress, done, recorded)
    # Even after a failure (the failed step was rolled back, the done ones changed the schema, and so did the
    # completed statements of a statement-by-statement one); and after an allowed drift, so that the change it
    # accepted is not reported again.
    if done or drift_allowed or (failed is not None and failed.statements_total is not None):
        def record() -> None:
            with db.server_errors(conn, "recording the schema snapshot", partial):
                db.set_local_timeouts(conn, options.settings.lock_timeout_ms, READ_STATEMENT_TIMEOUT_MS)
                schema_check.record_after_run(
                    conn, schema_check.applied_after(command, current.applied_versions, [d.version for d in done]),
                    unreviewed=check.status in ("stale", "skipped"))
        record_interruptibly(conn, record, partial())
    if failed is None and len(done) < len(steps):  # no failure, no signal: the fleet's stop file ended the run
        raise stopped_between(command, steps, done)
    after = schema_check.applied_after(command, current.applied_versions, [d.version for d in done])
    return RunResult(command, steps, done, failed, False, computed_id, risks,  # type: ignore[arg-type]
                     invocation=words, elapsed_ms=round((time.monotonic() - started) * 1000, 1),
                     now_at=after[-1] if after else None)


SESSION_STATE = {"VariableSetStmt", "ListenStmt", "PrepareStmt"}  # outlive their statement in the session


def refuse_session_state_behind_pooler(steps: list[Step], parsed: list[list[Statement]]) -> None:
    """Refuse, before anything runs, session state set by a statement-by-statement migration behind a pooler.

    Its statements each commit on a server connection a transaction pool may hand to other clients, and the reset
    after the migration may run on another one: a SET ROLE there would reach other clients.
    """
    for step, statements in zip(steps, parsed):
        if step.migration.transactional:
            continue  # reset inside its own transaction, before it commits
        for statement in statements:
            if type(statement.node).__name__ in SESSION_STATE and not getattr(statement.node, "is_local", False):
                raise Refused(f"{step.migration.path}:{statement.line}: behind a connection pooler, a "
                              "'-- TRANSACTION: none' migration cannot change session state (SET, RESET, LISTEN, "
                              "PREPARE): it could reach other clients of the pool; nothing was run.",
                              code="pooler_session_state",
                              hint="Run it through a direct or session-pooling DB_URL, or move the setting into a "
                                   "transactional migration.")


def record_interruptibly(conn: db.Connection, record: Callable[[], None], details: dict[str, Any]) -> None:
    """Record the schema snapshot; a signal cancels it, and the error says the run's migrations stay applied."""
    def after_commits(signum: int) -> Interrupted:
        return Interrupted(f"Interrupted by signal {signum} while recording the schema snapshot; the migrations of "
                           "this run had committed and stay applied (listed), and the live-schema check is now stale.",
                           hint="Run python scripts/plan_migrations.py to review, then "
                                "python scripts/apply_migrations.py --record-schema.", details=details)
    interruptible([conn], record, after_commits)


def read_state(conn: db.Connection, migrations: list[Migration], options: RunOptions
               ) -> tuple[Plan, schema_check.SchemaCheck, bool, frozenset[tuple[str, str]]]:
    """Read history and the live-schema check in one bounded transaction; refuse drift unless allowed.

    Also returns the (version, direction) pairs that have a success row: only their new rows supersede one.
    """
    with db.server_errors(conn, "reading the history and the live schema"):
        db.set_local_timeouts(conn, options.settings.lock_timeout_ms or DEFAULT_READ_LOCK_TIMEOUT_MS,
                              READ_STATEMENT_TIMEOUT_MS)
        rows = db.load_history(conn)
        current = planning.compute_plan(migrations, rows)
        check = schema_check.check_schema(conn, current)
        conn.commit()  # end the reads' transaction (and its timeouts) before any migration starts
    if not options.allow_schema_drift:
        schema_check.refuse_schema_drift(check)
    recorded = frozenset((row.version, row.direction) for row in rows or () if row.status == "success")
    return current, check, check.status in ("drift", "skipped"), recorded


def preview_steps(conn: db.Connection, command: str, migrations: list[Migration], choose: Choose,
                  target: str | None, options: RunOptions, words: tuple[str, ...] = ()) -> RunResult:
    """Return what a run would do, with its plan id and risk findings, and why the real run would refuse."""
    with db.server_errors(conn, "reading the history and the live schema"):
        db.set_local_timeouts(conn, options.settings.lock_timeout_ms or DEFAULT_READ_LOCK_TIMEOUT_MS,
                              READ_STATEMENT_TIMEOUT_MS)
        current = planning.compute_plan(migrations, db.load_history(conn))
        check = schema_check.check_schema(conn, current)
        conn.rollback()
    if not options.allow_schema_drift:
        schema_check.refuse_schema_drift(check)
    steps = choose(current, migrations)
    parse_steps(steps, conn.server_version)
    risks = assess_run_risks(conn, command, [s.migration for s in steps], options)
    refusal = risk_gate(command, risks, options)
    return RunResult(command, steps, [], None, True,  # type: ignore[arg-type]
                     planning.compute_plan_id(command, current, steps, target), risks,
                     None if refusal is None else {"code": refusal.code, "message": refusal.message,
                                                   "hint": refusal.hint,
                                                   "findings": getattr(refusal, "findings", [])}, words)


def risk_gate(command: str, risks: dict[str, Any], options: RunOptions) -> Refused | None:
    """Return the refusal of an apply whose steps have findings above --max-risk.

    Only apply is gated: a rollback exists to drop what its up created, so its data-loss findings are shown
    (plan's rollback_risk, the dry run) and confirmed with the plan id rather than refused.
    """
    if command != "apply" or not risks:
        return None
    from . import risk
    return risk.risk_refusal(risks, "up", options.max_risk, options.verbose)  # type: ignore[arg-type]


def parse_steps(steps: list[Step], server_version: int) -> list[list[Statement]]:
    """Parse each step's SQL with the PostgreSQL parser; refuse statements its transaction mode cannot run.

    The other section of each file is checked too: a file whose down holds a COMMIT is invalid as a whole, and is
    never applied only to be refused at rollback time.
    """
    for step in steps:
        other = "down" if step.direction == "up" else "up"
        if other == "up" or step.migration.reversible:
            check_transaction_mode(step.migration, other, server_version)
    return [check_transaction_mode(step.migration, step.direction, server_version) for step in steps]


def execute_steps(conn: db.Connection, command: str, steps: list[Step],
                  parsed: list[list[Statement]], settings: RunSettings, held: lock.RunnerLock, progress: Progress,
                  done: list[StepDone], recorded: frozenset[tuple[str, str]]) -> StepFailed | None:
    """Run the steps in order until one fails, appending to done; a signal or a lost connection stops the run.

    recorded: the (version, direction) pairs with a success row in the history read under the lock (read_state).
    """
    from . import runner  # only runs that execute migrations need it
    key = RUN_KEYS[command]

    def run_all() -> StepFailed | None:
        for index, (step, statements) in enumerate(zip(steps, parsed), 1):
            if signals or fleet_stop.requested():  # a fleet rollout stops its targets between migrations
                return None
            progress(StepEvent(step, index, len(steps)))
            outcome = runner.run_step(conn, step, settings, statements, held, stop=lambda: bool(signals),
                                      supersede=(step.version, step.direction) in recorded)
            for notice in outcome.notices:
                progress(f"  {step.version}: {notice}")
            progress(StepEvent(step, index, len(steps), outcome))
            if isinstance(outcome, StepFailed):
                return outcome  # a cancelled statement fails too; the signal, if any, is the real cause
            done.append(outcome)
        return None

    with lock.cancel_on_signal([conn]) as signals:
        try:
            failed = lock.run_in_worker(run_all)
        except MigrationError as err:
            if signals:  # the cancel made the tool's own statement fail: the signal is the cause
                raise interrupted(signals[0], None, {key: [d.version for d in done]}) from None
            err.details[key] = [d.version for d in done]
            raise
    if signals:
        raise interrupted(signals[0], failed, {key: [d.version for d in done]})
    return failed


def interrupted(signum: int, failed: StepFailed | None, details: dict[str, Any]) -> Interrupted:
    """Say what a signal did to the run: what was cancelled, what stays applied."""
    effect = "no further migration was started"
    if failed and failed.statements_total is None:
        effect = f"{failed.version} was cancelled and rolled back"
    elif failed:
        effect = (f"{failed.version} was cancelled part way: {failed.statements_done} of "
                  f"{failed.statements_total} statements had completed and stay applied")
    return Interrupted(f"Interrupted by signal {signum}; {effect}.",
                       hint="Run python scripts/plan_migrations.py to see the state, then run the command again.",
                       details={**details,
                                "failed": None if failed is None else {**vars(failed), "error": failed.describe()}})


def stopped_between(command: str, steps: list[Step], done: list[StepDone]) -> Stopped:
    """Say that a fleet rollout stopped this run between migrations: what ran, what was not started."""
    left = [s.version for s in steps[len(done):]]
    return Stopped(f"Stopped between migrations because the rollout asked to ({fleet_stop.STOP_FILE_ENV} exists): "
                   f"{len(done)} of {len(steps)} ran; not started: {', '.join(left)}.",
                   hint="Run the same command again to resume.", details={RUN_KEYS[command]: [d.version for d in done]})


def plan_id_required(command: str, words: tuple[str, ...] = ()) -> UsageError:
    """The refusal of a real run without --plan-id under --require-plan-id (or MIGRATIONS_REQUIRE_PLAN_ID=1)."""
    return UsageError(f"{command} requires --plan-id here (--require-plan-id or MIGRATIONS_REQUIRE_PLAN_ID=1); "
                      "nothing was executed.", code="plan_id_required",
                      hint=f"Preview with {command_line(command, (*words, '--dry-run'))}, show the person the SQL "
                           "and findings, then run the command it prints once they confirm.")


def completed_plan(conn: db.Connection, command: str, plan_id: str, current: Plan, target: str | None,
                   options: RunOptions) -> list[str] | None:
    """Return the versions of the plan with this id if it already ran to the end (planning.completed_plan)."""
    with db.server_errors(conn, "reading the history"):
        db.set_local_timeouts(conn, options.settings.lock_timeout_ms or DEFAULT_READ_LOCK_TIMEOUT_MS,
                              READ_STATEMENT_TIMEOUT_MS)
        history = db.load_history(conn) or []
        conn.commit()
    return planning.completed_plan(command, plan_id, history, current, target)


def check_plan_id(command: str, expected: str | None, actual: str, preview: str = "") -> None:
    """Refuse when the plan the user confirmed is no longer what would run; preview: the command to look again."""
    if expected is not None and expected != actual:
        raise Refused(f"The plan changed since it was previewed (confirmed {expected}, now {actual}); "
                      "nothing was executed.", code="plan_changed",
                      hint=f"Preview again with {preview or command_line(command, ('--dry-run',))}, review the new "
                           "plan, then confirm its id.")
