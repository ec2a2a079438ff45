"""Demo agent: runs a prompt through a tool-use loop over the migration tools and prints a readable transcript.

Two brains behind one loop: with ANTHROPIC_API_KEY set and the `anthropic` package installed, a real model drives
(Messages API tool use, SKILL.md as the system prompt); otherwise a deterministic offline policy that follows
SKILL.md's workflow. Before apply or rollback (not a dry run) the person at the terminal confirms; --yes says yes.

    python examples/demo_agent.py [--prompt TEXT | --prompt-file FILE] [--migrations-dir DIR] [--yes]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from migration_core import config, output  # noqa: E402
from migration_tools import TOOLS, call_tool, needs_confirmation  # noqa: E402

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    call_id: str = ""


@dataclass(frozen=True)
class FinalAnswer:
    text: str


@dataclass
class Skill:
    name: str
    description: str
    body: str


def load_skill(path: Path = ROOT / "SKILL.md") -> Skill:
    """Read SKILL.md: its front matter (name, description) and body."""
    text = path.read_text(encoding="utf-8")
    _, front, body = text.split("---", 2)
    fields = dict(line.split(":", 1) for line in front.strip().splitlines() if ":" in line)
    return Skill(fields["name"].strip(), fields["description"].strip(), body.strip())


# ---- the offline brain: SKILL.md's workflow as a deterministic policy ----------------------------------------

def read_intent(prompt: str) -> str:
    """Return 'rollback', 'apply' or 'preview' from the prompt's wording."""
    words = prompt.lower()
    if "roll back" in words or "rollback" in words or "undo" in words:
        return "rollback"
    if "apply" in words and not any(w in words for w in ("dry-run", "dry run", "preview")):
        return "apply"
    return "preview"


def offline_policy(prompt: str) -> Generator[ToolCall | FinalAnswer, dict[str, Any], None]:
    """Plan → stop on drift → preview → (confirmed) execute with plan_id → verify with plan."""
    plan = yield ToolCall("plan", {})
    if not plan.get("ok"):
        yield FinalAnswer(explain_error(plan, "I stopped before changing anything."))
        return
    intent = read_intent(prompt)
    tool = "rollback" if intent == "rollback" else "apply"
    preview = yield ToolCall(tool, {"dry_run": True})
    if not preview.get("ok"):
        yield FinalAnswer(explain_error(preview, "Nothing was changed."))
        return
    steps = [s["version"] for s in preview.get("steps", [])]
    if not steps:
        yield FinalAnswer(f"{describe_plan(plan)} There is nothing to {tool.replace('rollback', 'roll back')}.")
        return
    if intent == "preview":
        yield FinalAnswer(f"{describe_plan(plan)} Dry run: apply would run {len(steps)} migration(s) in this order: "
                          f"{', '.join(steps)}. Nothing was changed. To apply exactly this plan, confirm plan id "
                          f"{preview['plan_id']}.")
        return
    result = yield ToolCall(tool, {"plan_id": preview["plan_id"]})
    if not result.get("ok"):
        yield FinalAnswer(explain_error(result, ""))
        return
    after = yield ToolCall("plan", {})
    done = result.get("applied") or result.get("rolled_back") or []
    verb = "Applied" if tool == "apply" else "Rolled back"
    yield FinalAnswer(f"{verb} {len(done)} migration(s): {', '.join(done)}. Now: {describe_plan(after)}")


def describe_plan(plan: dict[str, Any]) -> str:
    pending = plan.get("pending", [])
    text = f"{len(plan.get('applied', []))} applied, {len(pending)} pending"
    if pending:
        text += " (" + ", ".join(p["version"] + ("" if p["reversible"] else " IRREVERSIBLE")
                                 + (f" risk {p['risk']}" if p.get("risk") else "") for p in pending) + ")"
    drift = plan.get("drift", []) + plan.get("missing", [])
    if drift:
        return text + f"; DRIFT in {', '.join(d['version'] for d in drift)}."
    schema = plan.get("schema_drift", [])
    if schema:
        changes = "; ".join(c["description"] for c in schema)
        return text + f"; the live schema changed outside the migrations: {changes}."
    return text + "; no drift."


def explain_error(document: dict[str, Any], consequence: str) -> str:
    """Explain a failed tool call in plain language, with the next step."""
    error = document.get("error") or {}
    if error.get("code") == "not_confirmed":
        return "You did not confirm, so nothing was changed. Tell me what you would like to do instead."
    if error.get("code") in ("drift_detected", "missing_file", "schema_drift"):
        return f"Drift detected: {describe_plan(document)} {error['message']} {consequence} Next: {error['hint']}"
    failed = document.get("failed")
    if failed:
        where = f"{failed['path']}, line {failed['line']}" if failed.get("line") else failed["path"]
        return (f"Migration {failed['version']} failed ({where}): {failed['message']} (SQLSTATE {failed['sqlstate']}). "
                f"It was rolled back, so none of it was applied. Next: {error.get('hint', '')}")
    return f"{error.get('message', 'The tool failed.')} {consequence} Next: {error.get('hint', '')}".strip()


class OfflineBrain:
    label = "offline policy (no ANTHROPIC_API_KEY or no anthropic package)"

    def __init__(self, skill: Skill, prompt: str) -> None:
        self.policy = offline_policy(prompt)
        self.started = False

    def next(self, results: list[dict[str, Any]]) -> list[ToolCall] | FinalAnswer:
        action = self.policy.send(results[-1]) if self.started else next(self.policy)
        self.started = True
        return action if isinstance(action, FinalAnswer) else [action]


# ---- the model brain: Messages API tool use ------------------------------------------------------------------

class ModelBrain:
    label = f"Anthropic model {MODEL}"

    def __init__(self, skill: Skill, prompt: str) -> None:
        import anthropic
        self.client = anthropic.Anthropic()
        self.system = skill.body
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        self.pending: list[ToolCall] = []
        self.tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                      for t in TOOLS.values()]

    def next(self, results: list[dict[str, Any]]) -> list[ToolCall] | FinalAnswer:
        if self.pending:
            self.messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.call_id, "content": json.dumps(result)}
                for call, result in zip(self.pending, results)]})
        response = self.client.messages.create(model=MODEL, max_tokens=2048, system=self.system,
                                               tools=self.tools, messages=self.messages)
        self.messages.append({"role": "assistant", "content": response.content})
        self.pending = [ToolCall(b.name, dict(b.input), b.id) for b in response.content if b.type == "tool_use"]
        if self.pending:
            return self.pending
        return FinalAnswer("".join(b.text for b in response.content if b.type == "text"))


def choose_brain(skill: Skill, prompt: str) -> OfflineBrain | ModelBrain:
    if os.environ.get("ANTHROPIC_API_KEY"):
        try:
            return ModelBrain(skill, prompt)
        except ImportError:
            pass
    return OfflineBrain(skill, prompt)


# ---- the loop and its transcript ----------------------------------------------------------------------------

def summarise(name: str, document: dict[str, Any]) -> str:
    """One line describing a tool result for the transcript."""
    if not document.get("ok"):
        error = document.get("error") or {}
        ran = f"exit {document['exit_code']}" if "exit_code" in document else "not run"
        return f"{ran}, {error.get('code')}: {error.get('message')}"
    if name == "plan":
        return f"exit 0, {describe_plan(document)} plan_id {document['plan_id']}"
    if name == "generate":
        return f"exit 0, created {document['path']}"
    if document.get("dry_run"):
        steps = ", ".join(s["version"] for s in document["steps"]) or "nothing"
        return f"exit 0, dry run: would run {steps} (plan_id {document['plan_id']})"
    done = document.get("applied", document.get("rolled_back", []))
    return f"exit 0, done: {', '.join(done) or 'nothing'}"


@functools.cache
def secrets() -> list[str]:
    """Return the forms of the DB_URL password, which no transcript line may show."""
    return config.password_forms(config.find_db_url())


def say(text: str) -> None:
    """Print one transcript line, redacted (the prompt, a model's answer or an argument may quote DB_URL)."""
    print(output.redact(text, secrets()))


def show_arguments(arguments: dict[str, Any]) -> str:
    """Return a call's arguments as JSON, redacted value by value before serialisation."""
    return json.dumps(output.redact(arguments, secrets()))


def confirm(call: ToolCall, assume_yes: bool) -> bool:
    """Ask the person at the terminal before anything changes the database."""
    question = output.redact(f"  ? Execute {call.name} with plan id {call.arguments.get('plan_id')}? [y/N] ",
                             secrets())
    if assume_yes:
        say(question + "y (--yes)")
        return True
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        print()
        return False


def run_agent(prompt: str, migrations_dir: str, assume_yes: bool, max_turns: int = 12) -> int:
    skill = load_skill()
    brain = choose_brain(skill, prompt)
    say(f"== Skill loaded: {skill.name}\n   {skill.description}\n== Brain: {brain.label}")
    say(f"== Prompt\n   {prompt}")
    results: list[dict[str, Any]] = []
    for _ in range(max_turns):
        action = brain.next(results)
        if isinstance(action, FinalAnswer):
            say(f"== Final answer\n   {action.text}")
            return 0
        results = []
        for call in action:
            say(f"-> tool {call.name} {show_arguments(call.arguments)}")
            if needs_confirmation(call.name, call.arguments) and not confirm(call, assume_yes):
                result = {"ok": False, "error": {"code": "not_confirmed", "message": "The user declined.",
                                                 "hint": "Ask what they want to change."}}
            else:
                result = call_tool(call.name, call.arguments, migrations_dir)
            say(f"<- {summarise(call.name, result)}")
            results.append(result)
    say("== Stopped: too many turns")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a prompt through the migration assistant's tools.",
                                     allow_abbrev=False)
    parser.add_argument("--prompt", help="the prompt (default: examples/demo_prompt.txt)")
    parser.add_argument("--prompt-file", type=Path, default=ROOT / "examples" / "demo_prompt.txt")
    parser.add_argument("--migrations-dir", default="migrations")
    parser.add_argument("--yes", action="store_true", help="answer yes to confirmations (non-interactive runs)")
    args = parser.parse_args()
    prompt = args.prompt or args.prompt_file.read_text(encoding="utf-8").strip()
    return run_agent(prompt, args.migrations_dir, args.yes)


if __name__ == "__main__":
    sys.exit(main())
