"""Typed records shared by every layer: migrations, history rows, plans and results. Imports: stdlib only (and
results.py, the records plan never builds, on first use)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # at run time model.__getattr__ imports them on first use: plan never builds one
    from .results import (ForgetResult, GenerateResult, RecordResult, RunResult, SchemaDiffResult,  # noqa: F401
                          SchemaRecordResult, StepDone)

Direction = Literal["up", "down"]
# "forgotten": apply --forget-failed acknowledged the failed attempts before it of a version whose file is gone.
Status = Literal["success", "failed", "superseded", "forgotten"]
# A live table with fewer rows is small: findings whose cost grows with the table drop to low on it (issue 10,
# risk.live.is_small; --small-table-rows N).
SMALL_TABLE_ROWS = 10_000
LATER = ("StepDone", "RecordResult", "SchemaDiffResult", "SchemaRecordResult", "RunResult", "ForgetResult",
         "GenerateResult")  # the records in results.py


def __getattr__(name: str) -> Any:
    """Return a record of results.py, importing that module on first use (PEP 562)."""
    if name not in LATER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import results
    return getattr(results, name)


@dataclass(frozen=True)
class Migration:
    """One parsed migration file."""

    version: str            # file name without .sql: the only meaning of "version" anywhere
    name: str               # from "-- MIGRATION:" or the description part of the file name
    location: str           # the file's path as text; .path is the Path, made on first use
    up_sql: str
    up_line: int            # file line on which up_sql starts, to place server errors
    down_sql: str | None    # None means irreversible
    down_line: int
    checksum: str           # sha256 of the text with line endings normalised to \n
    transactional: bool = True              # False: "-- TRANSACTION: none", statements run one at a time
    lock_timeout_ms: int | None = None      # "-- LOCK_TIMEOUT: 2s" overrides --lock-timeout-ms
    statement_timeout_ms: int | None = None  # "-- STATEMENT_TIMEOUT: 10min" overrides --statement-timeout-ms
    # A section of comments only, one "-- noop: REASON": it runs nothing and is recorded as run. Its SQL is the
    # comment text, so a no-op down still makes the migration reversible (down_sql is not None).
    up_noop: str | None = None
    down_noop: str | None = None

    @property
    def reversible(self) -> bool:
        return self.down_sql is not None

    @cached_property
    def path(self) -> Path:
        """Return the file's path (made on first use: plan loads a thousand files and names few of them)."""
        return Path(self.location)

    def noop(self, direction: Direction) -> str | None:
        """Return the reason when that section is a recorded no-op, else None."""
        return self.up_noop if direction == "up" else self.down_noop

    def section(self, direction: Direction) -> tuple[str, int]:
        """Return the SQL of one direction and the file line it starts on."""
        if direction == "up":
            return self.up_sql, self.up_line
        assert self.down_sql is not None
        return self.down_sql, self.down_line


@dataclass(frozen=True)
class HistoryRow:
    """One schema_migrations row."""

    id: int
    version: str
    name: str
    checksum: str
    applied_at: datetime
    direction: Direction
    status: Status
    error_message: str | None


@dataclass(frozen=True)
class Drift:
    """An applied migration whose file no longer matches what was applied."""

    version: str
    name: str
    recorded_checksum: str
    file_checksum: str


@dataclass(frozen=True)
class Plan:
    """Everything plan reports; apply and rollback act on it."""

    applied: list[HistoryRow]           # the up success row of each applied version, in application order
    pending: list[Migration]            # in version order
    drift: list[Drift]
    missing: list[HistoryRow]           # applied, but the file is gone
    out_of_order: list[Migration]       # pending, yet older than the newest applied version
    failed: list[HistoryRow]            # latest failed attempt, newer than any success of that version
    history_exists: bool = True         # False: no schema_migrations table yet

    @property
    def blocked(self) -> bool:
        return bool(self.drift or self.missing)

    @property
    def applied_versions(self) -> list[str]:
        """Return the applied versions in application order."""
        return [r.version for r in self.applied]


@dataclass(frozen=True)
class Step:
    """One migration to run in one direction, as previewed and then executed."""

    migration: Migration
    direction: Direction

    @property
    def version(self) -> str:
        return self.migration.version


@dataclass(frozen=True)
class StepFailed:
    """One migration that failed in one direction: the server's error and where in the file it happened."""

    version: str
    name: str
    direction: Direction
    sqlstate: str | None
    error: str                      # the server's message
    line: int | None                # line in the migration file, where the server said
    path: Path
    statements_done: int | None = None   # non-transactional migrations: statements that completed
    statements_total: int | None = None
    notices: tuple[str, ...] = ()

    def describe(self) -> str:
        """Return the text stored in error_message and shown to users."""
        where = f" at line {self.line}" if self.line else ""
        text = f"{f'SQLSTATE {self.sqlstate}' if self.sqlstate else 'error'}{where}: {self.error}"
        if self.statements_total is not None:
            text += f" ({self.statements_done} of {self.statements_total} statements completed, not rolled back)"
        return text


@dataclass(frozen=True)
class RunSettings:
    """How each migration runs (issue 6): server-side timeouts and lock retries."""

    lock_timeout_ms: int = 5000      # SET LOCAL lock_timeout: wait at most this long for a table lock
    statement_timeout_ms: int = 0    # SET LOCAL statement_timeout: 0 = off
    lock_retries: int = 3            # retries after a lock timeout (SQLSTATE 55P03), with backoff
    retry_backoff_s: float = 1.0     # first pause; doubles each retry

    def for_migration(self, migration: Migration) -> tuple[int, int]:
        """Return (lock_timeout_ms, statement_timeout_ms), the file's header winning over the flags."""
        lock = self.lock_timeout_ms if migration.lock_timeout_ms is None else migration.lock_timeout_ms
        statement = (self.statement_timeout_ms if migration.statement_timeout_ms is None
                     else migration.statement_timeout_ms)
        return lock, statement


@dataclass(frozen=True)
class RunOptions:
    """What the user chose for an apply or rollback run."""

    dry_run: bool = False
    plan_id: str | None = None          # execute only if the plan still has this id
    lock_timeout_s: float = 60          # advisory (runner) lock wait
    settings: RunSettings = field(default_factory=lambda: RunSettings())
    allow_out_of_order: bool = False
    allow_schema_drift: bool = False
    max_risk: str = "medium"            # refuse findings above this severity (issue 5); --allow-risk: "high"
    small_table_rows: int = SMALL_TABLE_ROWS  # live tables below this are small for the risk rules (issue 10)
    verbose: bool = False               # list every risk finding instead of grouping repeated ones
    require_plan_id: bool = False       # refuse a real run without plan_id (--require-plan-id)


@dataclass(frozen=True)
class PlanResult:
    """What plan found: the plan, its id, the risks of the pending migrations and the live-schema check."""

    plan: Plan
    migrations_dir: Path
    plan_id: str
    target: str | None = None
    risks: dict[str, Any] = field(default_factory=dict)     # version -> risk_report.MigrationRisk, pending only
    schema: Any = None                                       # schema_check.SchemaCheck; None: not checked
    invalid_indexes: list[dict[str, str]] = field(default_factory=list)  # schema, table, index: failed builds
    invocation: tuple[str, ...] = ()     # options a suggested command repeats (argv words): see output.invocation
    verbose: bool = False                # --verbose: list every pending migration and finding


@dataclass(frozen=True)
class StepEvent:
    """Progress of a run: step `index` of `total` starts (outcome None) or has ended (its StepDone/StepFailed)."""

    step: Step
    index: int
    total: int
    outcome: StepDone | StepFailed | None = None
