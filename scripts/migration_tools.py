"""The agent tools (plan, apply, rollback, generate): names, JSON schemas, and how each maps to a script call.

Shared by examples/demo_agent.py and scripts/mcp_server.py. Every call runs the real script as a subprocess with
--json, so an agent exercises exactly what a person at a terminal would. Every document handed back is redacted
value by value, like the scripts' own output, so no DB_URL password reaches an agent or a transcript.
Imports: stdlib, and migration_core's config and output (both stdlib only).
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_core import config, output

SCRIPTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    script: str
    flags: dict[str, str]          # parameter name -> command-line flag
    changes_database: bool = False  # True: executes only with a plan_id from a preview


def schema(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


VERSION = {"type": "string", "description": "a migration version: the file name without .sql"}
PLAN_ID = {"type": "string", "description": "the plan_id of the preview the user confirmed (from plan or dry_run)"}
DRY_RUN = {"type": "boolean", "description": "preview only: return the SQL and plan_id, change nothing"}

TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in [
    ToolSpec("plan", "Read-only: list applied and pending migrations, drift, missing files and failed attempts, "
                     "with the plan_id of what apply would do now. Run this first.",
             schema(target=VERSION), "plan_migrations.py", {"target": "--target"}),
    ToolSpec("apply", "Apply pending migrations in order. Call with dry_run=true first to preview the SQL and get a "
                      "plan_id; after the user confirms, call with that plan_id (and the same target) to execute.",
             schema(dry_run=DRY_RUN, target=VERSION, plan_id=PLAN_ID), "apply_migrations.py",
             {"dry_run": "--dry-run", "target": "--target", "plan_id": "--plan-id"}, changes_database=True),
    ToolSpec("rollback", "Roll back the latest applied migration, or every one applied after `to`. Call with "
                         "dry_run=true first; after the user confirms, call with that plan_id (and the same `to`).",
             schema(dry_run=DRY_RUN, to=VERSION, plan_id=PLAN_ID), "rollback_migrations.py",
             {"dry_run": "--dry-run", "to": "--to", "plan_id": "--plan-id"}, changes_database=True),
    ToolSpec("generate", "Create a new migration file. name: lowercase letters, digits, underscores. up/down: SQL "
                         "for the sections (omit down only if the change cannot be undone).",
             {**schema(name={"type": "string", "pattern": "^[a-z0-9_]+$"},
                       up={"type": "string", "description": "SQL of the up section"},
                       down={"type": "string", "description": "SQL of the down section"}),
              "required": ["name"]},
             "generate_migration.py", {"name": "--name", "up": "--up", "down": "--down"}),
]}


def needs_confirmation(name: str, arguments: dict[str, Any]) -> bool:
    """Return whether this call changes the database (apply or rollback, not a dry run)."""
    return TOOLS[name].changes_database and not arguments.get("dry_run")


def command_line(name: str, arguments: dict[str, Any], migrations_dir: str | Path) -> list[str]:
    """Return the argv that runs a tool's script with --json."""
    spec = TOOLS[name]
    argv = [sys.executable, str(SCRIPTS / spec.script), "--json", "--migrations-dir", str(migrations_dir)]
    for key, value in arguments.items():
        if key not in spec.flags:
            raise ValueError(f"tool {name} has no parameter {key!r}")
        if value is True:
            argv.append(spec.flags[key])
        elif value not in (None, False, ""):
            argv += [spec.flags[key], str(value)]
    return argv


def call_tool(name: str, arguments: dict[str, Any], migrations_dir: str | Path) -> dict[str, Any]:
    """Run one tool and return its JSON document plus exit_code; refuse unconfirmed changes."""
    if name not in TOOLS:
        return tool_error(name, "unknown_tool", f"There is no tool named {name!r}.",
                          f"Use one of: {', '.join(TOOLS)}.")
    if needs_confirmation(name, arguments) and not arguments.get("plan_id"):
        return tool_error(name, "plan_id_required",
                          f"{name} changes the database, so it needs the plan_id the user confirmed.",
                          f"Call {name} with dry_run=true, show the plan to the user, and after they confirm call "
                          f"{name} again with its plan_id.")
    try:
        argv = command_line(name, arguments, migrations_dir)
    except ValueError as err:
        return tool_error(name, "usage", str(err), f"Parameters of {name}: {', '.join(TOOLS[name].flags)}.")
    completed = subprocess.run(argv, capture_output=True, text=True)
    try:
        document = json.loads(completed.stdout)
    except json.JSONDecodeError:
        document = {"ok": False, "error": {"code": "unexpected_error", "message": completed.stderr.strip()[-500:],
                                           "hint": "Run the script by hand to see what happened."}}
    if not isinstance(document, dict):
        document = {"ok": False, "error": {"code": "unexpected_error", "message": "The script printed no JSON object.",
                                           "hint": "Run the script by hand to see what happened."}}
    document["exit_code"] = completed.returncode
    return redact(document)


def redact(document: Any) -> Any:
    """Return the document with every form of the DB_URL password removed from its string values."""
    return output.redact(document, config.password_forms(config.find_db_url()))


def tool_error(name: str, code: str, message: str, hint: str) -> dict[str, Any]:
    return {"schema_version": 1, "command": name, "ok": False, "exit_code": 2,
            "error": {"code": code, "message": message, "hint": hint}}
