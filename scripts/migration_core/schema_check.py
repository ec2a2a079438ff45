"""Live-schema drift (issue 4): compare the live schema with the snapshot recorded after the last run.

Glue between snapshot_store and the commands; the caller passes the run's connection in.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .errors import Refused
from .schema_diff import SchemaChange, diff_snapshots
from .snapshot import take_snapshot
from .snapshot_store import load_last_record, record_current_snapshot

SHOWN_CHANGES = 10


@dataclass(frozen=True)
class SchemaCheck:
    # clean / drift: compared; no_snapshot: nothing recorded yet; stale: the history moved since the last snapshot
    # (a run that died before recording one), so changes could not be told apart from the tool's own.
    status: Literal["clean", "drift", "no_snapshot", "stale"]
    changes: list[SchemaChange]
    taken_at: datetime | None


def check_schema(conn: Any, applied_versions: list[str]) -> SchemaCheck:
    """Diff the live schema against the last snapshot, when that snapshot matches the applied versions."""
    record = load_last_record(conn)
    if record is None:
        return SchemaCheck("no_snapshot", [], None)
    if list(record.applied_versions) != applied_versions:
        return SchemaCheck("stale", [], record.taken_at)
    changes = diff_snapshots(record.snapshot, take_snapshot(conn))
    return SchemaCheck("drift" if changes else "clean", changes, record.taken_at)


def refuse_schema_drift(check: SchemaCheck) -> None:
    """Refuse to run while the schema was changed outside the migrations."""
    if check.status != "drift":
        return
    shown = "; ".join(c.describe() for c in check.changes[:SHOWN_CHANGES])
    more = f" (and {len(check.changes) - SHOWN_CHANGES} more)" if len(check.changes) > SHOWN_CHANGES else ""
    raise Refused(f"The live schema changed outside the migrations since the last run: {shown}{more}.",
                  code="schema_drift",
                  hint="Capture the change in a migration (python scripts/generate_migration.py --name ... with the "
                       "same SQL, then apply --baseline or --allow-schema-drift once), or undo it by hand; run "
                       "python scripts/plan_migrations.py --schema-diff to see every difference.")


def record_after_run(conn: Any, applied_versions: list[str]) -> None:
    """Record the schema as the migrations left it, the reference for the next drift check."""
    record_current_snapshot(conn, applied_versions)
    conn.commit()


def applied_after(command: str, applied: list[str], done: list[str]) -> list[str]:
    """Return the applied versions, in application order, after a run that applied or rolled back `done`."""
    if command == "apply":
        return applied + done
    undone = set(done)
    return [v for v in applied if v not in undone]
