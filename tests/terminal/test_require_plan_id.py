"""--require-plan-id (or MIGRATIONS_REQUIRE_PLAN_ID=1) makes apply and rollback refuse a real run without a plan id
(exit 2, plan_id_required, nothing run); a retried call with the id of a plan that already ran to the end exits 0
and runs nothing; an old id never runs anything else."""
from __future__ import annotations

import json

from terminal_helpers import migration_files, module_db, query, run  # noqa: F401  (module_db: a fixture)


def history(url: str, schema: str) -> list[tuple]:
    if not query(url, "SELECT to_regclass(%s)", (f"{schema}.schema_migrations",))[0][0]:
        return []
    return query(url, f"SELECT version, direction, status FROM {schema}.schema_migrations ORDER BY id")


def preview_id(*args: str, command: str = "apply", db_url: str) -> str:
    result = run(command, *args, "--dry-run", "--json", db_url=db_url)
    assert result.returncode == 0, result.stdout
    return json.loads(result.stdout)["plan_id"]


def test_without_a_plan_id_a_real_run_is_refused_but_a_dry_run_is_not(module_db, tmp_path):
    migration_files(tmp_path / "m", 1, prefix="rq")
    args = ("--migrations-dir", str(tmp_path / "m"), "--history-schema", "req")
    for command, env, flag in (("apply", {}, ("--require-plan-id",)),
                               ("apply", {"MIGRATIONS_REQUIRE_PLAN_ID": "1"}, ()),
                               ("rollback", {"MIGRATIONS_REQUIRE_PLAN_ID": "1"}, ()),
                               ("apply", {"MIGRATIONS_REQUIRE_PLAN_ID": "1"}, ("--baseline", "x"))):
        result = run(command, *args, *flag, "--json", db_url=module_db, env=env)
        assert result.returncode == 2, (command, env, result.stdout)
        assert json.loads(result.stdout)["error"]["code"] == "plan_id_required"
    human = run("apply", *args, "--require-plan-id", db_url=module_db)
    assert human.returncode == 2 and len(human.stderr.splitlines()) == 1
    assert "requires --plan-id" in human.stderr and "--dry-run" in human.stderr
    assert history(module_db, "req") == []

    assert run("apply", *args, "--dry-run", db_url=module_db, env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"}).returncode == 0
    bad_env = run("apply", *args, db_url=module_db, env={"MIGRATIONS_REQUIRE_PLAN_ID": "maybe"})
    assert bad_env.returncode == 2 and "MIGRATIONS_REQUIRE_PLAN_ID" in bad_env.stderr
    plan_id = preview_id(*args, db_url=module_db)
    ran = run("apply", *args, "--plan-id", plan_id, db_url=module_db, env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"})
    assert ran.returncode == 0, ran.stderr
    assert [row[2] for row in history(module_db, "req")] == ["success"]


def test_a_retried_call_exits_0_and_runs_nothing_and_an_old_id_never_runs_anything_else(module_db, tmp_path):
    versions = migration_files(tmp_path / "m", 3, prefix="rt")
    args = ("--migrations-dir", str(tmp_path / "m"), "--history-schema", "retry")
    first = preview_id(*args, "--target", versions[1], db_url=module_db)
    assert run("apply", *args, "--target", versions[1], "--plan-id", first, db_url=module_db).returncode == 0
    rows = history(module_db, "retry")

    retried = run("apply", *args, "--target", versions[1], "--plan-id", first, "--json", db_url=module_db)
    document = json.loads(retried.stdout)
    assert retried.returncode == 0 and document["retried"] is True
    assert document["retried_versions"] == versions[:2] and document["applied"] == []
    human = run("apply", *args, "--target", versions[1], "--plan-id", first, db_url=module_db)
    assert human.stdout.startswith(f"Already applied: plan {first} ran to the end before")
    assert history(module_db, "retry") == rows

    # The same id without the target it was made for would apply the third file: refused, nothing runs.
    other = run("apply", *args, "--plan-id", first, "--json", db_url=module_db)
    assert other.returncode == 3 and json.loads(other.stdout)["error"]["code"] == "plan_changed"
    assert history(module_db, "retry") == rows

    # Rolled back since: the old apply id is not "done" any more, and it does not re-apply either.
    back = preview_id(*args, command="rollback", db_url=module_db)
    assert run("rollback", *args, "--plan-id", back, db_url=module_db).returncode == 0
    again = run("rollback", *args, "--plan-id", back, "--json", db_url=module_db)
    assert again.returncode == 0 and json.loads(again.stdout)["retried_versions"] == [versions[1]]
    stale = run("apply", *args, "--target", versions[1], "--plan-id", first, "--json", db_url=module_db)
    assert stale.returncode == 3 and json.loads(stale.stdout)["error"]["code"] == "plan_changed"
    assert [row[0] for row in history(module_db, "retry")] == [versions[0], versions[1], versions[1]]


def test_a_plan_id_counts_as_done_only_when_every_step_is_in_the_state_the_run_left_it(tmp_path):
    from datetime import datetime, timezone

    from migration_core import planning
    from migration_core.model import HistoryRow

    def row(n: int, version: str, direction: str = "up", status: str = "success", note: str | None = None):
        return HistoryRow(n, version, version, "sum-" + version, datetime(2026, 1, 1, 0, 0, n, tzinfo=timezone.utc),
                          direction, status, note)  # type: ignore[arg-type]

    steps = [["a", "up", "sum-a"], ["b", "up", "sum-b"]]
    plan_id = planning.plan_id_of("apply", [], steps, None)
    done = [row(1, "a"), row(2, "b")]
    assert planning.completed_plan("apply", plan_id, done, planning.compute_plan([], done), None) == ["a", "b"]
    half = [row(1, "a"), row(2, "b", status="failed")]
    assert planning.completed_plan("apply", plan_id, half, planning.compute_plan([], half), None) is None
    baselined = [row(1, "a", note="baseline: ..."), row(2, "b", note="baseline: ...")]
    assert planning.completed_plan("apply", plan_id, baselined, planning.compute_plan([], baselined), None) is None
    undone = [*done, row(3, "b", "down")]
    assert planning.completed_plan("apply", plan_id, undone, planning.compute_plan([], undone), None) is None
    assert planning.completed_plan("rollback", plan_id, done, planning.compute_plan([], done), None) is None
    assert planning.completed_plan("apply", plan_id, done, planning.compute_plan([], done), "b") is None


def old_completed_plan(command, plan_id, history, current, target):
    """The quadratic reference: recompute the applied state and the whole id for every cut."""
    import hashlib

    from migration_core import planning

    def plan_id_of(applied, steps):
        state = {"command": command, "target": target, "applied": [[r.version, r.checksum] for r in applied],
                 "steps": steps}
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]

    direction = "up" if command == "apply" else "down"
    applied_now = {r.version: r.checksum for r in current.applied}
    tail = []
    for cut in range(len(history) - 1, -1, -1):
        row = history[cut]
        if row.status != "success" or row.direction != direction or row.error_message \
                or row.version in {r.version for r in tail}:
            return None
        tail.insert(0, row)
        if not (all(applied_now.get(r.version) == r.checksum for r in tail) if direction == "up"
                else all(r.version not in applied_now for r in tail)):
            return None
        before = planning.compute_plan([], history[:cut]).applied
        if plan_id_of(before, [[r.version, direction, r.checksum] for r in tail]) == plan_id:
            return [r.version for r in tail]
    return None


def history_row(n: int, version: str, direction: str = "up", status: str = "success", note: str | None = None,
                second: int | None = None, checksum: str | None = None):
    from datetime import datetime, timedelta, timezone

    from migration_core.model import HistoryRow

    at = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=n if second is None else second)
    return HistoryRow(n, version, version, checksum or "sum-" + version, at, direction, status, note)  # type: ignore


def random_history(seed: int) -> list:
    """Return a history of runs, rollbacks, failures, baselines, forgotten rows and a few out-of-order times."""
    import random

    rng = random.Random(seed)
    rows: list = []
    applied: list[str] = []
    for _ in range(rng.randint(1, 12)):
        n = len(rows) + 1
        choice = rng.random()
        second = rng.randint(1, n) if rng.random() < 0.15 else None  # an accepted checksum keeps an older time
        if choice < 0.5 or not applied:
            version = f"v{rng.randint(1, 8):02d}"
            if version in applied:
                continue
            status = "failed" if rng.random() < 0.1 else "success"
            note = "baseline: recorded" if rng.random() < 0.1 else None
            rows.append(history_row(n, version, "up", status, note, second, f"sum-{version}-{rng.randint(0, 1)}"))
            if status == "success":
                applied.append(version)
        elif choice < 0.85:
            version = applied.pop(rng.randrange(len(applied)) if rng.random() < 0.2 else -1)
            rows.append(history_row(n, version, "down", "success"))
        else:
            rows.append(history_row(n, f"v{rng.randint(1, 8):02d}", "up", "forgotten", "forgotten: ..."))
    return rows


def test_the_incremental_plan_id_is_the_json_hash_it_always_was():
    import hashlib

    from migration_core import planning

    for seed in range(50):
        applied = planning.compute_plan([], random_history(seed)).applied
        steps = [[r.version, "up", r.checksum] for r in applied[:seed % 4]]
        for command, target in (("apply", None), ("rollback", "v03"), ("apply", "ünïcode")):
            state = {"command": command, "target": target, "applied": [[r.version, r.checksum] for r in applied],
                     "steps": steps}
            expected = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]
            assert planning.plan_id_of(command, applied, steps, target) == expected


def test_a_retried_plan_is_recognised_exactly_as_the_quadratic_walk_did_on_varied_histories():
    from migration_core import planning

    matches = 0
    for seed in range(150):
        rows = random_history(seed)
        current = planning.compute_plan([], rows)
        # Every id some cut of this history would have had, plus a foreign one.
        candidates = {"0123456789ab"}
        for cut in range(len(rows)):
            before = planning.compute_plan([], rows[:cut]).applied
            for command, direction in (("apply", "up"), ("rollback", "down")):
                steps = [[r.version, direction, r.checksum] for r in rows[cut:]]
                for target in (None, "v02"):
                    candidates.add(planning.plan_id_of(command, before, steps, target))
        for plan_id in sorted(candidates):
            for command in ("apply", "rollback"):
                for target in (None, "v02"):
                    expected = old_completed_plan(command, plan_id, rows, current, target)
                    assert planning.completed_plan(command, plan_id, rows, current, target) == expected, seed
                    matches += expected is not None
    assert matches > 50  # the histories do hold retried plans, not only misses


def test_a_foreign_plan_id_on_a_5000_row_history_is_decided_in_one_bounded_pass():
    import time

    from migration_core import planning

    rows = [history_row(n, f"v{n:05d}") for n in range(1, 5001)]
    current = planning.compute_plan([], rows)
    started = time.perf_counter()
    assert planning.completed_plan("apply", "0123456789ab", rows, current, None) is None
    assert time.perf_counter() - started < 1.0  # the quadratic walk took ~40 s here

    # The newest run of 3 steps is found; a run longer than the bound is refused as changed, never run.
    three = planning.plan_id_of("apply", current.applied[:-3], [[r.version, "up", r.checksum] for r in rows[-3:]],
                                None)
    assert planning.completed_plan("apply", three, rows, current, None) == [r.version for r in rows[-3:]]
    everything = planning.plan_id_of("apply", [], [[r.version, "up", r.checksum] for r in rows[-20:]], None)
    short = rows[-20:]
    assert planning.completed_plan("apply", everything, short, planning.compute_plan([], short), None) \
        == [r.version for r in short]
    assert planning.completed_plan("apply", everything, short, planning.compute_plan([], short), None,
                                   max_steps=19) is None
