"""Pure tests of migration_core.planning: classification, apply and rollback steps, and the plan id."""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import count
from pathlib import Path

import pytest

from migration_core import parsing, planning
from migration_core.errors import Refused, UsageError
from migration_core.model import HistoryRow, Migration

V1, V2, V3, V4 = "20260101_000000_a", "20260102_000000_b", "20260103_000000_c", "20260104_000000_d"


def make_migration(version: str, up: str = "SELECT 1;", down: str | None = "SELECT 2;", extra: str = "") -> Migration:
    text = f"-- DIRECTION: up\n{up}\n" + (f"-- DIRECTION: down\n{down}\n" if down else "") + extra
    return parsing.parse_migration_text(text, Path(f"{version}.sql"), version.split("_", 2)[2])


class History:
    """Build history rows with increasing ids, as schema_migrations would hold them."""

    def __init__(self) -> None:
        self.ids = count(1)
        self.rows: list[HistoryRow] = []

    def add(self, migration: Migration | str, direction: str = "up", status: str = "success",
            checksum: str | None = None) -> History:
        version = migration if isinstance(migration, str) else migration.version
        recorded = checksum or (migration.checksum if isinstance(migration, Migration) else "0" * 64)
        self.rows.append(HistoryRow(next(self.ids), version, version.split("_", 2)[2], recorded,
                                    datetime(2026, 1, 1, tzinfo=timezone.utc),
                                    direction, status,  # type: ignore[arg-type]
                                    "SQLSTATE 22012: division by zero" if status == "failed" else None))
        return self


def versions(items) -> list[str]:
    return [item.version for item in items]


M1, M2, M3, M4 = (make_migration(v, f"CREATE TABLE t{i} (id int);", f"DROP TABLE t{i};")
                  for i, v in enumerate([V1, V2, V3, V4], 1))


# ---- compute_plan --------------------------------------------------------------------------------------

def test_no_history_table_means_nothing_applied_and_everything_pending():
    plan = planning.compute_plan([M1, M2], None)

    assert (plan.applied, versions(plan.pending), plan.history_exists) == ([], [V1, V2], False)
    assert not plan.blocked


def test_empty_history_table_means_everything_pending():
    plan = planning.compute_plan([M2, M1][::-1], [])

    assert versions(plan.pending) == [V1, V2] and plan.history_exists


def test_applied_and_pending_are_classified():
    history = History().add(M1).add(M2).rows

    plan = planning.compute_plan([M1, M2, M3, M4], history)

    assert versions(plan.applied) == [V1, V2]
    assert versions(plan.pending) == [V3, V4]
    assert plan.drift == plan.missing == plan.out_of_order == plan.failed == []


def test_applied_is_in_application_order_not_version_order():
    plan = planning.compute_plan([M1, M2, M3], History().add(M3).add(M1).rows)

    assert versions(plan.applied) == [V3, V1]


def test_pending_older_than_the_newest_applied_is_out_of_order():
    plan = planning.compute_plan([M1, M2, M3, M4], History().add(M1).add(M3).rows)

    assert versions(plan.pending) == [V2, V4]
    assert versions(plan.out_of_order) == [V2]


def test_an_applied_file_whose_checksum_changed_is_drift():
    edited = make_migration(V2, "CREATE TABLE t2 (id int);", "DROP TABLE t2;", extra="-- edited\n")

    plan = planning.compute_plan([M1, edited], History().add(M1).add(M2).rows)

    assert versions(plan.drift) == [V2]
    assert plan.drift[0].recorded_checksum == M2.checksum and plan.drift[0].file_checksum == edited.checksum
    assert plan.blocked


def test_a_crlf_copy_of_an_applied_file_is_not_drift():
    text = "-- DIRECTION: up\nCREATE TABLE t (id int);\n-- DIRECTION: down\nDROP TABLE t;\n"
    lf = parsing.parse_migration_text(text, Path(f"{V1}.sql"), "a")
    crlf = parsing.parse_migration_text(text.replace("\n", "\r\n"), Path(f"{V1}.sql"), "a")

    plan = planning.compute_plan([crlf], History().add(lf).rows)

    assert plan.drift == [] and versions(plan.applied) == [V1]


def test_an_applied_version_without_a_file_is_missing():
    plan = planning.compute_plan([M1], History().add(M1).add(M2).rows)

    assert versions(plan.missing) == [V2]
    assert versions(plan.applied) == [V1, V2]
    assert plan.blocked


def test_a_rolled_back_migration_is_pending_again():
    history = History().add(M1).add(M2).add(M2, "down").rows

    plan = planning.compute_plan([M1, M2], history)

    assert versions(plan.applied) == [V1]
    assert versions(plan.pending) == [V2]


def test_a_reapplied_migration_is_applied_at_its_latest_application():
    history = (History().add(M1, status="superseded").add(M2).add(M1, "down", "superseded")
               .add(M1).add(M1, "down").add(M1)).rows  # superseded rows never count

    plan = planning.compute_plan([M1, M2], history)

    assert versions(plan.applied) == [V2, V1]
    assert plan.pending == []


def test_a_failed_attempt_of_a_never_applied_version_is_reported():
    history = History().add(M1).add(M2, status="failed").rows

    plan = planning.compute_plan([M1, M2], history)

    assert versions(plan.failed) == [V2]
    assert versions(plan.pending) == [V2]


def test_only_the_latest_failed_attempt_per_version_is_reported():
    history = History().add(M2, status="failed").add(M2, status="failed").rows

    plan = planning.compute_plan([M1, M2], history)

    assert [(r.version, r.id) for r in plan.failed] == [(V2, 2)]


def test_a_failed_attempt_followed_by_a_success_is_not_reported():
    history = History().add(M1, status="failed").add(M1).rows

    plan = planning.compute_plan([M1], history)

    assert plan.failed == [] and versions(plan.applied) == [V1]


# ---- refusals and apply steps --------------------------------------------------------------------------

def test_apply_refuses_while_drift_exists():
    edited = make_migration(V1, "CREATE TABLE t1 (id int, x int);", "DROP TABLE t1;")

    with pytest.raises(Refused, match=V1) as raised:
        planning.refuse_if_blocked(planning.compute_plan([edited, M2], History().add(M1).rows))
    assert raised.value.exit_code == 3


def test_apply_refuses_while_a_file_is_missing():
    with pytest.raises(Refused, match=V2) as raised:
        planning.refuse_if_blocked(planning.compute_plan([M1], History().add(M1).add(M2).rows))
    assert raised.value.exit_code == 3


TARGETS = {"no_target": (None, [V2, V3, V4]), "middle": (V3, [V2, V3]), "first_pending": (V2, [V2]),
           "last": (V4, [V2, V3, V4]), "already_applied": (V1, [])}


@pytest.mark.parametrize(("target", "expected"), list(TARGETS.values()), ids=list(TARGETS))
def test_apply_steps_run_pending_in_version_order_up_to_and_including_the_target(target, expected):
    migrations = [M1, M2, M3, M4]
    plan = planning.compute_plan(migrations, History().add(M1).rows)

    steps = planning.select_apply_steps(plan, migrations, target)

    assert versions(steps) == expected
    assert {s.direction for s in steps} <= {"up"}


def test_apply_with_an_unknown_target_is_a_usage_error():
    plan = planning.compute_plan([M1], [])

    with pytest.raises(UsageError, match="20990101_000000_nope") as raised:
        planning.select_apply_steps(plan, [M1], "20990101_000000_nope")
    assert raised.value.exit_code == 2


# ---- rollback steps ------------------------------------------------------------------------------------

ROLLBACK_RANGES = {
    "latest_only": (None, [V3]),
    "to_first": (V1, [V3, V2]),
    "to_middle": (V2, [V3]),
    "to_latest_is_nothing": (V3, []),
}


@pytest.mark.parametrize(("to", "expected"), list(ROLLBACK_RANGES.values()), ids=list(ROLLBACK_RANGES))
def test_rollback_steps_undo_everything_applied_after_to_newest_first(to, expected):
    migrations = [M1, M2, M3]
    plan = planning.compute_plan(migrations, History().add(M1).add(M2).add(M3).rows)

    steps = planning.select_rollback_steps(plan, migrations, to)

    assert versions(steps) == expected
    assert {s.direction for s in steps} <= {"down"}


def test_rollback_follows_application_order_not_version_order():
    migrations = [M1, M2, M3]
    plan = planning.compute_plan(migrations, History().add(M1).add(M3).add(M2).rows)

    assert versions(planning.select_rollback_steps(plan, migrations, None)) == [V2]
    assert versions(planning.select_rollback_steps(plan, migrations, V1)) == [V2, V3]


def test_rollback_with_nothing_applied_has_no_steps():
    assert planning.select_rollback_steps(planning.compute_plan([M1], None), [M1], None) == []


BAD_TO = {"unknown_version": "20990101_000000_nope", "not_applied": V3}


@pytest.mark.parametrize("to", list(BAD_TO.values()), ids=list(BAD_TO))
def test_rollback_to_an_unknown_or_unapplied_version_is_a_usage_error(to):
    migrations = [M1, M2, M3]
    plan = planning.compute_plan(migrations, History().add(M1).add(M2).rows)

    with pytest.raises(UsageError, match=to) as raised:
        planning.select_rollback_steps(plan, migrations, to)
    assert raised.value.exit_code == 2


IRREVERSIBLE_2 = make_migration(V2, "CREATE TABLE t2 (id int);", None)
DRIFTED_2 = make_migration(V2, "CREATE TABLE t2 (id int);", "DROP TABLE t2;", extra="-- edited\n")
IRREVERSIBLE_3 = make_migration(V3, "SELECT 3;", None)
REFUSED_RANGES = {  # files now, migrations as applied, to, the version the refusal names
    "irreversible_in_range": ([M1, IRREVERSIBLE_2, M3], [M1, IRREVERSIBLE_2, M3], V1, V2),
    "missing_file_in_range": ([M1, M3], [M1, M2, M3], V1, V2),
    "drifted_file_in_range": ([M1, DRIFTED_2, M3], [M1, M2, M3], V1, V2),
    "latest_is_irreversible": ([M1, M2, IRREVERSIBLE_3], [M1, M2, IRREVERSIBLE_3], None, V3),
}


@pytest.mark.parametrize(("migrations", "applied", "to", "named"), list(REFUSED_RANGES.values()),
                         ids=list(REFUSED_RANGES))
def test_rollback_checks_the_whole_range_and_refuses_before_any_step(migrations, applied, to, named):
    history = History()
    for migration in applied:
        history.add(migration)

    with pytest.raises(Refused, match=named) as raised:
        planning.select_rollback_steps(planning.compute_plan(migrations, history.rows), migrations, to)
    assert raised.value.exit_code == 3


def test_an_irreversible_migration_outside_the_range_does_not_block_rollback():
    migrations = [make_migration(V1, "SELECT 1;", None), M2, M3]
    plan = planning.compute_plan(migrations, History().add(migrations[0]).add(M2).add(M3).rows)

    assert versions(planning.select_rollback_steps(plan, migrations, V1)) == [V3, V2]


# ---- plan id -------------------------------------------------------------------------------------------

def plan_id(migrations: list[Migration], history: list[HistoryRow], target: str | None = None,
            command: str = "apply") -> str:
    plan = planning.compute_plan(migrations, history)
    steps = (planning.select_apply_steps(plan, migrations, target) if command == "apply"
             else planning.select_rollback_steps(plan, migrations, target))
    return planning.compute_plan_id(command, plan, steps, target)


def test_plan_id_is_stable_for_the_same_files_and_history():
    history = History().add(M1).rows

    assert plan_id([M1, M2, M3], history) == plan_id([M1, M2, M3], History().add(M1).rows)


def test_plan_id_changes_when_a_pending_file_changes():
    edited = make_migration(V2, "CREATE TABLE t2 (id bigint);", "DROP TABLE t2;")

    assert plan_id([M1, M2], History().add(M1).rows) != plan_id([M1, edited], History().add(M1).rows)


def test_plan_id_changes_when_a_pending_file_is_added():
    assert plan_id([M1, M2], History().add(M1).rows) != plan_id([M1, M2, M3], History().add(M1).rows)


def test_plan_id_changes_when_the_history_changes():
    assert plan_id([M1, M2, M3], History().add(M1).rows) != plan_id([M1, M2, M3], History().add(M1).add(M2).rows)


def test_plan_id_changes_with_the_target_and_the_command():
    history = History().add(M1).add(M2).rows

    ids = {plan_id([M1, M2, M3, M4], history), plan_id([M1, M2, M3, M4], history, V3),
           plan_id([M1, M2, M3, M4], history, None, "rollback")}

    assert len(ids) == 3
