"""Demo agent: runs a prompt through a tool-use loop over the migration tools and prints a readable transcript.

Two brains behind one loop: with ANTHROPIC_API_KEY set and the `anthropic` package installed, a real model drives
(Messages API tool use, SKILL.md plus a note on this harness as the system prompt; ANTHROPIC_BASE_URL and
ANTHROPIC_MODEL are honoured); otherwise a deterministic offline policy that follows SKILL.md's workflow.

The harness, not the brain, guards the database: before an apply or rollback that would run (valid arguments,
a plan_id, dry_run absent or false) it shows the SQL and findings of that plan's dry run and asks the person;
--yes answers yes. A question the model asks in text is put to the person too (--yes answers it "yes").
Exit 0: done; 1: a tool call failed, the agent stopped on a refusal, or the model's API failed; 2: usage.

    python examples/demo_agent.py [--prompt TEXT | --prompt-file FILE] [--migrations-dir DIR] [--yes]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from migration_core import config, output  # noqa: E402
from migration_tools import TOOLS, call_tool, needs_confirmation, tool_error  # noqa: E402

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5")
MAX_TOKENS = 4096
SQL_LINES_SHOWN = 30    # per step in the transcript; the rest is counted, not hidden silently

HARNESS_NOTE = """
## This harness

You are running in a harness that gives you the tools plan, apply, rollback, generate, lint and verify instead
of the command lines above: call the tools, with the arguments of their schemas (dry_run=true, not --dry-run);
the migrations directory is already chosen. Results carry next_call / run_call (tool calls) instead of commands.

The harness confirms before anything changes the database: when you call apply or rollback with a plan_id (and
without dry_run), it first shows the person the SQL and findings of that plan's dry run and asks them; if they
decline, the result's error code is not_confirmed. So: plan, preview with dry_run=true, show the person what will
run and its findings in your text, then either ask them in text (they will answer you) or call the tool with the
plan_id. A plan_id counts only from a dry run of that tool in this conversation (the person must have seen its
SQL). Never pass dry_run as a string. Stop on drift and on would_refuse, and mention failed attempts.
"""


class AgentError(Exception):
    """The conversation cannot go on (the model's API failed or its answer was unusable): one line, exit 1."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Any
    call_id: str = ""


@dataclass
class Turn:
    """What the brain does next: say something, call tools, ask the person, or finish."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    question: bool = False      # the text asks the person and waits for the answer
    failed: bool = False        # a final answer that reports a stop (a refusal), not a completed task


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

PREVIEW_ONLY = ("dry-run mode", "dry run mode", "dry run only", "dry-run only", "preview only", "only preview",
                "without applying", "don't apply", "do not apply")


def read_intent(prompt: str) -> str:
    """Return 'rollback', 'apply' or 'preview' from the prompt's wording."""
    words = prompt.lower()
    if "roll back" in words or "rollback" in words or "undo" in words:
        return "rollback"
    if "apply" in words and not any(phrase in words for phrase in PREVIEW_ONLY):
        return "apply"
    return "preview"


def offline_policy(prompt: str) -> Generator[Turn, Any, None]:
    """Plan → stop on drift → preview → stop on would_refuse → (confirmed) run with plan_id → plan again."""
    (plan,) = yield Turn(calls=[ToolCall("plan", {})])
    if not plan.get("ok"):
        yield Turn(explain_error(plan, "I stopped before changing anything."), failed=True)
        return
    intent = read_intent(prompt)
    tool = "rollback" if intent == "rollback" else "apply"
    (preview,) = yield Turn(f"{describe_plan(plan)} Previewing {tool} first.",
                            calls=[ToolCall(tool, {"dry_run": True})])
    if not preview.get("ok"):
        yield Turn(explain_error(preview, "Nothing was changed."), failed=True)
        return
    steps = [s["version"] for s in preview.get("steps", [])]
    if not steps:
        yield Turn(f"{describe_plan(plan)} There is nothing to {tool.replace('rollback', 'roll back')}.")
        return
    refusal = preview.get("would_refuse")
    if refusal:
        yield Turn(f"The dry run shows the real {tool} would refuse: {refusal.get('message')} "
                   f"{refusal.get('hint', '')} I stopped there; nothing was changed.", failed=True)
        return
    if intent == "preview":
        yield Turn(f"{describe_plan(plan)} Dry run: {tool} would run {len(steps)} migration(s) in this order: "
                   f"{', '.join(steps)}. Nothing was changed. To run exactly this plan, confirm plan id "
                   f"{preview['plan_id']}.")
        return
    (result,) = yield Turn(f"The dry run above is what {tool} would run ({', '.join(steps)}).",
                           calls=[ToolCall(tool, {"plan_id": preview["plan_id"]})])
    if not result.get("ok"):
        yield Turn(explain_error(result, ""), failed=result.get("error", {}).get("code") != "not_confirmed")
        return
    (after,) = yield Turn(calls=[ToolCall("plan", {})])
    done = result.get("applied") or result.get("rolled_back") or []
    verb = "Applied" if tool == "apply" else "Rolled back"
    yield Turn(f"{verb} {len(done)} migration(s): {', '.join(done)}. Now: {describe_plan(after)}")


def describe_plan(plan: dict[str, Any]) -> str:
    """Summarise a plan: counts, pending versions with risk, failed attempts, drift."""
    pending = plan.get("pending", [])
    text = f"{len(plan.get('applied', []))} applied, {len(pending)} pending"
    if pending:
        text += " (" + ", ".join(p["version"] + ("" if p["reversible"] else " IRREVERSIBLE")
                                 + (f" risk {p['risk']}" if p.get("risk") else "") for p in pending) + ")"
    failed = plan.get("failed", [])
    if failed:
        text += f"; {len(failed)} failed attempt(s): " + "; ".join(
            f"{f['version']} ({f.get('direction', 'up')}): {first_line(f.get('error_message'))}" for f in failed)
    drift = plan.get("drift", []) + plan.get("missing", [])
    if drift:
        return text + f"; DRIFT in {', '.join(d['version'] for d in drift)}."
    schema = plan.get("schema_drift", [])
    if schema:
        changes = "; ".join(c["description"] for c in schema)
        return text + f"; the live schema changed outside the migrations: {changes}."
    return text + "; no drift."


def first_line(text: str | None) -> str:
    return (text or "no message").strip().splitlines()[0] if (text or "").strip() else "no message"


def explain_error(document: dict[str, Any], consequence: str) -> str:
    """Explain a failed tool call in plain language, with the next step."""
    error = document.get("error") or {}
    if error.get("code") == "not_confirmed":
        return "You did not confirm, so nothing was changed. Tell me what you would like to do instead."
    if error.get("code") in ("drift_detected", "missing_file", "schema_drift"):
        return f"Drift detected: {describe_plan(document)} {error['message']} {consequence} Next: {error['hint']}"
    failed = document.get("failed")
    if isinstance(failed, dict) and failed.get("version"):
        where = f"{failed['path']}, line {failed['line']}" if failed.get("line") else failed.get("path")
        return (f"Migration {failed['version']} failed ({where}): {failed.get('message')} "
                f"(SQLSTATE {failed.get('sqlstate')}). It was rolled back, so none of it was applied. "
                f"Next: {error.get('hint', '')}")
    return f"{error.get('message', 'The tool failed.')} {consequence} Next: {error.get('hint', '')}".strip()


class OfflineBrain:
    label = "offline policy (no ANTHROPIC_API_KEY or no anthropic package)"

    def __init__(self, skill: Skill, prompt: str) -> None:
        self.policy = offline_policy(prompt)
        self.started = False

    def next(self, feedback: list[dict[str, Any]] | str | None) -> Turn:
        turn = self.policy.send(feedback) if self.started else next(self.policy)
        self.started = True
        return turn


# ---- the model brain: Messages API tool use ------------------------------------------------------------------

class ModelBrain:
    label = f"Anthropic model {MODEL}"

    def __init__(self, skill: Skill, prompt: str, max_retries: int = 2) -> None:
        import anthropic
        self.anthropic = anthropic
        self.client = anthropic.Anthropic(max_retries=max_retries)   # ANTHROPIC_BASE_URL honoured by the SDK
        self.system = skill.body + "\n" + HARNESS_NOTE
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        self.pending: list[ToolCall] = []
        self.tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                      for t in TOOLS.values()]

    def next(self, feedback: list[dict[str, Any]] | str | None) -> Turn:
        if self.pending:  # every tool_use is answered by its tool_result, in the next user message
            self.messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.call_id, "content": json.dumps(result),
                 "is_error": not result.get("ok")} for call, result in zip(self.pending, feedback or [])]})
        elif isinstance(feedback, str):
            self.messages.append({"role": "user", "content": feedback})
        response = self.create()
        self.messages.append({"role": "assistant", "content": [block.to_dict() for block in response.content]})
        text = "\n".join(b.text for b in response.content if b.type == "text").strip()
        if response.stop_reason == "max_tokens":
            raise AgentError(f"The model's answer was cut off at max_tokens ({MAX_TOKENS}) before it finished; "
                             "nothing more was run. Ask for less at once, or raise MAX_TOKENS.")
        self.pending = [ToolCall(b.name, b.input, b.id) for b in response.content if b.type == "tool_use"]
        if response.stop_reason == "tool_use" and self.pending:
            return Turn(text, calls=self.pending)
        if response.stop_reason in ("end_turn", "stop_sequence") and not self.pending:
            return Turn(text, question=asks_something(text))
        raise AgentError(f"The model stopped with stop_reason {response.stop_reason!r}, which this demo does not "
                         "handle; nothing more was run.")

    def create(self) -> Any:
        """Call the Messages API; turn its failures into one AgentError line."""
        anthropic = self.anthropic
        try:
            return self.client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, system=self.system,
                                               tools=self.tools, messages=self.messages)
        except anthropic.APIStatusError as err:
            detail = err.body.get("error", {}) if isinstance(err.body, dict) else {}
            kind = detail.get("type") or type(err).__name__
            message = detail.get("message") or str(err)
            retryable = err.status_code in (408, 409, 429) or err.status_code >= 500   # the SDK retries these
            retried = f" after {self.client.max_retries} retries" if retryable else ""
            raise AgentError(f"The Messages API answered {err.status_code} ({kind}){retried}: {message}") from None
        except anthropic.APIConnectionError as err:
            cause = err.__cause__ or err
            raise AgentError(f"Cannot reach the Messages API at {self.client.base_url}: {cause} "
                             "(check ANTHROPIC_BASE_URL and the network).") from None
        except anthropic.AnthropicError as err:
            raise AgentError(f"The Anthropic client failed: {err}") from None


def asks_something(text: str) -> bool:
    """Return whether the model's closing text asks the person something (it ends with a question mark)."""
    return text.rstrip(" \n*_`").endswith("?")


def choose_brain(skill: Skill, prompt: str, max_retries: int) -> OfflineBrain | ModelBrain:
    if os.environ.get("ANTHROPIC_API_KEY"):
        try:
            return ModelBrain(skill, prompt, max_retries)
        except ImportError:
            say("== The anthropic package is not installed (pip install anthropic): using the offline policy.")
    return OfflineBrain(skill, prompt)


# ---- the transcript ------------------------------------------------------------------------------------------

def summarise(name: str, document: dict[str, Any]) -> str:
    """One line describing a tool result for the transcript."""
    if not document.get("ok"):
        error = document.get("error") or {}
        ran = f"exit {document['exit_code']}" if "exit_code" in document else "not run"
        return f"{ran}, {error.get('code')}: {error.get('message')}"
    if name == "plan":
        return f"exit 0, {describe_plan(document)} plan_id {document.get('plan_id')}"
    if name == "generate":
        return f"exit 0, created {document.get('path')}"
    if name in ("lint", "verify"):
        return f"exit 0, {name} passed"
    if document.get("dry_run"):
        steps = ", ".join(s["version"] for s in document.get("steps", [])) or "nothing"
        refusal = document.get("would_refuse")
        tail = f"; the real run would refuse: {refusal.get('message')}" if refusal else ""
        return f"exit 0, dry run: would run {steps} (plan_id {document.get('plan_id')}){tail}"
    done = document.get("applied", document.get("rolled_back", []))
    return f"exit 0, done: {', '.join(done) or 'nothing'}"


def preview_lines(document: dict[str, Any]) -> list[str]:
    """Return the SQL and findings of each step of a dry run, as the person should see them before confirming."""
    lines = []
    steps = document.get("steps", [])
    for number, step in enumerate(steps, 1):
        reversible = "" if step.get("reversible", True) else ", IRREVERSIBLE"
        lines.append(f"   [{number}/{len(steps)}] {step.get('direction', 'up')} {step['version']}{reversible}")
        sql = (step.get("sql") or "").rstrip().splitlines()
        lines += [f"       | {line}" for line in sql[:SQL_LINES_SHOWN]]
        if len(sql) > SQL_LINES_SHOWN:
            lines.append(f"       | ... {len(sql) - SQL_LINES_SHOWN} more line(s) in {step.get('path')}")
        for finding in step.get("findings", []):
            line = f" line {finding['line']}" if finding.get("line") else ""
            lines.append(f"       ! {finding.get('severity')} {finding.get('rule')}{line}: {finding.get('message')}")
        if not step.get("findings"):
            lines.append("       (no risk findings)")
    return lines


@functools.cache
def secrets() -> list[str]:
    """Return the forms of the DB_URL password, which no transcript line may show."""
    return config.password_forms(config.find_db_url())


def say(text: str) -> None:
    """Print one transcript line, redacted (the prompt, a model's answer or an argument may quote DB_URL)."""
    print(output.redact(text, secrets()), flush=True)


def show_arguments(arguments: Any) -> str:
    """Return a call's arguments as JSON, redacted value by value before serialisation."""
    return json.dumps(output.redact(arguments, secrets()))


def indented(text: str) -> str:
    return "\n".join(f"   {line}" for line in text.splitlines())


def ask(question: str, assume_yes: bool) -> str | None:
    """Put a question to the person at the terminal; --yes answers "yes"; None at the end of input."""
    question = output.redact(question, secrets())
    if assume_yes:
        say(f"{question} yes (--yes)")
        return "yes"
    try:
        return input(question + " ").strip()
    except EOFError:
        print()
        return None


# ---- the loop ------------------------------------------------------------------------------------------------

class Harness:
    """Runs the brain's tool calls, guards the ones that change the database, and remembers what failed."""

    def __init__(self, migrations_dir: str, assume_yes: bool) -> None:
        self.migrations_dir = migrations_dir
        self.assume_yes = assume_yes
        self.previews: dict[str, dict[str, Any]] = {}   # plan_id -> the dry run the person was shown
        self.failures: list[str] = []

    def run(self, call: ToolCall) -> dict[str, Any]:
        say(f"-> tool {call.name} {show_arguments(call.arguments)}")
        if needs_confirmation(call.name, call.arguments):
            result = self.confirmed_call(call)
        else:
            result = call_tool(call.name, call.arguments, self.migrations_dir)
        say(f"<- {summarise(call.name, result)}")
        if result.get("ok") and result.get("dry_run"):
            for line in preview_lines(result):
                say(line)
            if result.get("plan_id"):
                self.previews[f"{call.name}:{result['plan_id']}"] = result
        code = (result.get("error") or {}).get("code")
        if not result.get("ok") and code != "not_confirmed":
            self.failures.append(f"{call.name} ({code})")
        return result

    def confirmed_call(self, call: ToolCall) -> dict[str, Any]:
        """Ask the person before an apply or rollback that would run; only a previewed plan id is put to them."""
        plan_id = call.arguments["plan_id"]
        preview = self.previews.get(f"{call.name}:{plan_id}")
        if preview is None:
            return tool_error(call.name, "not_previewed", f"No dry run of {call.name} with plan id {plan_id} was "
                              "shown to the person, so there is nothing they could confirm.",
                              f"Call {call.name} with dry_run=true, show its SQL and findings, then call it with "
                              "the plan_id of that preview.")
        if preview.get("would_refuse"):
            refusal = preview["would_refuse"]
            return tool_error(call.name, "would_refuse", f"The dry run of plan id {plan_id} showed the real run "
                              f"would refuse: {refusal.get('message')}", refusal.get("hint", ""))
        steps = ", ".join(s["version"] for s in preview.get("steps", []))
        say(f"   (the SQL and findings of plan id {plan_id} are shown above: {steps})")
        answer = ask(f"  ? Execute {call.name} with plan id {plan_id}? [y/N]", self.assume_yes)
        if (answer or "").lower() not in ("y", "yes"):
            return {"schema_version": 1, "command": call.name, "ok": False,
                    "error": {"code": "not_confirmed", "message": "The user declined; nothing was changed.",
                              "hint": "Ask what they want to change."}}
        return call_tool(call.name, call.arguments, self.migrations_dir)


def run_agent(prompt: str, migrations_dir: str, assume_yes: bool, max_retries: int = 2,
              max_turns: int = 16) -> int:
    """Run the conversation to its end; return the exit code (0 done, 1 failed or stopped)."""
    skill = load_skill()
    brain = choose_brain(skill, prompt, max_retries)
    say(f"== Skill loaded: {skill.name}\n   {skill.description}\n== Brain: {brain.label}")
    say(f"== Prompt\n{indented(prompt)}")
    harness = Harness(migrations_dir, assume_yes)
    feedback: list[dict[str, Any]] | str | None = None
    try:
        for _ in range(max_turns):
            turn = brain.next(feedback)
            if not turn.calls and not turn.question:
                say(f"== Final answer\n{indented(turn.text or '(no text)')}")
                return closing(harness, stopped=turn.failed)
            if turn.text:
                say(f"== Agent\n{indented(turn.text)}")
            if turn.calls:
                feedback = [harness.run(call) for call in turn.calls]
                continue
            answer = ask("  ? Your answer:", assume_yes)
            if answer is None:
                say("== No answer (end of input): stopping here; nothing more was run.")
                return closing(harness, stopped=False)
            feedback = answer or "(no answer)"   # the API refuses an empty message
        say(f"== Stopped: more than {max_turns} turns")
        return closing(harness, stopped=True)
    except AgentError as err:
        print(output.redact(f"error: {err}", secrets()), file=sys.stderr, flush=True)
        closing(harness, stopped=True)
        return 1


def closing(harness: Harness, stopped: bool) -> int:
    """Say which tool calls failed, and return the exit code."""
    if harness.failures:
        say(f"== {len(harness.failures)} tool call(s) failed: {', '.join(harness.failures)}")
    return 1 if harness.failures or stopped else 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a prompt through the migration assistant's tools.",
                                     allow_abbrev=False)
    parser.add_argument("--prompt", help="the prompt (default: examples/demo_prompt.txt)")
    parser.add_argument("--prompt-file", type=Path, default=ROOT / "examples" / "demo_prompt.txt")
    parser.add_argument("--migrations-dir", default="migrations")
    parser.add_argument("--yes", action="store_true",
                        help="answer yes to confirmations and to the model's questions (non-interactive runs)")
    parser.add_argument("--max-retries", type=int, default=2, choices=range(0, 11), metavar="N",
                        help="with a model: retries of a failed API request (overloaded, rate-limited; default 2)")
    args = parser.parse_args()
    prompt = args.prompt or args.prompt_file.read_text(encoding="utf-8").strip()
    return run_agent(prompt, args.migrations_dir, args.yes, args.max_retries)


if __name__ == "__main__":
    sys.exit(main())
