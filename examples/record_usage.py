"""Regenerate examples/example_usage.md by running the walkthrough's commands and recording their real output.

    .venv/bin/python examples/record_usage.py        (uses DB_URL, or the embedded demo server)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo-usage"
PY = ".venv/bin/python"

STEPS = [
    ("Generate a complete migration in one call", "scripts/generate_migration.py --name add_user_status_column "
     "--up \"ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';\" "
     "--down \"ALTER TABLE users DROP COLUMN status;\""),
    ("Plan: what is applied, what is pending (read-only)", "scripts/plan_migrations.py"),
    ("Preview: the exact SQL and the plan id", "scripts/apply_migrations.py --dry-run"),
    ("Apply exactly the previewed plan", "scripts/apply_migrations.py --plan-id {plan_id}"),
    ("The same plan id again is refused: the state moved on", "scripts/apply_migrations.py --plan-id {plan_id}"),
    ("Plan as JSON, for agents", "scripts/plan_migrations.py --json"),
    ("Preview the rollback of the latest migration", "scripts/rollback_migrations.py --dry-run"),
    ("Roll it back", "scripts/rollback_migrations.py"),
    ("Risk findings, offline (pre-commit / CI)", "scripts/lint_migrations.py --fail-on medium"),
    ("Prove every down section on a scratch database", "scripts/verify_migrations.py"),
    ("Drift: an applied file was edited", "scripts/plan_migrations.py"),
    ("A failing migration is rolled back and recorded", "scripts/apply_migrations.py"),
    ("The demo agent, offline brain", "examples/demo_agent.py"),
]


def shell(command: str, env: dict[str, str]) -> tuple[int, str]:
    """Run one walkthrough command; return its exit code and its output, stderr (progress, errors) last."""
    done = subprocess.run(f"{PY} {command}", shell=True, cwd=ROOT, env=env, capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).rstrip()


def before_step(title: str, migrations: Path) -> None:
    """Set the scene some steps need (edit an applied file, add a failing one)."""
    if title.startswith("Drift"):
        first = sorted(migrations.glob("*create_users_table.sql"))[0]
        first.write_text(first.read_text() + "-- edited after it was applied\n")
    if title.startswith("A failing"):
        first = sorted(migrations.glob("*create_users_table.sql"))[0]
        first.write_text(first.read_text().replace("-- edited after it was applied\n", ""))
        (migrations / "20260301_000000_add_orders.sql").write_text(
            "-- DIRECTION: up\nCREATE TABLE orders (id BIGSERIAL PRIMARY KEY);\n"
            "ALTER TABLE orders ADD COLUMN user_id BIGINT REFERENCES customers (id);\n"
            "-- DIRECTION: down\nDROP TABLE orders;\n")


def main() -> int:
    env = dict(os.environ)
    if not env.get("DB_URL"):
        env["DB_URL"] = subprocess.check_output([PY, "examples/embedded_db.py", "--database", "usage"], cwd=ROOT,
                                                text=True, stderr=subprocess.DEVNULL).strip()
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(ROOT / "migrations", WORK / "migrations")
    out = ["# Example usage", "", "Recorded by `examples/record_usage.py` from real runs against PostgreSQL "
           "(timestamps, timings and plan ids differ on each run). `DB_URL` points at an empty database.", ""]
    plan_id = ""
    for title, command in STEPS:
        before_step(title, WORK / "migrations")
        command = f"{command.format(plan_id=plan_id)} --migrations-dir {WORK.name}/migrations"
        code, text = shell(command, env)
        if "--dry-run" in command and "apply" in command:
            plan_id = text.split("plan id ")[1].split(")")[0]
        out += [f"## {title}", "", "```console", f"$ python {command}", text, f"(exit {code})", "```", ""]
    shutil.rmtree(WORK)
    (ROOT / "examples" / "example_usage.md").write_text("\n".join(out), encoding="utf-8")
    print("wrote examples/example_usage.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
