"""MCP server over stdio exposing the migration tools (plan, apply, rollback, generate, lint, verify) to MCP hosts.

Tools, schemas, behaviour hints and the script each one runs come from migration_tools, shared with the demo
agent. Same rule as there: apply and rollback execute only with a plan_id from a dry run or plan. Needs
requirements-mcp.txt (mcp 2.x).

    python scripts/mcp_server.py [--project-dir DIR] [--migrations-dir DIR]

--project-dir (default: the working directory) is the user's project: a relative --migrations-dir and its .env
(DB_URL, when the environment has none) resolve against it, so the host may start the server from anywhere.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from migration_tools import SERVER_NAME, SERVER_VERSION, TOOLS, ToolSpec, call_tool

# The mcp SDK takes seconds to import: main() checks its arguments first, then imports it (see load_sdk).
anyio: Any = None
types: Any = None

INSTRUCTIONS = ("Start with plan. apply and rollback change the database: call them with dry_run=true, show the "
                "user the SQL and findings, and only after the user confirms call them again with the plan_id. "
                "Stop on drift. Follow next_call / run_call in the results; hints name tools and arguments.")


def load_sdk() -> None:
    """Import anyio and the mcp types into this module's globals."""
    global anyio, types
    import anyio as anyio_module
    import mcp_types
    anyio, types = anyio_module, mcp_types


def describe(spec: ToolSpec) -> Any:
    """Return the MCP description of one tool: schemas in and out, and the hints a host uses to ask or not."""
    hints = spec.behaviour
    annotations = types.ToolAnnotations(title=spec.title, read_only_hint=hints.read_only,
                                        destructive_hint=None if hints.read_only else hints.destructive,
                                        idempotent_hint=None if hints.read_only else hints.idempotent,
                                        open_world_hint=hints.open_world)
    return types.Tool(name=spec.name, title=spec.title, description=spec.description,
                      input_schema=spec.input_schema, output_schema=spec.output_schema, annotations=annotations)


def build_server(migrations_dir: Path, project_dir: Path) -> Any:
    """Return an MCP server whose tools run the migration scripts on migrations_dir, from project_dir."""
    from mcp.server import Server

    async def list_tools(_ctx: Any, _params: Any) -> Any:
        return types.ListToolsResult(tools=[describe(spec) for spec in TOOLS.values()])

    async def call(_ctx: Any, params: Any) -> Any:
        document = await anyio.to_thread.run_sync(call_tool, params.name, dict(params.arguments or {}),
                                                  migrations_dir, project_dir)
        # call_tool redacted the document value by value; the text content is the same document serialised.
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(document))],
                                    structured_content=document, is_error=not document.get("ok"))

    return Server(SERVER_NAME, version=SERVER_VERSION, instructions=INSTRUCTIONS,
                  on_list_tools=list_tools, on_call_tool=call)


async def serve(migrations_dir: Path, project_dir: Path) -> None:
    from mcp.server.stdio import stdio_server
    server = build_server(migrations_dir, project_dir)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve the migration tools over MCP (stdio).", allow_abbrev=False)
    parser.add_argument("--project-dir", type=Path, default=Path.cwd(), metavar="DIR",
                        help="the user's project: relative paths and its .env resolve here (default: working dir)")
    parser.add_argument("--migrations-dir", type=Path, default=Path("migrations"), metavar="DIR",
                        help="directory of migration files, relative to --project-dir (default: migrations)")
    args = parser.parse_args()
    project_dir = args.project_dir.resolve()
    if not project_dir.is_dir():
        print(f"error: --project-dir {project_dir} is not a directory.", file=sys.stderr)
        return 2
    # The server's own reads (the .env whose password every result is redacted of) resolve there too.
    os.chdir(project_dir)
    load_sdk()
    anyio.run(serve, project_dir / args.migrations_dir, project_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
