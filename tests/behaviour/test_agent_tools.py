"""The demo agent and the MCP server drive the real scripts, and never change the database without a plan id."""
import json
import os
import subprocess
import sys

import anyio

from conftest import ROOT, history, tables

DEMO = ROOT / "examples" / "demo_agent.py"


def run_agent(db_url, migrations, *args, stdin=""):
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"} | {"DB_URL": db_url}
    return subprocess.run([sys.executable, str(DEMO), "--migrations-dir", str(migrations), *args],
                          capture_output=True, text=True, env=env, input=stdin, timeout=120)


def test_offline_agent_completes_the_demo_prompt_without_changing_anything(db_url):
    result = run_agent(db_url, ROOT / "migrations")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Skill loaded: database-migration-assistant" in out
    assert "show any drift" in out                      # the prompt from examples/demo_prompt.txt
    assert '-> tool plan {}' in out and '-> tool apply {"dry_run": true}' in out
    assert "Final answer" in out and "no drift" in out and "Nothing was changed" in out
    assert history(db_url) == [] and "users" not in tables(db_url)


def test_offline_agent_applies_then_rolls_back_after_confirmation(db_url):
    migrations = ROOT / "migrations"
    assert run_agent(db_url, migrations, "--prompt", "Apply the pending migrations.", "--yes").returncode == 0
    assert "users" in tables(db_url)
    result = run_agent(db_url, migrations, "--prompt", "Roll back the latest migration.", "--yes")
    assert result.returncode == 0, result.stderr
    assert '-> tool rollback {"dry_run": true}' in result.stdout and "Rolled back 1 migration(s)" in result.stdout
    assert history(db_url)[-1] == ("20260208_121500_add_index_on_users_email", "down", "success")


def test_offline_agent_changes_nothing_when_the_user_declines(db_url):
    result = run_agent(db_url, ROOT / "migrations", "--prompt", "Apply the pending migrations.", stdin="n\n")
    assert result.returncode == 0
    assert "nothing was changed" in result.stdout
    assert history(db_url) == []


def call_mcp(db_url, calls):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def session():
        params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "scripts" / "mcp_server.py"),
                                       "--migrations-dir", str(ROOT / "migrations")], env={"DB_URL": db_url})
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            listed = await client.list_tools()
            results = [await client.call_tool(name, args) for name, args in calls]
            return listed, results
    return anyio.run(session)


def test_mcp_server_lists_the_tools_and_answers_plan_over_stdio(db_url):
    listed, (plan, unconfirmed) = call_mcp(db_url, [("plan", {}), ("apply", {})])
    assert [t.name for t in listed.tools] == ["plan", "apply", "rollback", "generate"]
    assert "plan_id" in listed.tools[1].input_schema["properties"]
    document = json.loads(plan.content[0].text)
    assert document["ok"] and [p["version"] for p in document["pending"]] == [
        "20260208_120000_create_users_table", "20260208_121500_add_index_on_users_email"]
    refused = json.loads(unconfirmed.content[0].text)
    assert unconfirmed.is_error and refused["error"]["code"] == "plan_id_required"
    assert history(db_url) == []
