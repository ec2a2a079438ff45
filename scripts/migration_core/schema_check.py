"""Live-schema drift (issue 4): compare the live schema with the snapshot recorded after the last run.

Glue between snapshot_store and the commands; the caller passes the run's connection in, inside a transaction
whose lock_timeout bounds every catalog read (a read blocked by a table lock makes the check `skipped`, naming
the session that holds the lock, instead of hanging).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from . import config
from .db import describe_exclusive_holders
from .errors import Refused
from .model import Plan
from .snapshot import catalog_fingerprint, take_snapshot
from .output import command_line
from .snapshot_store import UNREVIEWED, load_last_summary, load_snapshot, record_current_snapshot

if TYPE_CHECKING:  # the diff loads only when the catalog changed since the last snapshot
    from .schema_diff import SchemaChange

SHOWN_CHANGES = 10
BLOCKED = ("55P03", "57014")  # lock_timeout, statement_timeout: a catalog read waited behind a lock
PARTIAL = "statements completed"  # in the history row of a statement-by-statement migration that stopped part way


def suggest(script: str, *words: str) -> str:
    """Return a runnable command for a hint: the history schema is named whenever it is not the default."""
    schema = config.history_schema()
    named = ("--history-schema", schema) if schema != config.DEFAULT_HISTORY_SCHEMA else ()
    if config.history_table() != config.DEFAULT_HISTORY_TABLE:
        named += ("--history-table", config.history_table())
    return command_line(script, (*named, *words))


@dataclass(frozen=True)
class SchemaCheck:
    # clean / drift: compared; no_snapshot: nothing recorded yet; stale: the reference cannot tell the tool's own
    # changes from others (a run died before recording one, or started from such a reference): its `changes` are
    # the differences from that last snapshot, to review; skipped: the catalog could not be read (see reason).
    status: Literal["clean", "drift", "no_snapshot", "stale", "skipped"]
    changes: list[SchemaChange]
    taken_at: datetime | None
    reason: str | None = None


def check_schema(conn: Any, current: Plan) -> SchemaCheck:
    """Diff the live schema against the last snapshot, when that snapshot matches the applied versions."""
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT schema_check")
    try:
        check = compare_with_last_snapshot(conn, current)
    except Exception as err:  # the driver's error, duck-typed: this module stays free of psycopg2
        if getattr(err, "pgcode", None) not in BLOCKED or conn.closed:
            raise
        with conn.cursor() as cur:
            cur.execute("ROLLBACK TO SAVEPOINT schema_check")
        return SchemaCheck("skipped", [], None, f"a catalog read waited too long for a lock: "
                                                f"{describe_exclusive_holders(conn)}")
    with conn.cursor() as cur:
        cur.execute("RELEASE SAVEPOINT schema_check")
    return check


def compare_with_last_snapshot(conn: Any, current: Plan) -> SchemaCheck:
    record = load_last_summary(conn)
    if record is None:
        return SchemaCheck("no_snapshot", [], None)
    changes, unreviewed = live_changes(conn, record.id, record.fingerprint)
    if list(record.applied_versions) != current.applied_versions or unreviewed:
        return SchemaCheck("stale", changes, record.taken_at,
                           "the last snapshot does not match the applied migrations (a run stopped before recording "
                           "one, or started from such a snapshot), so changes made outside the migrations cannot be "
                           f"told apart; review the differences listed, then run {suggest('apply', '--record-schema')}")
    # A statement-by-statement migration that stopped part way since the snapshot (a killed runner) changed the
    # schema with no success row to show for it: its objects are the tool's, not drift, but cannot be told apart.
    partial = [r.version for r in current.failed
               if PARTIAL in (r.error_message or "") and r.applied_at > record.taken_at]
    if partial and changes:
        return SchemaCheck("stale", changes, record.taken_at,
                           f"{', '.join(partial)} stopped part way after the last snapshot (its completed statements "
                           "stay applied), so changes made outside the migrations cannot be told apart; run it to "
                           f"the end (apply), or review the differences listed, then run {suggest('apply', '--record-schema')}")
    return SchemaCheck("drift" if changes else "clean", changes, record.taken_at)


def live_changes(conn: Any, snapshot_id: int, fingerprint: str | None) -> tuple[list[SchemaChange], bool]:
    """Return the differences between a recorded snapshot and the live schema, and whether it was unreviewed.

    When the catalog fingerprint recorded with it is still the live one, no catalog row the snapshot reads has
    changed, so neither has the snapshot: no difference, without taking one (only reviewed rows have one).
    """
    if fingerprint is not None and catalog_fingerprint(conn) == fingerprint:
        return [], False
    from .schema_diff import diff_snapshots
    recorded = load_snapshot(conn, snapshot_id)
    return diff_snapshots(recorded, take_snapshot(conn)), bool(recorded.get(UNREVIEWED))


def refuse_schema_drift(check: SchemaCheck) -> None:
    """Refuse to run while the schema was changed outside the migrations, or could not be checked."""
    if check.status == "skipped":
        raise Refused(f"The live-schema check could not run: {check.reason}; nothing was changed.",
                      code="schema_check_blocked",
                      hint="Wait for that session to finish (or end it), then run the command again; "
                           "--allow-schema-drift runs without the check.")
    if check.status != "drift":
        return
    shown = "; ".join(c.describe() for c in check.changes[:SHOWN_CHANGES])
    more = f" (and {len(check.changes) - SHOWN_CHANGES} more)" if len(check.changes) > SHOWN_CHANGES else ""
    raise Refused(f"The live schema changed outside the migrations since the last run: {shown}{more}.",
                  code="schema_drift",
                  hint="Capture the change in a migration (generate_migration.py --name NAME with the same SQL, "
                       "then apply --baseline or --allow-schema-drift once), or undo it by hand; run "
                       f"{suggest('plan', '--schema-diff')} to see every difference; after review, "
                       f"{suggest('apply', '--record-schema')} makes the live schema the reference.")


def record_after_run(conn: Any, applied_versions: list[str], unreviewed: bool = False) -> None:
    """Record the schema as the migrations left it, the reference for the next drift check."""
    record_current_snapshot(conn, applied_versions, unreviewed)
    conn.commit()


def applied_after(command: str, applied: list[str], done: list[str]) -> list[str]:
    """Return the applied versions, in application order, after a run that applied or rolled back `done`."""
    if command == "apply":
        return applied + done
    undone = set(done)
    return [v for v in applied if v not in undone]
