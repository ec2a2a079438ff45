"""Redaction works on values, before serialisation (issue 9): JSON escaping cannot hide a password, a short
password cannot eat keys or words, and the fragments libpq echoes from a misread URL are covered too.
"""
from __future__ import annotations

import importlib
import json
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from psycopg2.extensions import parse_dsn

from conftest import ROOT
from migration_core import config, output
from migration_core.errors import ConfigError, ServerError, UsageError


def substrings(text: str, length: int = 4) -> set[str]:
    return {text[i:i + length] for i in range(len(text) - length + 1)}


def leaked(password: str, text: str) -> list[str]:
    return sorted(piece for piece in substrings(password) if piece in text)


def test_a_document_is_redacted_in_its_string_values_and_never_in_its_keys():
    document = {"applied": ["app", "apply app"], "app": {"nested": "u:app@h"}, "count": 3, "ok": True, "none": None}

    redacted = output.redact(document, ["app"])

    assert redacted == {"applied": ["***", "apply ***"], "app": {"nested": "u:***@h"}, "count": 3, "ok": True,
                        "none": None}


def test_a_short_secret_never_mangles_a_word_in_text():
    text = "applied 20260101_000000_app (appendix) app. u:app@host"

    assert output.redact(text, ["app"]) == "applied 20260101_000000_app (appendix) ***. u:***@host"


def test_a_long_secret_is_replaced_wherever_it_appears():
    assert output.redact("xSecretPwx and SecretPw", ["SecretPw"]) == "x***x and ***"


@pytest.mark.parametrize("password", ['Quo"te\\Back', "Ünïcødé-Päss€", "tab\there", "two\nlines"],
                         ids=["quote_and_backslash", "non_ascii", "tab", "newline"])
def test_json_output_shows_no_password_that_json_escaping_would_have_hidden(password):
    url = "postgresql://u:" + password.replace("\n", "%0A").replace("\t", "%09") + "@h/d"
    error = ConfigError(f"Cannot connect: server said {password!s} and {password}", hint=f"hint {password}")

    text = output.to_json("plan", None, error, config.password_forms(url))

    document = json.loads(text)
    assert password not in document["error"]["message"] + document["error"]["hint"]
    assert json.dumps(password)[1:-1] not in text and password not in text
    assert document["error"]["message"] == "Cannot connect: server said *** and ***"


def test_json_keys_survive_a_short_password():
    text = output.to_json("apply", None, UsageError("bad"), ["app", "ok"])

    document = json.loads(text)
    assert set(document) >= {"schema_version", "command", "ok", "applied", "failed", "error"}
    assert document["command"] == "apply" and document["ok"] is False


def test_the_json_error_carries_the_sqlstate_when_the_server_gave_one():
    with_state = json.loads(output.to_json("apply", None, ServerError("timeout", sqlstate="57014")))
    without = json.loads(output.to_json("apply", None, UsageError("bad")))

    assert with_state["error"]["sqlstate"] == "57014"
    assert "sqlstate" not in without["error"]


def test_the_human_error_is_one_line():
    line = output.error_line(ConfigError("first line\nsecond line", hint="do this"))

    assert "\n" not in line and line.startswith("error: first line second line")


# ---- what libpq echoes from a URL it misreads ---------------------------------------------------------------

def libpq_complaint(url: str) -> str:
    """Return libpq's own error for a URL as written (no normalisation), or '' when it parses."""
    try:
        parse_dsn(url)
    except Exception as err:  # psycopg2.ProgrammingError: "invalid dsn: ..."
        return str(err)
    return ""


def test_libpq_echoes_part_of_the_issue_example_and_redaction_removes_it():
    password = "Ab/Sup3rS3cretMiddle%Qz?Tail9"
    url = f"postgresql://u:{password}@host/db"
    complaint = libpq_complaint(url)

    assert leaked(password, complaint)  # the raw URL makes libpq print a piece of the password...
    assert not leaked(password, output.redact(complaint, config.password_forms(url)))  # ...which never leaves


@settings(max_examples=300, deadline=None)
@given(password=st.text(st.sampled_from(list("/?#%@:=&,QZJKab19€é")), min_size=4, max_size=24))
def test_no_piece_of_any_password_survives_libpq_complaining_about_the_raw_url(password):
    url = f"postgresql://app_user:{password}@db.example.com:5432/app"
    complaint = libpq_complaint(url)
    assume("\x00" not in complaint)

    redacted = output.redact(complaint, config.password_forms(url))

    # the URL's other parts are known words, never evidence of a leak
    assert not [p for p in leaked(password, redacted) if p not in "app_user db.example.com:5432/app"], redacted


@settings(max_examples=200, deadline=None)
@given(password=st.text(st.sampled_from(list("/?#%@:&,\"\\ QZJK19€é")), min_size=1, max_size=24))
def test_every_form_the_normalised_url_carries_is_redacted(password):
    url = f"postgresql://u:{password}@h:5/d"
    try:
        normalised = config.normalise_db_url(url)
    except ConfigError:
        return
    forms = config.password_forms(url)

    assert not leaked(password, output.redact(f"{url} {normalised}", forms))


# ---- the agent tools --------------------------------------------------------------------------------------

def test_the_agent_tools_redact_each_document_value_by_value(monkeypatch):
    password = 'Ag3nt"Secr\\et€'
    monkeypatch.setenv("DB_URL", f"postgresql://u:{password}@h/d")
    import migration_tools

    document = migration_tools.redact({"ok": False, "error": {"message": f"saw {password}", "hint": password},
                                       "applied": []})

    assert document == {"ok": False, "error": {"message": "saw ***", "hint": "***"}, "applied": []}


def test_the_demo_agent_transcript_redacts_lines_and_arguments(monkeypatch, capsys):
    password = "Dem0Secret/?x"
    monkeypatch.setenv("DB_URL", f"postgresql://u:{password}@h/d")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    demo = importlib.import_module("demo_agent")
    demo.secrets.cache_clear()

    demo.say(f"== Prompt\n   connect with {password}")
    shown = demo.show_arguments({"name": f"x{password}x", "dry_run": True})

    out = capsys.readouterr().out
    assert not leaked(password, out + shown) and "== Prompt" in out
    assert json.loads(shown) == {"name": "x***x", "dry_run": True}
    sys.modules.pop("demo_agent", None)
