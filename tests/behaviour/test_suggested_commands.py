"""Every command the output suggests works as printed (issue 10, item 5): pasted verbatim into a shell in another
directory than the one the first command ran in, it succeeds and does exactly what the preview said. A preview
whose real run would be refused suggests no command that runs it."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import SCRIPTS, history, migration, query, tables

A, B, C = "20260101_000000_create_a", "20260102_000000_create_b", "20260103_000000_create_c"
THREE = {f"{v}.sql": migration(f"CREATE TABLE {v[-1]} (id int);", f"DROP TABLE {v[-1]};") for v in (A, B, C)}
INDEX = "20260201_000000_index_orders_placed_at"
BIG_ROWS = 300_000  # the big table: its index build stays high risk, however the table is judged


def run_verbatim(command: str, db_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a suggested command as pasted into a shell whose `python` is this venv's, in the directory cwd."""
    env = {k: v for k, v in os.environ.items() if k not in ("DB_URL", "MIGRATIONS_SCHEMA")}
    env |= {"DB_URL": db_url, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def line_after(label: str, text: str) -> str:
    """Return the rest of the output line that starts with label."""
    match = re.search(rf"^{re.escape(label)} ?(.+)$", text, re.MULTILINE)
    assert match, f"no line starting {label!r} in:\n{text}"
    return match.group(1)


def without_json(command: str) -> list[str]:
    return [word for word in shlex.split(command) if word != "--json"]


def elsewhere(tmp_path: Path) -> Path:
    """Return a directory that is not where the first command ran (that was tmp_path)."""
    other = tmp_path / "somewhere" / "else"
    other.mkdir(parents=True)
    return other


def make_big_orders_table(db_url: str) -> None:
    query(db_url, "CREATE TABLE orders (id bigint, placed_at timestamptz)")
    query(db_url, f"INSERT INTO orders SELECT g, now() FROM generate_series(1, {BIG_ROWS}) g")
    query(db_url, "ANALYZE orders")


def test_plan_with_a_target_suggests_a_preview_and_a_run_that_work_from_another_directory(
        db_url, migrations_dir, run_script, tmp_path):
    migrations_dir(THREE, name="my migrations")  # a space: the suggestions quote it
    args = ("--migrations-dir", "my migrations", "--target", B)  # relative to tmp_path, where plan runs

    human = run_script("plan", *args, db_url=db_url)
    doc = json.loads(run_script("plan", *args, "--json", db_url=db_url).stdout)

    assert human.returncode == 0, human.stderr
    preview, run = re.search(r"Next: (.+), then (.+)$", human.stdout, re.MULTILINE).groups()
    assert without_json(doc["next_command"]) == shlex.split(preview)
    assert without_json(doc["run_command"]) == shlex.split(run)
    assert str(tmp_path / "my migrations") in shlex.split(run) and "--target" in shlex.split(run)
    other = elsewhere(tmp_path)

    dry = run_verbatim(doc["next_command"], db_url, other)

    assert dry.returncode == 0, dry.stdout + dry.stderr
    dry_doc = json.loads(dry.stdout)
    assert [s["version"] for s in dry_doc["steps"]] == [A, B] and dry_doc["plan_id"] == doc["plan_id"]
    assert history(db_url) == []

    done = run_verbatim(run, db_url, other)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Applied 2 migrations in " in done.stdout
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]
    assert tables(db_url) >= {"a", "b"} and "c" not in tables(db_url)


def test_a_dry_run_with_allow_risk_and_other_options_suggests_a_run_that_repeats_them(
        db_url, migrations_dir, run_script, tmp_path):
    make_big_orders_table(db_url)
    migrations_dir({f"{INDEX}.sql": migration("CREATE INDEX idx_orders_placed_at ON orders (placed_at);",
                                              "DROP INDEX idx_orders_placed_at;")}, name="db")
    chosen = ("--migrations-dir", "db", "--allow-risk", "--history-schema", "ops", "--lock-timeout-ms", "4000")

    preview = run_script("apply", *chosen, "--dry-run", db_url=db_url)
    preview_doc = json.loads(run_script("apply", *chosen, "--dry-run", "--json", db_url=db_url).stdout)

    assert preview.returncode == 0, preview.stderr
    run = line_after("To run exactly this:", preview.stdout)
    assert without_json(preview_doc["next_command"]) == shlex.split(run) == without_json(preview_doc["run_command"])
    words = shlex.split(run)
    assert {"--allow-risk", "ops", "4000", str(tmp_path / "db"), preview_doc["plan_id"]} <= set(words)

    done = run_verbatim(run, db_url, elsewhere(tmp_path))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Applied 1 migration in " in done.stdout
    assert query(db_url, "SELECT version, direction, status FROM ops.schema_migrations") == [(INDEX, "up", "success")]
    assert query(db_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'orders'") == [("idx_orders_placed_at",)]
    assert "schema_migrations" not in tables(db_url)


def test_a_preview_the_real_run_would_refuse_suggests_no_command_that_runs_it(
        db_url, migrations_dir, run_script, tmp_path):
    make_big_orders_table(db_url)
    migrations_dir({f"{INDEX}.sql": migration("CREATE INDEX idx_orders_placed_at ON orders (placed_at);",
                                              "DROP INDEX idx_orders_placed_at;")}, name="db")

    preview = run_script("apply", "--migrations-dir", "db", "--dry-run", db_url=db_url)
    preview_doc: dict[str, Any] = json.loads(
        run_script("apply", "--migrations-dir", "db", "--dry-run", "--json", db_url=db_url).stdout)
    plan = run_script("plan", "--migrations-dir", "db", db_url=db_url)
    plan_doc = json.loads(run_script("plan", "--migrations-dir", "db", "--json", db_url=db_url).stdout)

    assert preview.returncode == 0, preview.stderr
    assert preview_doc["would_refuse"]["code"] == "risk_too_high"
    assert preview_doc["next_command"] is None and preview_doc["run_command"] is None
    assert "--plan-id" not in preview.stdout and "Nothing to confirm yet" in preview.stdout
    assert plan.returncode == 0, plan.stderr
    assert plan_doc["run_command"] is None and "--allow-risk" in plan_doc["decision"]
    assert "--plan-id" not in plan.stdout and "the person's decision" in plan.stdout
    # The preview plan still offers runs as printed, and shows the refusal.
    again = run_verbatim(plan_doc["next_command"], db_url, elsewhere(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["would_refuse"]["code"] == "risk_too_high"
    assert history(db_url) == []


def test_rollback_dry_run_to_a_version_suggests_a_run_that_undoes_exactly_those_steps(
        db_url, migrations_dir, run_script, tmp_path):
    migrations_dir(THREE, name="db")
    assert run_script("apply", "--migrations-dir", "db", db_url=db_url).returncode == 0

    preview = run_script("rollback", "--migrations-dir", "db", "--to", A, "--dry-run", db_url=db_url)
    preview_doc = json.loads(run_script("rollback", "--migrations-dir", "db", "--to", A, "--dry-run", "--json",
                                        db_url=db_url).stdout)

    assert preview.returncode == 0, preview.stderr
    assert [(s["version"], s["direction"]) for s in preview_doc["steps"]] == [(C, "down"), (B, "down")]
    run = line_after("To run exactly this:", preview.stdout)
    assert without_json(preview_doc["next_command"]) == shlex.split(run)

    done = run_verbatim(run, db_url, elsewhere(tmp_path))

    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[-3] for line in done.stdout.splitlines() if "rolled back " in line and "ms)" in line] == [C, B]
    assert tables(db_url) == {"schema_migrations", "a"}


def test_the_hint_after_a_changed_plan_previews_again_with_the_same_options(
        db_url, migrations_dir, run_script, tmp_path):
    directory = migrations_dir({f"{A}.sql": THREE[f"{A}.sql"]}, name="db")
    args = ("--migrations-dir", "db", "--lock-timeout-ms", "3000")
    preview = json.loads(run_script("apply", *args, "--dry-run", "--json", db_url=db_url).stdout)
    (directory / f"{B}.sql").write_text(THREE[f"{B}.sql"], encoding="utf-8")  # the plan moves on

    refused = run_script("apply", *args, "--plan-id", preview["plan_id"], "--json", db_url=db_url)

    assert refused.returncode == 3
    hint = json.loads(refused.stdout)["error"]["hint"]
    again_command = re.search(r"Preview again with (.+), review", hint).group(1)
    assert {"3000", str(directory)} <= set(shlex.split(again_command))
    again = run_verbatim(again_command, db_url, elsewhere(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "would apply 2 migration(s)" in again.stdout and history(db_url) == []


def test_the_out_of_order_hint_previews_with_the_same_options(db_url, migrations_dir, run_script, tmp_path):
    directory = migrations_dir({f"{B}.sql": THREE[f"{B}.sql"]}, name="db")
    assert run_script("apply", "--migrations-dir", "db", db_url=db_url).returncode == 0
    (directory / f"{A}.sql").write_text(THREE[f"{A}.sql"], encoding="utf-8")  # older than the newest applied

    refused = run_script("apply", "--migrations-dir", "db", "--json", db_url=db_url)

    assert refused.returncode == 3
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "out_of_order"
    command = re.search(r"preview with (.+)\.$", error["hint"]).group(1)
    assert "--allow-out-of-order" in shlex.split(command) and "--dry-run" in shlex.split(command)
    again = run_verbatim(command, db_url, elsewhere(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"-- {A} (up)" in again.stdout and history(db_url) == [(B, "up", "success")]


def test_the_suggested_script_is_named_as_the_user_typed_it(db_url, migrations_dir, run_script, tmp_path):
    migrations_dir(THREE, name="db")
    typed = os.path.relpath(SCRIPTS / "plan_migrations.py", tmp_path)  # a relative path, as a user might type it
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}

    plan = subprocess.run([sys.executable, typed, "--migrations-dir", "db", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)

    assert plan.returncode == 0, plan.stderr
    command = json.loads(plan.stdout)["next_command"]
    # The Python that ran it, as a shell reaches it: `python` when PATH finds this one, else its path.
    assert shlex.split(command)[0] in ("python", sys.executable)
    assert shlex.split(command)[1] == os.path.relpath(SCRIPTS / "apply_migrations.py", tmp_path)
    dry = run_verbatim(command, db_url, tmp_path)  # works where the user's own command did
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert [s["version"] for s in json.loads(dry.stdout)["steps"]] == [A, B, C]
