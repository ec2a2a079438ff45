"""A run judged as a whole (issue 10): each step in the state the earlier steps leave, each table at its live size.

assess_run is what plan, apply, rollback and `lint --db` call. A table an earlier step created is new and empty;
a table that exists is judged by its size, read from the catalog in one query for the whole run (never one per
table) by the reader the caller gives (live.read_table_stats inside the caller's bounded read-only transaction),
and only when some finding is about a table the run did not create. Pure: stdlib and the risk modules.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..model import SMALL_TABLE_ROWS, Direction, Migration
from .analysis import (DEFAULT_PG_VERSION, Finding, LiveTables, analyze_down, analyze_section, highest_severity,
                       judged_live)
from .live import TableStats
from .nodes import RunTables, SectionState, Severity, TableRef

TableReader = Callable[[list[TableRef]], dict[TableRef, TableStats]]  # one catalog query for the given tables


@dataclass(frozen=True)
class MigrationRisk:
    """The findings of one migration and its highest unsilenced severity."""

    version: str
    name: str
    path: Path
    transactional: bool
    findings: list[Finding]

    @property
    def risk(self) -> Severity | None:
        """Return the highest severity of applying it (up findings)."""
        return highest_severity(self.findings, "up")

    @property
    def rollback_risk(self) -> Severity | None:
        """Return the highest severity of rolling it back (down findings)."""
        return highest_severity(self.findings, "down")


class RunRisks(dict[str, MigrationRisk]):
    """The findings of a run, by version, with how they were judged (live or not) and are to be shown."""

    def __init__(self, risks: dict[str, MigrationRisk] | None = None, *, live: bool = False,
                 tables: dict[TableRef, TableStats] | None = None, small_table_rows: int = SMALL_TABLE_ROWS,
                 verbose: bool = False, lookups: int = 0, lookup_ms: float = 0.0) -> None:
        super().__init__(risks or {})
        self.live = live                    # judged against the live database
        self.tables = tables or {}          # the live tables read, by name as the migrations write them
        self.small_table_rows = small_table_rows
        self.verbose = verbose              # list every finding rather than group repeated ones
        self.lookups = lookups              # catalog queries run for this judgement: 0 or 1
        self.lookup_ms = lookup_ms


def assess_run(migrations: Sequence[Migration], server_version: int = DEFAULT_PG_VERSION, *,
               direction: Direction = "up", with_down: bool = True, read_tables: TableReader | None = None,
               small_table_rows: int = SMALL_TABLE_ROWS, verbose: bool = False) -> RunRisks:
    """Return each migration's findings, judged as one run in the order given.

    direction "up": the run applies the up sections (plan, apply), and with_down also judges each down section as
    at rollback time; "down": the run executes the down sections (rollback, newest first). With read_tables, the
    tables the findings are about are read live, in one call for the run (never when every finding is on a table
    the run creates); without it the judgement is static.
    """
    static, wanted, unsure = judge_run(migrations, server_version, direction, with_down, None)
    if read_tables is None:
        return RunRisks(static, small_table_rows=small_table_rows, verbose=verbose)
    if not wanted:  # every finding is on a table the run creates, or on none: nothing to ask the catalog
        return RunRisks(static, live=True, small_table_rows=small_table_rows, verbose=verbose)
    started = time.perf_counter()
    tables = read_tables(sorted(wanted, key=lambda t: (t.schema or "", t.name)))
    elapsed = (time.perf_counter() - started) * 1000
    live = LiveTables(tables, small_table_rows)
    if unsure & set(tables):  # CREATE TABLE IF NOT EXISTS of a live table: what is new changes, judge again
        judged, _, _ = judge_run(migrations, server_version, direction, with_down, live)
    else:  # what is new stands: each finding only gains its table's size
        judged = {version: replace(risk, findings=[judged_live(f, live) for f in risk.findings])
                  for version, risk in static.items()}
    return RunRisks(judged, live=True, tables=tables, small_table_rows=small_table_rows, verbose=verbose, lookups=1,
                    lookup_ms=elapsed)


def judge_run(migrations: Sequence[Migration], server_version: int, direction: Direction, with_down: bool,
              live: LiveTables | None) -> tuple[dict[str, MigrationRisk], set[TableRef], set[TableRef]]:
    """Return each migration's findings, the tables the live catalog could judge better, and those created with
    IF NOT EXISTS (new only if they do not exist yet)."""
    run = RunTables(live=live.names() if live else set())
    risks: dict[str, MigrationRisk] = {}
    wanted: set[TableRef] = set()
    created: set[str] = set()
    unsure: set[TableRef] = set()
    for migration in migrations:
        transactional = bool(migration.transactional)
        if direction == "up":
            up = SectionState("up", server_version, transactional, run)
            findings = analyze_section(migration.up_sql, migration.up_line, migration.path, up, live)
        else:  # a rollback: the up only tells the down what it created; its findings are not this run's
            up = SectionState("up", server_version, transactional)
            analyze_section(migration.up_sql, migration.up_line, migration.path, up)
            findings = []
        if migration.down_sql is not None and (with_down or direction == "down"):
            down_run = run if direction == "down" else RunTables(live=live.names() if live else set())
            findings += analyze_down(migration, up, server_version, transactional, live, down_run)
            unsure |= down_run.unsure
            created |= down_run.surely_new()
        wanted |= {f.table for f in findings if f.table is not None}
        risks[migration.version] = MigrationRisk(migration.version, migration.name, migration.path, transactional,
                                                 findings)
    created |= run.surely_new()  # never live before the run: nothing to ask about them
    unsure |= run.unsure
    return risks, {t for t in wanted if t.name not in created} | unsure, unsure
