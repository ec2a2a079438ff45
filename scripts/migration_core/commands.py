"""The commands: glue parsing, planning and the database; return results, never print.

apply and rollback live in running.py, generate (no database, so no driver) in generating.py; this module holds
the rest and the helpers they share.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import config, db, lock, parsing, planning, schema_check
from .errors import Interrupted, MigrationError
from .model import SMALL_TABLE_ROWS, Migration, PlanResult, RunOptions

if TYPE_CHECKING:  # imported where built: plan never builds one (see model.LATER)
    from .model import ForgetResult, RecordResult, SchemaDiffResult, SchemaRecordResult

T = TypeVar("T")
READ_STATEMENT_TIMEOUT_MS = 60_000  # the tool's own catalog reads: generous, but never without end
DEFAULT_READ_LOCK_TIMEOUT_MS = 5_000


def plan(migrations_dir: Path, target: str | None = None, check_live_schema: bool = True,
         lock_timeout_ms: int = DEFAULT_READ_LOCK_TIMEOUT_MS, small_table_rows: int = SMALL_TABLE_ROWS,
         verbose: bool = False) -> PlanResult:
    """Report applied, pending, drift (files and live schema), missing, out-of-order, failed and risks.

    Strictly read-only: the connection's transactions are READ ONLY, nothing is created, and no read waits
    behind a table lock for longer than lock_timeout_ms. The pending migrations' risks are judged as one run
    against the live tables (read in the same transaction; small_table_rows: see risk.live.is_small).
    """
    migrations = parsing.load_migrations(migrations_dir)
    conn = db.connect(config.read_db_url(), read_only=True)
    with closing(conn):
        def read() -> tuple[planning.Plan, Any, list[dict[str, str]], dict[str, Any]]:
            with db.server_errors(conn, "reading the history and the live schema"):
                db.set_local_timeouts(conn, lock_timeout_ms, READ_STATEMENT_TIMEOUT_MS)
                current = planning.compute_plan(migrations, db.load_history(conn))
                schema = schema_check.check_schema(conn, current) if check_live_schema else None
                invalid = db.find_invalid_indexes(conn)
                risks = assess_risks(current.pending, conn.server_version, conn=conn,
                                     small_table_rows=small_table_rows, verbose=verbose)
                conn.rollback()
            return current, schema, invalid, risks
        current, schema, invalid, risks = interruptible([conn], read)
    steps = planning.select_apply_steps(current, migrations, target)
    return PlanResult(current, migrations_dir, planning.compute_plan_id("apply", current, steps, target), target,
                      risks, schema, invalid,
                      invocation(migrations_dir, "--target", target, RunOptions(small_table_rows=small_table_rows)),
                      verbose)


def invocation(migrations_dir: Path, target_flag: str = "--target", target: str | None = None,
               options: RunOptions | None = None) -> tuple[str, ...]:
    """Return the options a suggested command repeats to plan and run exactly as this one, as argv words.

    The migrations directory is absolute, so the command works from any directory; the history schema is named
    whenever it is not the default, even when MIGRATIONS_SCHEMA set it (another shell may not have it).
    """
    words = ["--migrations-dir", os.path.abspath(migrations_dir)]
    if config.history_schema() != config.DEFAULT_HISTORY_SCHEMA:
        words += ["--history-schema", config.history_schema()]
    if config.history_table() != config.DEFAULT_HISTORY_TABLE:
        words += ["--history-table", config.history_table()]
    if target is not None:
        words += [target_flag, target]
    return (*words, *(run_option_words(options) if options else ()))


def run_option_words(options: RunOptions) -> list[str]:
    """Return the flags that set the run options differing from the defaults (never --dry-run or --plan-id)."""
    usual = RunOptions()
    words = [] if options.max_risk == usual.max_risk else (
        ["--allow-risk"] if options.max_risk == "high" else ["--max-risk", options.max_risk])
    words += [flag for flag, chosen in (("--allow-out-of-order", options.allow_out_of_order),
                                        ("--allow-schema-drift", options.allow_schema_drift)) if chosen]
    for flag, value, default in (
            ("--lock-timeout", options.lock_timeout_s, usual.lock_timeout_s),
            ("--lock-timeout-ms", options.settings.lock_timeout_ms, usual.settings.lock_timeout_ms),
            ("--statement-timeout-ms", options.settings.statement_timeout_ms, usual.settings.statement_timeout_ms),
            ("--lock-retries", options.settings.lock_retries, usual.settings.lock_retries),
            ("--small-table-rows", options.small_table_rows, usual.small_table_rows)):
        if value != default:
            words += [flag, str(value)]
    return words


def pending_versions(migrations_dir: Path, lock_timeout_ms: int = DEFAULT_READ_LOCK_TIMEOUT_MS) -> set[str]:
    """Return the versions of the files not yet applied to DB_URL's database (lint --pending).

    Read-only and bounded as plan is: an applied history, whatever its findings, cannot change any more, so CI
    lints only what is still to come.
    """
    migrations = parsing.load_migrations(migrations_dir)
    conn = db.connect(config.read_db_url(), read_only=True)
    with closing(conn):
        def read() -> planning.Plan:
            with db.server_errors(conn, "reading the history"):
                db.set_local_timeouts(conn, lock_timeout_ms, READ_STATEMENT_TIMEOUT_MS)
                current = planning.compute_plan(migrations, db.load_history(conn))
                conn.rollback()
            return current
        return {m.version for m in interruptible([conn], read).pending}


def interruptible(conns: list[Any], work: Callable[[], T],
                  interrupted: Callable[[int], Interrupted] | None = None) -> T:
    """Run database work so that SIGINT/SIGTERM cancel it on the server at once and end the command.

    interrupted(signal) is the error then raised; by default it says nothing was changed.
    """
    with lock.cancel_on_signal(conns) as signals:
        try:
            result = lock.run_in_worker(work)
        except MigrationError:
            if not signals:
                raise
            result = None
    if signals:
        raise (interrupted or nothing_changed)(signals[0])
    return result  # type: ignore[return-value]


def nothing_changed(signum: int) -> Interrupted:
    return Interrupted(f"Interrupted by signal {signum}; nothing was changed.",
                       hint="Run the command again when you are ready.")


def schema_diff(against: str | None) -> SchemaDiffResult:
    """Compare the live schema with the last recorded snapshot, or with another database's live schema."""
    from .model import SchemaDiffResult
    conn = db.connect(config.read_db_url(), read_only=True)
    with closing(conn), db.server_errors(conn, "reading the live schema"):
        db.set_local_timeouts(conn, DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS)
        if against is None:
            check = schema_check.check_schema(conn, planning.compute_plan([], db.load_history(conn)))
            return SchemaDiffResult("last recorded snapshot", check.changes, check.status)
        from .schema_diff import diff_snapshots
        from .snapshot import take_snapshot
        other = db.connect(against, read_only=True, label="--against")
        with closing(other):
            changes = diff_snapshots(take_snapshot(other), take_snapshot(conn))
        return SchemaDiffResult(config.describe_target(against, "--against"), changes, "drift" if changes else "clean")


def assess_risks(migrations: list[Migration], server_version: int, with_down: bool = True, conn: Any = None,
                 small_table_rows: int = SMALL_TABLE_ROWS, verbose: bool = False) -> dict[str, Any]:
    """Return each migration's risk findings, judged for this server's version as one run of their up sections
    (issues 5, 10). With conn, in an open transaction bounded by SET LOCAL timeouts, the tables the findings are
    about are judged by their live size, read in one catalog query for the whole run."""
    if not migrations:
        return {}
    from . import risk  # the rules load only when there is something to judge: plan's start-up stays lean
    read = None if conn is None else (lambda tables: risk.read_table_stats(conn, tables))
    return risk.assess_run(migrations, server_version, with_down=with_down, read_tables=read,
                           small_table_rows=small_table_rows, verbose=verbose)


def assess_run_risks(conn: db.Connection, command: str, migrations: list[Migration],
                     options: RunOptions) -> dict[str, Any]:
    """Return the risks of apply's up sections or rollback's down sections, judged live in a read of their own
    that is bounded like every read of the tool (and only happens when a finding is about a live table)."""
    from . import risk

    def read(tables: list[Any]) -> dict[Any, Any]:
        with db.server_errors(conn, "reading the sizes of the tables the run touches"):
            db.set_local_timeouts(conn, options.settings.lock_timeout_ms or DEFAULT_READ_LOCK_TIMEOUT_MS,
                                  READ_STATEMENT_TIMEOUT_MS)
            found = risk.read_table_stats(conn, tables)
            conn.rollback()
        return found
    if not migrations:
        return {}
    return risk.assess_run(migrations, conn.server_version, direction="down" if command == "rollback" else "up",
                           with_down=False, read_tables=read, small_table_rows=options.small_table_rows,
                           verbose=options.verbose)


def record_without_running(migrations_dir: Path, action: str, version: str, lock_timeout_s: float,
                           dry_run: bool = False) -> RecordResult:
    """Baseline up to `version`, or accept the edited checksum of drifted `version`: history only, no SQL runs.

    A dry run, as elsewhere, takes no lock and writes nothing.
    """
    from .model import RecordResult
    migrations = parsing.load_migrations(migrations_dir)
    with locked_connection(lock_timeout_s, dry_run) as conn, db.server_errors(conn, f"recording the {action}"):
        db.set_local_timeouts(conn, DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS)
        current = planning.compute_plan(migrations, db.load_history(conn))
        unreviewed = False
        if action == "baseline":  # adopting a database: its schema as it stands becomes the reference
            chosen = planning.select_baseline(current, migrations, version)
            note = "baseline: recorded as applied without running (the schema already had it)"
        else:  # a reviewed file edit is no licence for out-of-band schema changes
            check = schema_check.check_schema(conn, current)
            schema_check.refuse_schema_drift(check)
            unreviewed = check.status == "stale"  # a reviewed file edit does not review the schema
            chosen = planning.select_accepted_drift(current, migrations, version)
            old = next(d.recorded_checksum for d in current.drift if d.version == version)
            note = f"accepted checksum change after review: was {old}"
        if chosen and not dry_run:
            record_noted(conn, chosen, note, current.applied, action, unreviewed)
        return RecordResult(action, [m.version for m in chosen], dry_run)  # type: ignore[arg-type]


def record_schema(lock_timeout_s: float, dry_run: bool = False) -> SchemaRecordResult:
    """After review, record the live schema as the reference of the drift check (ends `stale` and `drift`)."""
    from .model import SchemaRecordResult
    with locked_connection(lock_timeout_s, dry_run) as conn, db.server_errors(conn, "recording the live schema"):
        db.set_local_timeouts(conn, DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS)
        current = planning.compute_plan([], db.load_history(conn))
        applied = current.applied_versions
        check = schema_check.check_schema(conn, current)
        if check.status == "skipped":
            schema_check.refuse_schema_drift(check)
        if not dry_run:
            schema_check.record_after_run(conn, applied)
        return SchemaRecordResult(check.status, check.changes, dry_run)


@contextmanager
def locked_connection(lock_timeout_s: float, dry_run: bool) -> Iterator[db.Connection]:
    """Yield a connection under the runner lock (held on a second connection); a dry run: read-only, no lock."""
    url = config.read_db_url()
    conn = db.connect(url, read_only=dry_run)
    with closing(conn):
        if dry_run:
            yield conn
            return
        lock_conn = db.connect(url, role="-lock")
        with closing(lock_conn), db.server_errors(lock_conn, "taking the runner lock"), \
                lock.runner_lock(lock_conn, lock_timeout_s, db.own_application_name(conn)):
            yield conn


def record_noted(conn: db.Connection, chosen: list[Migration], note: str, applied_rows: list[Any],
                 action: str, unreviewed: bool = False) -> None:
    """Write the noted success rows, then the snapshot that matches the new applied list, and commit."""
    conn.commit()  # the reads' transaction (and its timeouts) ends before anything is created
    db.ensure_schema_table(conn)
    write_noted(conn, chosen, note, applied_rows, action, unreviewed)
    conn.commit()


def write_noted(conn: db.Connection, chosen: list[Migration], note: str, applied_rows: list[Any],
                action: str, unreviewed: bool = False) -> None:
    """Write the noted success rows and the matching snapshot in conn's transaction, without committing (adoption
    writes them in the same transaction as the rename of the other tool's table)."""
    # An accepted checksum keeps its original applied_at, so the application order does not change.
    applied_at = {r.version: r.applied_at for r in applied_rows} if action != "baseline" else {}
    db.insert_noted_successes(conn, [{"version": m.version, "name": m.name, "checksum": m.checksum,
                                      "note": note, "applied_at": applied_at.get(m.version)} for m in chosen],
                              accepted=action != "baseline")
    applied = [r.version for r in applied_rows]
    already = set(applied)
    schema_check.record_current_snapshot(conn, applied + [m.version for m in chosen if m.version not in already],
                                         unreviewed)


def forget_failed(migrations_dir: Path, version: str, lock_timeout_s: float, dry_run: bool = False) -> ForgetResult:
    """Acknowledge the failed attempt(s) of a version whose file no longer exists: append one 'forgotten' row.

    History stays append-only: the failed rows stay as they are, and plan stops listing them because a newer
    'forgotten' row of the version stands after them. A dry run, as elsewhere, takes no lock and writes nothing.
    """
    from .model import ForgetResult
    migrations = parsing.load_migrations(migrations_dir)
    with locked_connection(lock_timeout_s, dry_run) as conn, db.server_errors(conn, "recording the forgotten attempt"):
        db.set_local_timeouts(conn, DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS)
        history = db.load_history(conn) or []
        latest = planning.select_forgettable(planning.compute_plan(migrations, history), migrations, version)[-1]
        since = max([r.id for r in history if r.version == version and r.status != "failed"], default=0)
        attempts = [r for r in history if r.version == version and r.status == "failed" and r.id > since]
        planning.refuse_forgetting_partial(version, attempts, schema_check.PARTIAL)
        ids = [r.id for r in attempts]
        if not dry_run:
            conn.commit()  # the reads' transaction (and its timeouts) ends before the write
            db.record_forgotten(conn, {"version": version, "name": latest.name, "checksum": latest.checksum,
                                       "direction": latest.direction,
                                       "note": f"forgotten: failed attempt(s) {', '.join(map(str, ids))} of a "
                                               "migration whose file no longer exists"})
        return ForgetResult(version, ids, dry_run)
