"""A fake Messages API on loopback: checks each request the way the real API does, then plays scripted answers.

The demo agent talks to it through the real `anthropic` SDK (ANTHROPIC_BASE_URL). A request the real API would
refuse (roles not alternating, a tool_use left unanswered, a malformed tool schema, no max_tokens, ...) gets the
real API's 400 invalid_request_error and is recorded in `problems`, so a test fails on it even if the agent
copes. Each scripted entry is a response body (dict), a callable taking the request body and returning one, or
an Error (status, error type, message) to answer with instead.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
BLOCK_KEYS = {"text": {"type", "text", "citations", "cache_control"},
              "tool_use": {"type", "id", "name", "input", "cache_control", "caller"},
              "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"}}


@dataclass(frozen=True)
class Error:
    status: int
    type: str
    message: str


Entry = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | Error


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: Any, call_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def message(*blocks: dict[str, Any], stop_reason: str | None = None) -> dict[str, Any]:
    """Return a Messages API response body; stop_reason defaults to tool_use when a block calls a tool."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake", "content": list(blocks),
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10}}


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the tool_result blocks of the request's last message, each content parsed as JSON."""
    content = request["messages"][-1]["content"]
    blocks = [b for b in content if isinstance(content, list) and b.get("type") == "tool_result"]
    return [{**b, "document": json.loads(b["content"])} for b in blocks]


def request_problem(body: Any) -> str | None:
    """Return why the real API would answer 400 to this request body, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required (a positive integer)"
    problem = tools_problem(body.get("tools", []))
    if problem:
        return problem
    if "system" in body and not isinstance(body["system"], (str, list)):
        return "system: must be a string or a list of text blocks"
    return messages_problem(body.get("messages"))


def tools_problem(tools: Any) -> str | None:
    if not isinstance(tools, list):
        return "tools: must be a list"
    names = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if tool["name"] in names:
            return f"tools: Tool names must be unique ({tool['name']})"
        names.add(tool["name"])
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{index}.input_schema.type: Input should be 'object'"
        if not isinstance(schema.get("properties", {}), dict):
            return f"tools.{index}.input_schema.properties: Input should be an object"
        if set(tool) - {"name", "description", "input_schema", "cache_control", "type"}:
            return f"tools.{index}: Extra inputs are not permitted"
    return None


def messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return "messages: first message must use the \"user\" role"
    open_calls: set[str] = set()
    for index, entry in enumerate(messages):
        role = entry.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if index and messages[index - 1].get("role") == role:
            return "messages: roles must alternate between \"user\" and \"assistant\""
        blocks = entry.get("content")
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{index}.content: must be a non-empty string or list"
        for number, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in BLOCK_KEYS:
                return f"messages.{index}.content.{number}.type: unknown block type {kind!r}"
            if set(block) - BLOCK_KEYS[kind]:
                return f"messages.{index}.content.{number}: Extra inputs are not permitted"
            if kind == "text" and not (isinstance(block.get("text"), str) and block["text"].strip()):
                return f"messages.{index}.content.{number}: text content blocks must be non-empty"
            if kind == "tool_use" and (role != "assistant" or not isinstance(block.get("input"), dict)):
                return f"messages.{index}.content.{number}: tool_use only in assistant messages, input an object"
            if kind == "tool_result" and role != "user":
                return f"messages.{index}.content.{number}: tool_result only in user messages"
        results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
        if role == "user":
            if results - open_calls:
                return (f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{sorted(results - open_calls)}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.")
            if open_calls - results:
                return (f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {sorted(open_calls - results)}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message.")
            open_calls = set()
        else:
            open_calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
    if open_calls:
        return "messages: the last assistant message has tool_use blocks but no user message answers them"
    return None


class FakeMessagesAPI:
    """A loopback HTTP server answering POST /v1/messages from a script; use as a context manager."""

    def __init__(self, script: list[Entry]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeMessagesAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def answer(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Return (status, body, headers) for one request: a validation error, or the next scripted entry."""
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = None
        self.requests.append(body)
        problem = None
        if path != "/v1/messages":
            return 404, error_body("not_found_error", f"Not found: {path}"), {}
        if not (headers.get("x-api-key") or headers.get("authorization")) or not headers.get("anthropic-version"):
            problem = "an API key (x-api-key or Authorization) and the anthropic-version header are required"
        problem = problem or request_problem(body)
        if problem:
            self.problems.append(problem)
            return 400, error_body("invalid_request_error", problem), {}
        if not self.script:
            self.problems.append("more requests than scripted answers")
            return 500, error_body("api_error", "the fake API ran out of scripted answers"), {}
        entry = self.script.pop(0)
        if isinstance(entry, Error):
            # retry-after-ms keeps the SDK's retries of a 529 quick; the real API sends retry-after.
            return entry.status, error_body(entry.type, entry.message), {"retry-after-ms": "1"}
        return 200, entry(body) if callable(entry) else entry, {}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, body, headers = fake.answer(self.path.split("?")[0], self.headers, raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_fake")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
