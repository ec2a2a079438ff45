"""With a model, the demo agent drives the real `anthropic` SDK: against a fake Messages API on loopback that
checks every request as the real one does, it completes the loop, puts the model's questions to the person, hands
invented tools back as unknown_tool, and ends every API failure in one line and a non-zero exit."""
from __future__ import annotations

import socket

import pytest

from agent_runs import run_agent, run_agent_in_process
from conftest import ROOT, history, tables
from fake_messages_api import Error, FakeMessagesAPI, message, text, tool_results, tool_use

MIGRATIONS = ROOT / "migrations"
VERSIONS = ["20260208_120000_create_users_table", "20260208_121500_add_index_on_users_email"]


@pytest.fixture
def agent(monkeypatch, capsys, db_url):
    """Return a runner of the demo agent in this process, on the repository's migrations and db_url."""
    return lambda *args, api_url, answers=(): run_agent_in_process(monkeypatch, capsys, db_url, MIGRATIONS, *args,
                                                                   api_url=api_url, answers=answers)


def apply_previewed_plan(request):
    """The model's third turn: it shows the SQL of the dry run it got back and calls apply with its plan_id."""
    (preview,) = tool_results(request)
    assert preview["document"]["dry_run"] and not preview.get("is_error")
    return message(text(f"The dry run creates the users table and its email index; no findings. Applying plan "
                        f"{preview['document']['plan_id']}."),
                   tool_use("apply", {"plan_id": preview["document"]["plan_id"]}, "toolu_3"))


def ask_about_the_preview(request):
    (preview,) = tool_results(request)
    return message(text(f"This would run CREATE TABLE users and CREATE INDEX idx_users_email. "
                        f"Shall I apply plan {preview['document']['plan_id']}?"))


def apply_after_the_answer(request):
    """After the person's answer (a plain user message), call apply with the plan_id of the earlier dry run."""
    assert request["messages"][-1] == {"role": "user", "content": "yes"}
    plan_id = request["messages"][-2]["content"][0]["text"].rsplit(" ", 1)[-1].rstrip("?")
    return message(tool_use("apply", {"plan_id": plan_id}, "toolu_3"))


def test_the_model_plans_previews_and_applies_after_the_person_confirms_with_its_text_shown_first(db_url):
    script = [message(text("Let me look at the plan first."), tool_use("plan", {}, "toolu_1")),
              message(tool_use("apply", {"dry_run": True}, "toolu_2")),
              apply_previewed_plan,
              message(text("Applied both migrations; nothing is pending.")),
              ]
    with FakeMessagesAPI(script) as api:
        result = run_agent(db_url, MIGRATIONS, api_url=api.url, stdin="y\n")

    out = result.stdout
    assert api.problems == [] and result.returncode == 0, out + result.stderr
    assert "Brain: Anthropic model" in out and "Let me look at the plan first." in out
    question = out.index("? Execute apply with plan id")
    assert out.index("The dry run creates the users table") < question and out.index("| CREATE TABLE users") < question
    assert "Final answer\n   Applied both migrations" in out
    (applied,) = tool_results(api.requests[-1])
    assert applied["document"]["applied"] == VERSIONS and not applied.get("is_error")
    assert "migration" in api.requests[0]["system"] and "harness confirms" in api.requests[0]["system"]
    assert [row[0] for row in history(db_url)] == VERSIONS and "users" in tables(db_url)


def test_a_question_in_the_models_text_is_answered_by_yes_and_the_conversation_goes_on(db_url, agent):
    script = [message(tool_use("apply", {"dry_run": True}, "toolu_1")),
              ask_about_the_preview,
              apply_after_the_answer,
              message(text("Done: both migrations are applied."))]
    with FakeMessagesAPI(script) as api:
        result = agent("--yes", api_url=api.url)

    out = result.stdout
    assert api.problems == [] and result.returncode == 0, out + result.stderr
    assert "Shall I apply plan" in out and "? Your answer: yes (--yes)" in out
    assert "Final answer\n   Done: both migrations are applied." in out
    assert [row[0] for row in history(db_url)] == VERSIONS


def test_the_persons_own_answer_to_the_models_question_goes_back_to_the_model(db_url, agent):
    script = [message(tool_use("apply", {"dry_run": True}, "toolu_1")),
              ask_about_the_preview,
              message(text("Understood: nothing was applied."))]
    with FakeMessagesAPI(script) as api:
        result = agent(api_url=api.url, answers=("no, not today",))

    assert api.problems == [] and result.returncode == 0, result.stdout + result.stderr
    assert "? Your answer:" in result.stdout and "Final answer\n   Understood" in result.stdout
    assert api.requests[-1]["messages"][-1] == {"role": "user", "content": "no, not today"}
    assert history(db_url) == []


def test_an_invented_tool_and_calls_that_would_not_run_go_back_to_the_model_without_a_question(db_url, agent):
    script = [message(tool_use("drop_database", {}, "toolu_1"),
                      tool_use("apply", {"dry_run": "false", "plan_id": "abc"}, "toolu_2"),
                      tool_use("apply", {}, "toolu_3"),
                      tool_use("apply", {"plan_id": "abc"}, "toolu_4")),
              message(text("None of those worked; nothing was changed."))]
    with FakeMessagesAPI(script) as api:
        result = agent("--yes", api_url=api.url)

    assert api.problems == [], api.problems
    codes = [r["document"]["error"]["code"] for r in tool_results(api.requests[-1])]
    assert codes == ["unknown_tool", "usage", "plan_id_required", "not_previewed"]
    assert all(r["is_error"] for r in tool_results(api.requests[-1]))
    assert result.returncode == 1 and "Traceback" not in result.stderr and "KeyError" not in result.stderr
    assert "? Execute" not in result.stdout and "tool call(s) failed" in result.stdout
    assert history(db_url) == []


def one_line_error(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_bad_request_answer_is_one_line_and_exit_1(db_url, agent):
    with FakeMessagesAPI([Error(400, "invalid_request_error", "max_tokens: 4096 > 1024, the maximum")]) as api:
        result = agent(api_url=api.url)

    assert "The Messages API answered 400 (invalid_request_error): max_tokens: 4096" in one_line_error(result)
    assert "Final answer" not in result.stdout and history(db_url) == []


def test_an_overloaded_api_is_retried_then_reported_in_one_line(db_url, agent):
    overloaded = Error(529, "overloaded_error", "Overloaded")
    with FakeMessagesAPI([overloaded, overloaded]) as api:
        result = agent("--max-retries", "1", api_url=api.url)

    assert "answered 529 (overloaded_error) after 1 retries: Overloaded" in one_line_error(result)
    assert len(api.requests) == 2 and api.problems == []


def test_a_refused_connection_is_one_line_naming_the_address(db_url, agent):
    with socket.socket() as probe:     # a port nobody listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = agent("--max-retries", "0", api_url=f"http://127.0.0.1:{port}")

    assert f"Cannot reach the Messages API at http://127.0.0.1:{port}" in one_line_error(result)


def test_an_answer_cut_at_max_tokens_is_an_error_not_the_final_answer(db_url, agent):
    with FakeMessagesAPI([message(text("Here is the plan: 2 pend"), stop_reason="max_tokens")]) as api:
        result = agent(api_url=api.url)

    assert "cut off at max_tokens" in one_line_error(result)
    assert "Final answer" not in result.stdout and "2 pend" not in result.stdout and api.problems == []
