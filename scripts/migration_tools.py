"""The agent tools (plan, apply, rollback, generate, lint, verify), defined once for the demo agent and the MCP server.

Each tool has a name, a JSON schema for its arguments, one for its result, behaviour hints (read-only, destructive,
idempotent) and the script it runs. Every call runs the real script as a subprocess with --json, so an agent
exercises exactly what a person at a terminal would. What comes back is made fit for a tool caller: the CLI
commands a script suggests become tool calls (`next_call`, `run_call`), hints name tools and arguments instead of
scripts and flags, and every string value is redacted, so no DB_URL password reaches an agent or a transcript.
Imports: stdlib, and migration_core's config and output (both stdlib only).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_core import __version__, config, output

SCRIPTS = Path(__file__).resolve().parent
SERVER_NAME = "database-migration-assistant"
SERVER_VERSION = __version__


@dataclass(frozen=True)
class Behaviour:
    """What a tool does to its world: the MCP tool annotations (hints to the host, not guarantees)."""

    read_only: bool
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False     # the database and the migration files are a closed world


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    script: str
    flags: dict[str, str]           # argument name -> command-line flag
    behaviour: Behaviour
    changes_database: bool = False  # True: executes only with a plan_id from a preview the person confirmed


# ---- input schemas ------------------------------------------------------------------------------------------

def arguments(required: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON schema of a tool's arguments: an object with exactly these properties."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


VERSION = {"type": "string", "description": "a migration version: the file name without .sql"}
PLAN_ID = {"type": "string", "description": "the plan_id of the preview the user confirmed (from plan or dry_run)"}
DRY_RUN = {"type": "boolean", "description": "true: preview only (the SQL, findings and plan_id), change nothing"}
PENDING = {"type": "boolean", "description": "only the migrations not yet applied to the database"}

# ---- output schemas: the envelope every document has, plus the fields of each command -----------------------

NULLABLE_STRING = {"type": ["string", "null"]}
LIST = {"type": "array"}
CALL = {"type": ["object", "null"], "description": "the tool call to make next: {tool, arguments}, or null",
        "properties": {"tool": {"type": "string"}, "arguments": {"type": "object"}}}
ERROR = {"type": "object", "required": ["code", "message", "hint"],
         "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"}}}


def result(**properties: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON schema of a tool's result: the common envelope plus these (optional) fields."""
    return {"type": "object", "required": ["schema_version", "command", "ok", "exit_code"],
            "properties": {"schema_version": {"type": "integer"}, "command": {"type": "string"},
                           "ok": {"type": "boolean"}, "exit_code": {"type": "integer"},
                           "error": ERROR, **properties}}


RUN_RESULT = dict(dry_run={"type": "boolean"}, plan_id=NULLABLE_STRING, steps=LIST,
                  would_refuse={"type": ["object", "null"]}, run_call=CALL, next_call=CALL,
                  failed={"type": ["object", "null"]}, durations_ms={"type": "object"})

TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in [
    ToolSpec("plan", "Plan migrations",
             "Read-only: list applied and pending migrations (with risk findings), drift, missing files and failed "
             "attempts, with the plan_id of what apply would do now. Run this first.",
             arguments(target=VERSION),
             result(plan_id=NULLABLE_STRING, applied=LIST, pending=LIST, drift=LIST, missing=LIST, failed=LIST,
                    decision=NULLABLE_STRING, next_call=CALL, run_call=CALL),
             "plan_migrations.py", {"target": "--target"}, Behaviour(read_only=True)),
    ToolSpec("apply", "Apply migrations",
             "Apply pending migrations in order. Call with dry_run=true first to preview the SQL and findings and "
             "get a plan_id; after the user confirms, call with that plan_id (and the same target) to execute.",
             arguments(dry_run=DRY_RUN, target=VERSION, plan_id=PLAN_ID),
             result(applied=LIST, **RUN_RESULT),
             "apply_migrations.py", {"dry_run": "--dry-run", "target": "--target", "plan_id": "--plan-id"},
             # Idempotent: a second call with the same plan_id runs nothing (the plan has moved on).
             Behaviour(read_only=False, destructive=True, idempotent=True), changes_database=True),
    ToolSpec("rollback", "Roll back migrations",
             "Roll back the latest applied migration, or every one applied after `to`. Call with dry_run=true "
             "first; after the user confirms, call with that plan_id (and the same `to`).",
             arguments(dry_run=DRY_RUN, to=VERSION, plan_id=PLAN_ID),
             result(rolled_back=LIST, **RUN_RESULT),
             "rollback_migrations.py", {"dry_run": "--dry-run", "to": "--to", "plan_id": "--plan-id"},
             Behaviour(read_only=False, destructive=True, idempotent=True), changes_database=True),
    ToolSpec("generate", "Generate a migration file",
             "Create a new migration file. name: lowercase letters, digits, underscores. up/down: SQL for the "
             "sections (omit down only if the change cannot be undone).",
             arguments(("name",), name={"type": "string", "pattern": "^[a-z0-9_]+$"},
                       up={"type": "string", "description": "SQL of the up section"},
                       down={"type": "string", "description": "SQL of the down section"}),
             result(path={"type": "string"}, version={"type": "string"}, reversible={"type": "boolean"}),
             "generate_migration.py", {"name": "--name", "up": "--up", "down": "--down"},
             Behaviour(read_only=False, destructive=False, idempotent=False)),
    ToolSpec("lint", "Lint migration files",
             "Read-only: check the migration files for risky changes (long locks, table rewrites, data loss). "
             "pending=true: only the files not yet applied; db=true: judge them against the live tables.",
             arguments(pending=PENDING, db={"type": "boolean", "description": "judge against the live tables"},
                       fail_on={"type": "string", "enum": ["low", "medium", "high"],
                                "description": "severity at which ok is false (default high)"}),
             result(risk=NULLABLE_STRING, migrations=LIST),
             "lint_migrations.py", {"pending": "--pending", "db": "--db", "fail_on": "--fail-on"},
             Behaviour(read_only=True)),
    ToolSpec("verify", "Verify down undoes up",
             "Prove each migration's down undoes its up exactly, on a scratch database created and dropped on the "
             "same server; the target database is never written.",
             arguments(pending=PENDING, **{"from": {**VERSION, "description": "verify from this version on"},
                                           "to": {**VERSION, "description": "verify up to this version"}},
                       allow_irreversible={"type": "boolean",
                                           "description": "report irreversible migrations without failing"}),
             result(verified=LIST, problems=LIST, checks=LIST),
             "verify_migrations.py", {"pending": "--pending", "from": "--from", "to": "--to",
                                      "allow_irreversible": "--allow-irreversible"},
             # Not read-only: it creates and drops a scratch database (never touching the target).
             Behaviour(read_only=False, destructive=False, idempotent=True)),
]}


# ---- checking a call before it runs -------------------------------------------------------------------------

def argument_problem(name: str, arguments: Any) -> str | None:
    """Return what is wrong with a call's arguments (unknown, missing, wrong type), or None if they are valid.

    A small check of the schemas above, so the demo agent needs no jsonschema package: `"false"` is not a
    boolean, and that must never count as "not a dry run".
    """
    spec = TOOLS[name]
    if not isinstance(arguments, dict):
        return f"The arguments of {name} must be an object."
    properties = spec.input_schema["properties"]
    for key, value in arguments.items():
        if key not in properties:
            return f"{name} has no argument {key!r}; its arguments: {', '.join(properties) or 'none'}."
        expected = properties[key]["type"]
        if (expected == "boolean") != isinstance(value, bool) or (expected == "string") != isinstance(value, str):
            return f"Argument {key!r} of {name} must be a {expected}, not {json.dumps(value)}."
        if "pattern" in properties[key] and not re.fullmatch(properties[key]["pattern"].strip("^$"), value):
            return f"Argument {key!r} of {name} must match {properties[key]['pattern']}."
        if "enum" in properties[key] and value not in properties[key]["enum"]:
            return f"Argument {key!r} of {name} must be one of {', '.join(properties[key]['enum'])}."
    missing = [key for key in spec.input_schema.get("required", []) if key not in arguments]
    if missing:
        return f"{name} needs the argument(s) {', '.join(missing)}."
    return None


def is_execution(name: str, arguments: Any) -> bool:
    """Return whether the call asks to change the database: apply or rollback, valid arguments, not a dry run."""
    return (name in TOOLS and TOOLS[name].changes_database and argument_problem(name, arguments) is None
            and arguments.get("dry_run", False) is False)


def needs_confirmation(name: str, arguments: Any) -> bool:
    """Return whether the call would change the database if run now, so the person must confirm it first.

    Only a call that would really run: a known tool that changes the database, valid arguments, a plan_id, and
    dry_run absent or exactly false. Anything else is refused or previews, and asking about it would be noise.
    """
    return is_execution(name, arguments) and bool(arguments.get("plan_id"))


def command_line(name: str, arguments: dict[str, Any], migrations_dir: str | Path) -> list[str]:
    """Return the argv that runs a tool's script with --json."""
    spec = TOOLS[name]
    argv = [sys.executable, str(SCRIPTS / spec.script), "--json", "--migrations-dir", str(migrations_dir)]
    for key, value in arguments.items():
        if value is True:
            argv.append(spec.flags[key])
        elif value not in (None, False, ""):
            argv.append(f"{spec.flags[key]}={value}")  # one word: a value such as "--allow-risk" stays a value
    return argv


def call_tool(name: str, arguments: Any, migrations_dir: str | Path,
              project_dir: str | Path | None = None) -> dict[str, Any]:
    """Run one tool and return its JSON document plus exit_code, in tool-call form; refuse unconfirmed changes.

    project_dir: where the script runs, so a relative migrations_dir and the project's .env resolve there.
    """
    if name not in TOOLS:
        return tool_error(name, "unknown_tool", f"There is no tool named {name!r}.",
                          f"Use one of: {', '.join(TOOLS)}.")
    problem = argument_problem(name, arguments)
    if problem:
        return tool_error(name, "usage", problem, f"Call {name} again with arguments that match its input schema.")
    if is_execution(name, arguments) and not arguments.get("plan_id"):
        return tool_error(name, "plan_id_required",
                          f"{name} changes the database, so it needs the plan_id the user confirmed.",
                          f"Call {name} with dry_run=true, show the plan to the user, and after they confirm call "
                          f"{name} again with its plan_id.")
    env = dict(os.environ)
    if TOOLS[name].changes_database:
        env[config.REQUIRE_PLAN_ID_ENV] = "1"  # the scripts enforce confirm-then-execute too, not only this layer
    completed = subprocess.run(command_line(name, arguments, migrations_dir), capture_output=True, text=True,
                               cwd=project_dir, env=env)
    try:
        document = json.loads(completed.stdout)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        document = for_tool_caller(document)
    else:  # a crash before the script could print its document: its stderr, as it is
        document = {"schema_version": output.SCHEMA_VERSION, "command": name, "ok": False,
                    "error": {"code": "unexpected_error",
                              "message": completed.stderr.strip()[-500:] or "The script printed no JSON document.",
                              "hint": "Run the script by hand to see what happened."}}
    document["exit_code"] = completed.returncode
    return redact(document)


def redact(document: Any) -> Any:
    """Return the document with every form of the DB_URL password removed from its string values."""
    return output.redact(document, config.password_forms(config.find_db_url()))


def tool_error(name: str, code: str, message: str, hint: str) -> dict[str, Any]:
    return {"schema_version": output.SCHEMA_VERSION, "command": name, "ok": False, "exit_code": 2,
            "error": {"code": code, "message": message, "hint": hint}}


# ---- speaking to a tool caller: tool calls instead of command lines -----------------------------------------

SCRIPT_TOOLS = {spec.script: spec.name for spec in TOOLS.values()}
FLAG_ARGUMENTS = {flag: argument for spec in TOOLS.values() for argument, flag in spec.flags.items()}
TEXT_KEYS = {"hint", "message", "decision", "schema_check_reason"}   # prose that may name scripts and flags
SCRIPT_WORDS = re.compile(r"\b(?:python\s+)?(?:scripts/)?(\w+_migrations?\.py)\b")
FLAG = re.compile(r"(?<![\w'-])(--[a-z][a-z-]*)(?:[ =]((?!--)\w+(?:\.\w+)*))?")
RUN_WORD = re.compile(r"\b([Rr])un (the \w+ tool)")
TOOL_THEN_ARGUMENT = re.compile(r"(the \w+ tool) (\w+=)")


def for_tool_caller(document: dict[str, Any]) -> dict[str, Any]:
    """Return the document as a tool caller needs it: next_call/run_call instead of command lines, hints in tools."""
    document = {key: value for key, value in document.items() if key not in ("next_command", "run_command")} | {
        key.replace("_command", "_call"): command_to_call(document[key])
        for key in ("next_command", "run_command") if key in document}
    return translate_prose(document)


def command_to_call(command: str | None) -> dict[str, Any] | None:
    """Turn a suggested command line (`python .../apply_migrations.py ... --plan-id X`) into {tool, arguments}."""
    if not command:
        return None
    words = shlex.split(command)
    tool = next((SCRIPT_TOOLS[Path(word).name] for word in words if Path(word).name in SCRIPT_TOOLS), None)
    if tool is None:
        return None
    spec, call_arguments = TOOLS[tool], {}
    flag_to_argument = {flag: argument for argument, flag in spec.flags.items()}
    for index, word in enumerate(words):
        argument = flag_to_argument.get(word)
        if argument is None:
            continue
        is_switch = spec.input_schema["properties"][argument]["type"] == "boolean"
        call_arguments[argument] = True if is_switch else words[index + 1]
    return {"tool": tool, "arguments": call_arguments}


def translate_prose(value: Any, key: str = "") -> Any:
    """Rewrite hints and messages (never SQL or paths) to name tools and arguments instead of scripts and flags."""
    if isinstance(value, dict):
        return {k: translate_prose(item, k) for k, item in value.items()}
    if isinstance(value, list):
        return [translate_prose(item, key) for item in value]
    if isinstance(value, str) and key in TEXT_KEYS:
        return translate_text(value)
    return value


def translate_text(text: str) -> str:
    """Say `the apply tool with dry_run=true` where a script says `apply_migrations.py --dry-run`.

    Flags the tools do not offer (--allow-risk, --record-schema, ...) stay as they are, and a closing sentence
    says that a person runs those at a terminal: they are the person's decisions, not the agent's.
    """
    text = SCRIPT_WORDS.sub(lambda m: f"the {script_tool(m.group(1))} tool", text)
    text = RUN_WORD.sub(lambda m: ("C" if m.group(1) == "R" else "c") + f"all {m.group(2)}", text)
    text = text.replace(" with the same --migrations-dir", "").replace(" --json", "")
    terminal_only: list[str] = []

    def flag_word(match: re.Match[str]) -> str:
        flag, value = match.group(1), match.group(2)
        argument = FLAG_ARGUMENTS.get(flag)
        if argument is None:
            terminal_only.append(flag)
            return match.group(0)
        is_switch = flag in ("--dry-run", "--pending", "--db", "--allow-irreversible")
        if is_switch:
            return f"{argument}=true" + (f" {value}" if value else "")
        return f"{argument}={value}" if value else argument

    text = FLAG.sub(flag_word, text)
    text = TOOL_THEN_ARGUMENT.sub(r"\1 with \2", text)
    if terminal_only:
        flags = ", ".join(dict.fromkeys(terminal_only))
        text += (f" ({flags}: command-line option(s) of the scripts that the tools do not offer; the person decides "
                 "and runs that at a terminal.)")
    return text


def script_tool(script: str) -> str:
    """Return the tool name of a script file name (plan_migrations.py -> plan)."""
    return SCRIPT_TOOLS.get(script, script.split("_")[0])
