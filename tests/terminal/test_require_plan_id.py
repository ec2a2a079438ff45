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
