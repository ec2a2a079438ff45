"""Regenerate examples/example_usage.md by running the walkthrough's commands and recording their real output.

    .venv/bin/python examples/record_usage.py [--db-url URL]

Like the demo, it never uses DB_URL: by default it runs on the demo's embedded server (database "usage", recreated
empty; the server is stopped again if this script started it); --db-url (or DEMO_DB_URL) names another database.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo-usage"
MIGRATIONS = f"{WORK.name}/migrations"
PY = ".venv/bin/python"


@dataclass
class Step:
    """One recorded command: a title, the script and its arguments ({apply_id}/{rollback_id} filled in), env."""
    title: str
    command: str
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


STEPS = [
    Step("Generate a complete migration in one call", "scripts/generate_migration.py --name add_user_status_column "
         "--up \"ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';\" "
         "--down \"ALTER TABLE users DROP COLUMN status;\""),
    Step("Plan: what is applied, what is pending (read-only)", "scripts/plan_migrations.py"),
    Step("Preview: the exact SQL and the plan id", "scripts/apply_migrations.py --dry-run",
         note="The person (or the agent's user) reads this and confirms exactly this plan id."),
    Step("Without the confirmed plan id, a harness that requires it refuses", "scripts/apply_migrations.py",
         env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"}),
    Step("Apply exactly the confirmed plan", "scripts/apply_migrations.py --plan-id {apply_id}",
         env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"}),
    Step("The same call retried (say, after a timeout) runs nothing", "scripts/apply_migrations.py --plan-id "
         "{apply_id}", env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"}),
    Step("Plan again: the new state", "scripts/plan_migrations.py"),
    Step("Plan as JSON, for agents", "scripts/plan_migrations.py --json"),
    Step("Preview the rollback of the latest migration", "scripts/rollback_migrations.py --dry-run"),
    Step("Roll back exactly the confirmed plan", "scripts/rollback_migrations.py --plan-id {rollback_id}",
         env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"}),
    Step("Risk findings, offline (pre-commit / CI)", "scripts/lint_migrations.py --fail-on medium"),
    Step("Prove every down section on a scratch database", "scripts/verify_migrations.py"),
    Step("Drift: an applied file was edited", "scripts/plan_migrations.py"),
    Step("A failing migration is rolled back and recorded", "scripts/apply_migrations.py"),
    Step("Its file deleted, the failed attempt still shows", "scripts/plan_migrations.py"),
    Step("Acknowledge the failed attempt (a new history row; nothing is deleted)",
         "scripts/apply_migrations.py --forget-failed 20260301_000000_add_orders"),
    Step("Plan no longer lists it", "scripts/plan_migrations.py"),
    Step("The demo agent, offline brain", "examples/demo_agent.py --yes"),
]


def shell(command: str, env: dict[str, str]) -> tuple[int, str]:
    """Run one walkthrough command; return its exit code and its output, stderr (progress, errors) last."""
    done = subprocess.run(f"{PY} {command}", shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    # Relative paths in the record: it reads the same in any checkout.
    return done.returncode, (done.stdout + done.stderr).rstrip().replace(f"{ROOT}/", "")


def plan_id(command: str, env: dict[str, str]) -> str:
    """Return the plan id of a dry run, from its JSON."""
    done = subprocess.run(f"{PY} {command} --json", shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    return json.loads(done.stdout)["plan_id"]


def before_step(step: Step, migrations: Path) -> None:
    """Set the scene some steps need (edit an applied file, add a failing one, delete it)."""
    first = sorted(migrations.glob("*create_users_table.sql"))[0]
    failing = migrations / "20260301_000000_add_orders.sql"
    if step.title.startswith("Drift"):
        first.write_text(first.read_text() + "-- edited after it was applied\n")
    if step.title.startswith("A failing"):
        first.write_text(first.read_text().replace("-- edited after it was applied\n", ""))
        failing.write_text("-- DIRECTION: up\nCREATE TABLE orders (id BIGSERIAL PRIMARY KEY);\n"
                           "ALTER TABLE orders ADD COLUMN user_id BIGINT REFERENCES customers (id);\n"
                           "-- DIRECTION: down\nDROP TABLE orders;\n")
    if step.title.startswith("Its file deleted"):
        failing.unlink()


def supported(step: Step) -> bool:
    """Tell whether the scripts have the flag a step shows (the walkthrough records what exists)."""
    if "--forget-failed" not in step.command and not step.title.startswith("Plan no longer"):
        return True
    return "--forget-failed" in shell("scripts/apply_migrations.py --help", dict(os.environ))[1]


def database(given: str | None) -> tuple[str, bool]:
    """Return the URL to record against and whether this script started the embedded server for it."""
    if given:
        return given, False
    import embedded_db  # next to this file
    was_running = embedded_db.is_running(ROOT / ".pgdata")
    url = subprocess.check_output([PY, "examples/embedded_db.py", "--database", "usage"], cwd=ROOT, text=True,
                                  stderr=subprocess.DEVNULL).strip()
    return url, not was_running


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", default=os.environ.get("DEMO_DB_URL"), help="record against this database")
    args = parser.parse_args()
    url, started = database(args.db_url)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATIONS_")} | {"DB_URL": url}
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(ROOT / "migrations", WORK / "migrations")
    out = ["# Example usage", "",
           "Recorded by `examples/record_usage.py` from real runs against PostgreSQL, on an empty database "
           "(timestamps, timings and plan ids differ on each run). The full loop: generate, plan, preview, confirm, "
           "apply with the plan id, plan again, roll back with the plan id; then lint, verify, drift and a failure.",
           ""]
    ids = {"apply_id": "", "rollback_id": ""}
    try:
        for step in STEPS:
            if not supported(step):
                continue
            before_step(step, WORK / "migrations")
            env = base | step.env
            command = f"{step.command.format(**ids)} --migrations-dir {MIGRATIONS}"
            if "--dry-run" in command:
                ids["apply_id" if "apply" in command else "rollback_id"] = plan_id(command, env)
            code, text = shell(command, env)
            shown_env = " ".join(f"{k}={shlex.quote(v)}" for k, v in step.env.items())
            out += [f"## {step.title}", "", "```console", f"$ {shown_env + ' ' if shown_env else ''}{PY} {command}",
                    text, f"(exit {code})", "```", ""]
            if step.note:
                out += [step.note, ""]
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        if started:
            subprocess.run([PY, "examples/embedded_db.py", "--stop"], cwd=ROOT, capture_output=True)
    (ROOT / "examples" / "example_usage.md").write_text("\n".join(out), encoding="utf-8")
    print("wrote examples/example_usage.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
