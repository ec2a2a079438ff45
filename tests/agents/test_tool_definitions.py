"""The tools are defined once: only a call that would really run asks for confirmation, wrong arguments are a usage
error before anything runs, and what a script suggests comes back as tool calls, not command lines."""
from __future__ import annotations

import json
import subprocess

import jsonschema
import pytest

import migration_tools as tools


@pytest.mark.parametrize("name, arguments, asks", [
    ("apply", {"plan_id": "abc"}, True),
    ("apply", {"plan_id": "abc", "dry_run": False}, True),
    ("rollback", {"plan_id": "abc", "to": "v1"}, True),
    ("apply", {"plan_id": "abc", "dry_run": True}, False),        # a preview
    ("apply", {"plan_id": "abc", "dry_run": "false"}, False),     # invalid arguments: never run
    ("apply", {}, False),                                         # refused: no plan id
    ("apply", {"plan_id": ""}, False),
    ("apply", {"plan_id": "abc", "force": True}, False),          # unknown argument
    ("apply", ["plan_id"], False),
    ("drop_database", {"plan_id": "abc"}, False),                 # unknown tool: no KeyError
    ("plan", {}, False), ("generate", {"name": "x"}, False), ("verify", {}, False),
])
def test_only_a_call_that_would_run_needs_confirmation(name, arguments, asks):
    assert tools.needs_confirmation(name, arguments) is asks


@pytest.mark.parametrize("name, arguments, code", [
    ("drop_database", {}, "unknown_tool"),
    ("apply", {"dry_run": "false"}, "usage"),
    ("apply", {"target": 20260208}, "usage"),
    ("generate", {"name": "Bad Name"}, "usage"),
    ("generate", {}, "usage"),
    ("lint", {"fail_on": "severe"}, "usage"),
    ("apply", {}, "plan_id_required"),
    ("rollback", {"dry_run": False}, "plan_id_required"),
])
def test_a_call_that_cannot_run_is_answered_without_running_anything(name, arguments, code, tmp_path):
    document = tools.call_tool(name, arguments, tmp_path / "no-such-dir")
    assert document["ok"] is False and document["exit_code"] == 2 and document["error"]["code"] == code
    assert document["error"]["hint"]
    if name in tools.TOOLS:
        jsonschema.validate(document, tools.TOOLS[name].output_schema)


def test_every_tool_has_well_formed_schemas_and_flags_for_each_argument():
    for spec in tools.TOOLS.values():
        jsonschema.Draft202012Validator.check_schema(spec.input_schema)
        jsonschema.Draft202012Validator.check_schema(spec.output_schema)
        assert set(spec.flags) == set(spec.input_schema["properties"]), spec.name
        assert (tools.SCRIPTS / spec.script).is_file()


def test_suggested_command_lines_become_tool_calls():
    run = "python /p/scripts/apply_migrations.py --migrations-dir '/a b/m' --json --plan-id f6f150d1c16e"
    preview = "python /p/scripts/rollback_migrations.py --migrations-dir m --json --dry-run --to 20260208_1200"
    document = tools.for_tool_caller({"ok": True, "next_command": preview, "run_command": run})
    assert document == {"ok": True, "next_call": {"tool": "rollback", "arguments": {"dry_run": True,
                                                                                     "to": "20260208_1200"}},
                        "run_call": {"tool": "apply", "arguments": {"plan_id": "f6f150d1c16e"}}}
    assert tools.for_tool_caller({"ok": False, "next_command": None}) == {"ok": False, "next_call": None}


@pytest.mark.parametrize("hint, said", [
    ("Run plan_migrations.py with the same --migrations-dir to list the versions.",
     "Call the plan tool to list the versions."),
    ("Run python scripts/apply_migrations.py --dry-run first, then --plan-id abc123.",
     "Call the apply tool with dry_run=true first, then plan_id=abc123."),
    ("Create it with python scripts/generate_migration.py --name NAME.",
     "Create it with the generate tool with name=NAME."),
    ("Review, then run apply --allow-risk.",
     "Review, then run apply --allow-risk. (--allow-risk: command-line option(s) of the scripts that the tools do "
     "not offer; the person decides and runs that at a terminal.)"),
])
def test_hints_name_tools_and_arguments_and_say_which_flags_only_a_person_at_a_terminal_has(hint, said):
    assert tools.for_tool_caller({"error": {"hint": hint}}) == {"error": {"hint": said}}


def test_sql_and_paths_are_never_rewritten():
    step = {"sql": "SELECT 1; -- run apply_migrations.py --dry-run", "path": "/x/--dry-run.sql"}
    assert tools.for_tool_caller({"steps": [step]}) == {"steps": [step]}


def test_apply_runs_its_script_from_the_project_dir_with_the_plan_id_required_underneath(monkeypatch, tmp_path):
    seen = {}

    def fake_run(argv, **kwargs):
        seen.update(argv=argv, **kwargs)
        document = {"schema_version": 1, "command": "apply", "ok": True, "dry_run": False, "applied": ["v1"],
                    "next_command": None, "run_command": None}
        return subprocess.CompletedProcess(argv, 0, json.dumps(document), "")
    monkeypatch.setattr(tools.subprocess, "run", fake_run)

    document = tools.call_tool("apply", {"plan_id": "--allow-risk"}, "migrations", project_dir=tmp_path)

    assert seen["cwd"] == tmp_path and seen["env"]["MIGRATIONS_REQUIRE_PLAN_ID"] == "1"
    assert seen["argv"][-1] == "--plan-id=--allow-risk"        # a value never becomes a flag
    assert document == {"schema_version": 1, "command": "apply", "ok": True, "dry_run": False, "applied": ["v1"],
                        "next_call": None, "run_call": None, "exit_code": 0}
