"""scripts/mcp_server.py, started by the official MCP client over stdio from `/` with --project-dir, lists six
tools with behaviour hints and output schemas, and its results match those schemas and speak in tool calls."""
from __future__ import annotations

import json
import os
import shutil
import sys

import anyio
import jsonschema
import pytest

from conftest import ROOT, history, tables

SERVER = ROOT / "scripts" / "mcp_server.py"
VERSIONS = ["20260208_120000_create_users_table", "20260208_121500_add_index_on_users_email"]


def talk_to_server(project_dir, conversation):
    """Start the server (cwd /, DB_URL only in the project's .env) and run conversation(client) against it."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {k: v for k, v in os.environ.items() if k != "DB_URL" and not k.startswith("MIGRATIONS_")}

    async def session():
        params = StdioServerParameters(command=sys.executable, args=[str(SERVER), "--project-dir", str(project_dir)],
                                       env=env, cwd="/")
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            initialized = await client.initialize()
            with anyio.fail_after(90):
                return initialized, await conversation(client)
    return anyio.run(session)


@pytest.fixture
def project(tmp_path, db_url):
    """A user's project: migrations/ (the repository's two) and a .env with DB_URL, as relative paths."""
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    (tmp_path / ".env").write_text(f"DB_URL={db_url}\n", encoding="utf-8")
    return tmp_path


def structured(result, tool):
    """Return a result's structured content after checking it against the tool's output schema."""
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def prose(document):
    """Every hint and message of a document, for checking that none names a script or a flag."""
    if isinstance(document, dict):
        return [text for key, value in document.items()
                for text in ([value] if key in ("hint", "message", "decision") and isinstance(value, str)
                             else prose(value))]
    return [text for item in document for text in prose(item)] if isinstance(document, list) else []


def test_the_server_lists_six_tools_with_hints_and_schemas_and_runs_the_whole_loop_from_slash(project, db_url):
    async def conversation(client):
        listed = await client.list_tools()
        calls = [("plan", {}), ("lint", {}), ("verify", {}), ("apply", {}), ("apply", {"dry_run": True})]
        results = [await client.call_tool(name, arguments) for name, arguments in calls]
        plan_id = results[-1].structured_content["plan_id"]
        results.append(await client.call_tool("apply", {"plan_id": plan_id}))
        return listed, results

    initialized, (listed, results) = talk_to_server(project, conversation)

    from migration_core import __version__
    assert initialized.server_info.name == "database-migration-assistant"
    assert initialized.server_info.version == __version__ != ""
    tools = {tool.name: tool for tool in listed.tools}
    assert list(tools) == ["plan", "apply", "rollback", "generate", "lint", "verify"]
    hints = {name: (t.annotations.read_only_hint, t.annotations.destructive_hint, t.annotations.idempotent_hint,
                    t.annotations.open_world_hint) for name, t in tools.items()}
    assert hints == {"plan": (True, None, None, False), "lint": (True, None, None, False),
                     "apply": (False, True, True, False), "rollback": (False, True, True, False),
                     "generate": (False, False, False, False), "verify": (False, False, True, False)}
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.output_schema["type"] == "object" and tool.input_schema["additionalProperties"] is False

    plan, lint, verify, unconfirmed, preview, applied = results
    plan_doc = structured(plan, tools["plan"])
    assert [p["version"] for p in plan_doc["pending"]] == VERSIONS
    assert plan_doc["migrations_dir"] == str(project / "migrations")          # resolved against --project-dir
    assert plan_doc["next_call"] == {"tool": "apply", "arguments": {"dry_run": True}}
    assert "next_command" not in plan_doc and "run_command" not in plan_doc

    lint_doc = structured(lint, tools["lint"])
    assert lint.is_error and lint_doc["error"]["code"] == "risk_found"
    assert [m["version"] for m in lint_doc["migrations"]] == VERSIONS
    verify_doc = structured(verify, tools["verify"])
    assert not verify.is_error and verify_doc["verified"] == VERSIONS

    refused = structured(unconfirmed, tools["apply"])
    assert unconfirmed.is_error and refused["error"]["code"] == "plan_id_required"
    assert "dry_run=true" in refused["error"]["hint"]
    preview_doc = structured(preview, tools["apply"])
    assert preview_doc["dry_run"] and [s["version"] for s in preview_doc["steps"]] == VERSIONS
    assert preview_doc["run_call"] == {"tool": "apply", "arguments": {"plan_id": preview_doc["plan_id"]}}
    for text in prose([plan_doc, lint_doc, verify_doc, refused, preview_doc]):
        assert "_migrations.py" not in text and "--dry-run" not in text and "--plan-id" not in text, text

    applied_doc = structured(applied, tools["apply"])
    assert not applied.is_error and applied_doc["applied"] == VERSIONS and applied_doc["exit_code"] == 0
    assert [row[0] for row in history(db_url)] == VERSIONS and "users" in tables(db_url)


def test_a_missing_project_dir_is_one_line_and_exit_2(tmp_path):
    import subprocess
    result = subprocess.run([sys.executable, str(SERVER), "--project-dir", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is not a directory" in result.stderr
