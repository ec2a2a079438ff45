"""The result records that plan never builds: what apply and rollback did, and what the rarer commands (baseline,
accept-checksum, record-schema, schema diff, forget-failed, generate) did. Imports: stdlib and model only.

They live apart from model.py only for start-up time: creating a frozen dataclass compiles six generated methods
(about 1 ms each class on a busy machine), and plan imports model on every run. model re-exports every name here
on first use (model.__getattr__), so `from .model import RunResult` works everywhere as before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .model import Direction, Step, StepFailed


@dataclass(frozen=True)
class StepDone:
    """One migration run to the end in one direction."""

    version: str
    name: str
    direction: Direction
    duration_ms: float
    notices: tuple[str, ...] = ()    # RAISE NOTICE / WARNING messages the migration sent


@dataclass(frozen=True)
class RecordResult:
    """Versions recorded as applied without running them: a baseline, or an accepted checksum change."""

    action: Literal["baseline", "accept_checksum"]
    versions: list[str]
    dry_run: bool = False


@dataclass(frozen=True)
class SchemaDiffResult:
    """Differences between the live schema and a reference: the last snapshot or another database."""

    reference: str          # "last recorded snapshot" or the other database's host/db (never its password)
    changes: list[Any]      # schema_diff.SchemaChange
    status: str             # clean, drift, no_snapshot, stale


@dataclass(frozen=True)
class SchemaRecordResult:
    """The live schema recorded as the drift check's reference, after review (apply --record-schema)."""

    previous_status: str    # what the check said before: clean, drift, stale, no_snapshot
    changes: list[Any]      # schema_diff.SchemaChange: what the new reference accepts
    dry_run: bool = False


@dataclass(frozen=True)
class RunResult:
    """What apply or rollback did (or, with dry_run, would do)."""

    command: Literal["apply", "rollback"]
    steps: list[Step]
    done: list[StepDone]
    failed: StepFailed | None
    dry_run: bool
    plan_id: str
    risks: dict[str, Any] = field(default_factory=dict)     # version -> risk_report.MigrationRisk of each step
    would_refuse: dict[str, Any] | None = None                # dry run: the refusal the real run would meet
    invocation: tuple[str, ...] = ()     # options a suggested command repeats (argv words): see output.invocation
    elapsed_ms: float | None = None      # real run: from taking the lock to the last step's end
    now_at: str | None = None            # real run: the newest applied version afterwards (None: none applied)
    retried: list[str] | None = None     # --plan-id of a plan already run to the end: its versions; nothing ran


@dataclass(frozen=True)
class ForgetResult:
    """apply --forget-failed: the failed attempts acknowledged for a version whose file no longer exists."""

    version: str
    forgotten: list[int]        # ids of the failed rows acknowledged
    dry_run: bool = False


@dataclass(frozen=True)
class GenerateResult:
    """The migration file generate wrote."""

    path: Path
    version: str
    reversible: bool | None     # None: an unfilled template
