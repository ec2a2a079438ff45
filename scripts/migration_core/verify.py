"""Prove rollbacks on a scratch database: each down must undo its up exactly, and the up must run again (issue 4).

For each migration verified: snapshot, up, snapshot, down, snapshot, up again, snapshot. Earlier migrations are
applied (up only) first, so each one meets the schema it was written for. Also holds the report's rendering,
for output.py to call.
Imports at module level: stdlib, model, errors, parsing, planning, schema_diff, snapshot (never psycopg2, so
output.py may import this module); the database modules are imported inside the functions that run SQL.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import config, parsing, planning
from .errors import ConfigError, Interrupted, MigrationError, Refused, UsageError
from .model import Direction, Migration
from .schema_diff import SchemaChange, diff_snapshots
from .snapshot import take_snapshot

Status = Literal["ok", "down_leaves_difference", "down_failed", "up_failed", "up_not_rerunnable", "irreversible",
                 "not_run"]
Progress = Callable[[str], None]
STATUS_TEXT = {"ok": "ok", "down_leaves_difference": "DOWN LEAVES DIFFERENCE", "down_failed": "DOWN FAILED",
               "up_failed": "UP FAILED", "up_not_rerunnable": "UP NOT RE-RUNNABLE", "irreversible": "IRREVERSIBLE",
               "not_run": "not run"}


@dataclass(frozen=True)
class MigrationCheck:
    """What the up/down/up cycle showed for one migration."""

    version: str
    name: str
    status: Status
    error: str | None = None                        # the server's error, or why the check stopped
    differences: tuple[SchemaChange, ...] = ()       # before up vs after down (or after up vs after up again)
    duration_ms: float = 0.0


@dataclass(frozen=True)
class VerifyResult:
    checks: list[MigrationCheck]        # the migrations verified, in version order
    prepared: list[str]                 # versions applied (up only) on the scratch database to reach them
    scratch: str                        # where it ran, without any password
    allow_irreversible: bool = False

    @property
    def problems(self) -> list[MigrationCheck]:
        tolerated = {"ok", "irreversible"} if self.allow_irreversible else {"ok"}
        return [c for c in self.checks if c.status not in tolerated]


def verify(migrations_dir: Path, *, pending: bool = False, from_version: str | None = None,
           to_version: str | None = None, scratch_url: str | None = None, allow_irreversible: bool = False,
           progress: Progress = lambda _: None) -> VerifyResult:
    """Verify the chosen migrations on a scratch database; never write to the target database."""
    migrations = parsing.load_migrations(migrations_dir)
    pending_versions = read_pending_versions(migrations) if pending else None
    chosen = select_versions(migrations, pending_versions, from_version, to_version)
    if not chosen:
        return VerifyResult([], [], "no scratch database needed", allow_irreversible)
    checks, prepared, where = check_on_scratch(migrations, chosen, scratch_url, progress)
    return VerifyResult(checks, prepared, where, allow_irreversible)


def check_on_scratch(migrations: list[Migration], chosen: set[str], scratch_url: str | None,
                     progress: Progress) -> tuple[list[MigrationCheck], list[str], str]:
    """Run the checks on a scratch database; on SIGINT or SIGTERM, cancel them, drop it, then raise Interrupted."""
    # Imported here: output.py imports this module and must not load psycopg2.
    from .scratch import open_scratch, run_cancellable, signals_deferred
    with signals_deferred() as received:
        try:
            with open_scratch(scratch_url, progress) as scratch:
                def work() -> tuple[list[MigrationCheck], list[str]]:
                    return run_checks(scratch.conn, migrations, chosen, progress, stop=lambda: bool(received))
                # A signal during the scratch database's creation: start nothing, just clean up.
                checks, prepared = ([], []) if received else run_cancellable(scratch.conn, work, received)
        except Exception:
            if not received:
                raise
            # else: a statement failed because it was cancelled; the signal is the news
    if received:
        raise Interrupted(f"Interrupted by signal {received[0]}: verify stopped and cleaned up its scratch database "
                          "(the DB_URL database was never written).",
                          hint="Run python scripts/verify_migrations.py again to verify.")
    return checks, prepared, scratch.where


def read_pending_versions(migrations: list[Migration]) -> set[str]:
    """Return the versions not applied to the DB_URL database (read-only connection)."""
    from . import db
    conn = db.connect(config.read_db_url(), read_only=True)
    try:
        current = planning.compute_plan(migrations, db.load_history(conn))
    finally:
        conn.close()
    return {m.version for m in current.pending}


def select_versions(migrations: list[Migration], pending: set[str] | None, from_version: str | None,
                    to_version: str | None) -> set[str]:
    """Return the versions to verify: all, the pending ones, and/or those in [from, to]."""
    known = {m.version for m in migrations}
    for flag, version in (("--from", from_version), ("--to", to_version)):
        if version is not None and version not in known:
            raise UsageError(f"Unknown version {version!r} for {flag}: no such migration file.",
                             code="unknown_version", hint="Run python scripts/plan_migrations.py to list the versions.")
    if from_version is not None and to_version is not None and from_version > to_version:
        raise UsageError(f"--from {from_version} comes after --to {to_version}: the range holds no migration.",
                         hint="Give the older version to --from and the newer one to --to.")
    return {v for v in known if (pending is None or v in pending) and (from_version is None or v >= from_version)
            and (to_version is None or v <= to_version)}


def run_checks(conn: Any, migrations: list[Migration], chosen: set[str], progress: Progress,
               stop: Callable[[], bool] = lambda: False) -> tuple[list[MigrationCheck], list[str]]:
    """Walk the migrations in version order: apply the others, cycle the chosen, stop where the state is lost.

    stop() says a signal arrived: no further migration starts.
    """
    checks: list[MigrationCheck] = []
    prepared: list[str] = []
    broken: str | None = None  # the version after which the scratch schema is not what later ones expect
    last = max(chosen)
    for migration in (m for m in migrations if m.version <= last):
        if stop():
            break
        if broken:
            if migration.version in chosen:
                checks.append(MigrationCheck(migration.version, migration.name, "not_run",
                                             f"not run: {broken} left the scratch database unusable"))
            continue
        if migration.version not in chosen:
            error = run_section(conn, migration, "up")
            if error:  # an earlier migration cannot even be applied: nothing later can be verified
                checks.append(MigrationCheck(migration.version, migration.name, "up_failed", error))
                broken = migration.version
            else:
                prepared.append(migration.version)
            continue
        progress(f"verifying {migration.version} ...")
        check, usable = check_migration(conn, migration)
        checks.append(check)
        broken = None if usable else migration.version
    return checks, prepared


def check_migration(conn: Any, migration: Migration) -> tuple[MigrationCheck, bool]:
    """Run snapshot, up, snapshot, down, snapshot, up again, snapshot; judge it, and say if the run can go on."""
    started = time.perf_counter()

    def judged(status: Status, error: str | None = None,
               differences: list[SchemaChange] | None = None) -> MigrationCheck:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return MigrationCheck(migration.version, migration.name, status, error, tuple(differences or ()), elapsed)

    before = take_snapshot(conn)
    error = run_section(conn, migration, "up")
    if error:
        return judged("up_failed", error), False
    after_up = take_snapshot(conn)
    if not migration.reversible:
        return judged("irreversible"), True
    error = run_section(conn, migration, "down")
    if error:  # rolled back, so the scratch database is as the up left it (unless it ran statement by statement)
        return judged("down_failed", error), is_transactional(migration)
    left = diff_snapshots(before, take_snapshot(conn))
    error = run_section(conn, migration, "up")
    if error and left:  # the up most likely fails on what the down left behind: that is the cause to report
        return judged("down_leaves_difference", f"and the up then fails: {error}", left), False
    if error:
        return judged("up_not_rerunnable", error), False
    if left:
        return judged("down_leaves_difference", None, left), True
    again = diff_snapshots(after_up, take_snapshot(conn))
    if again:
        return judged("up_not_rerunnable", "the up gives a different schema the second time", again), True
    return judged("ok"), True


def run_section(conn: Any, migration: Migration, direction: Direction) -> str | None:
    """Run one section as apply would: one transaction, or statement by statement under `-- TRANSACTION: none`."""
    sql, first_line = migration.section(direction)
    if is_transactional(migration):
        return first_error(conn, [(sql, first_line)])
    from .statements import parse_statements  # pglast: loaded only for such migrations
    pieces = [(s.sql, s.line) for s in parse_statements(sql, first_line, migration.path)]
    conn.autocommit = True  # CREATE INDEX CONCURRENTLY and friends refuse to run inside a transaction block
    try:
        return first_error(conn, pieces)
    finally:
        if not conn.closed:
            conn.autocommit = False


def is_transactional(migration: Migration) -> bool:
    return bool(migration.transactional)


def first_error(conn: Any, pieces: list[tuple[str, int]]) -> str | None:
    """Run each piece of SQL (committing each outside autocommit); stop at the first error, rolled back."""
    import psycopg2
    for sql, first_line in pieces:
        try:
            with conn.cursor() as cur:
                cur.execute(sql)  # no parameters: a % in the migration stays a %
            if not conn.autocommit:
                conn.commit()
        except psycopg2.Error as err:
            if conn.closed:
                raise ConfigError("The connection to the scratch database was lost.", code="connection_lost",
                                  hint="Check the scratch server, then run python scripts/verify_migrations.py "
                                       "again.") from None
            if not conn.autocommit:
                conn.rollback()
            return describe_error(err, sql, first_line)
    return None


def describe_error(err: Any, sql: str, first_line: int) -> str:
    """Return `SQLSTATE 42P07 at line 12: relation "x" already exists`, the line counted in the file."""
    position = err.diag.statement_position
    where = f" at line {first_line + sql[: int(position) - 1].count(chr(10))}" if position else ""
    message = err.diag.message_primary or str(err).strip().split("\n")[0]
    return f"SQLSTATE {err.pgcode or '?'}{where}: {message}"


# ---- output (called by output.py) ---------------------------------------------------------------------------

def run_error(result: VerifyResult) -> MigrationError | None:
    """Return the exit-3 error when any migration failed verification."""
    problems = result.problems
    if not problems:
        return None
    listed = ", ".join(f"{c.version} ({c.status})" for c in problems)
    return Refused(f"{len(problems)} of {len(result.checks)} migration(s) not verified: {listed}.",
                   code="verify_failed",
                   hint="Make each down section undo its up exactly (the differences listed say what it leaves), "
                        "make each up runnable again after its down, then run "
                        "python scripts/verify_migrations.py again.")


def to_json_payload(result: VerifyResult) -> dict[str, Any]:
    return {"scratch": result.scratch, "prepared": result.prepared,
            "verified": [c.version for c in result.checks if c.status == "ok"],
            "problems": [c.version for c in result.problems],
            "checks": [{"version": c.version, "name": c.name, "status": c.status, "error": c.error,
                        "differences": [d.to_dict() for d in c.differences], "duration_ms": c.duration_ms}
                       for c in result.checks]}


def to_human(result: VerifyResult) -> str:
    if not result.checks:
        return "Nothing to verify."
    lines = [f"Verifying {len(result.checks)} migration(s) on {result.scratch}"
             + (f", after applying {len(result.prepared)} earlier one(s)." if result.prepared else ".")]
    width = max(len(STATUS_TEXT[c.status]) for c in result.checks)
    for check in result.checks:
        timing = f"  ({check.duration_ms:.0f} ms)" if check.status != "not_run" else ""
        lines.append(f"  {STATUS_TEXT[check.status]:<{width}}  {check.version}{timing}")
        if check.differences:
            lines.append("      after up + down, the schema differs from before the up:"
                         if check.status == "down_leaves_difference"
                         else "      the second up gives a schema that differs from the first:")
            from .output import change_lines  # before and after in full, wrapped, for long definitions
            lines += [line for change in check.differences for line in change_lines(change, "        ")]
        if check.error:
            lines.append(f"      {check.error}")
    problems = len(result.problems)
    lines.append(f"{problems} of {len(result.checks)} migration(s) not verified." if problems else
                 f"All {len(result.checks)} migration(s) verified: each down restores the schema exactly and "
                 "each up runs again after it." if all(c.status == "ok" for c in result.checks) else
                 "No problems (irreversible migrations allowed).")
    return "\n".join(lines)
