"""MCP server over stdio exposing the migration tools (plan, apply, rollback, generate) to MCP hosts.

Tools, schemas and the script each one runs come from migration_tools, shared with the demo agent. Same rule as
there: apply and rollback execute only with a plan_id from a dry run or plan. Needs requirements-mcp.txt (mcp 2.x).

    python scripts/mcp_server.py [--migrations-dir DIR]      (DB_URL from the environment or .env)
"""
from __future__ import annotations

import argparse
import json

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

from migration_tools import TOOLS, call_tool


def build_server(migrations_dir: str) -> Server:
    """Return an MCP server whose tools run the migration scripts on migrations_dir."""
    async def list_tools(_ctx, _params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.input_schema) for t in TOOLS.values()])

    async def call(_ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        document = await anyio.to_thread.run_sync(call_tool, params.name, dict(params.arguments or {}),
                                                  migrations_dir)
        # call_tool redacted the document value by value; the text content is the same document serialised.
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(document))],
                                    structured_content=document, is_error=not document.get("ok"))

    return Server("database-migration-assistant", on_list_tools=list_tools, on_call_tool=call)


async def serve(migrations_dir: str) -> None:
    server = build_server(migrations_dir)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the migration tools over MCP (stdio).", allow_abbrev=False)
    parser.add_argument("--migrations-dir", default="migrations")
    anyio.run(serve, parser.parse_args().migrations_dir)


if __name__ == "__main__":
    main()
