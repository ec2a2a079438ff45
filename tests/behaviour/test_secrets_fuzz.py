"""Fuzz (hypothesis): whatever the password pasted into DB_URL without percent-encoding (/ ? # % @ : " \\, spaces,
non-ASCII, short ones), no piece of 4 or more of its characters appears in any script's stdout, stderr or JSON
strings, and the scripts read the URL the way its author meant, or refuse it as ambiguous (issue 9).

The test server trusts local connections, so any password connects; a wrong host covers the error paths.
Bounded: a few examples per test, deadline off; the module takes about a minute.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import migration
from migration_core import config
from migration_core.errors import ConfigError

A, B = "20260101_000000_a", "20260102_000000_b"
TWO = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
       f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")}
ISSUE_EXAMPLE = "Ab/Sup3rS3cretMiddle%Qz?Tail9"  # libpq used to read a host, a port and a query out of it
AMBIGUOUS = "Q@Z?a=Ж"  # before 127.0.0.1: could be password Q, host Z and a query: refused, never guessed
FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))

# Every run of 4 password characters holds a RARE one, which no output ever contains unless the password leaked:
# so a 4-character piece found in the output is a leak, never a coincidence with "0000" or "    ".
RARE = "QZJ€ЖéÆ🙂"
COMMON = "/?#%@:\"\\ &=,[]19ab"
CHUNK = st.text(st.sampled_from(list(COMMON)), max_size=3)
LONG = st.lists(st.tuples(CHUNK, st.sampled_from(list(RARE))), min_size=1, max_size=6).map(
    lambda pairs: "".join(common + rare for common, rare in pairs))
SHORT = st.text(st.sampled_from(list(COMMON + RARE)), min_size=1, max_size=3)
PASSWORDS = st.one_of(LONG, LONG.flatmap(lambda text: CHUNK.map(lambda tail: text + tail)), SHORT)


def server_url(db_url: str, password: str) -> tuple[str, tuple[str, str, str]]:
    """Return DB_URL for the test database with the password pasted in as is, and (user, host, path) meant."""
    parts = urlsplit(db_url)
    user = parts.username or "postgres"
    host = f"?host={parse_qs(parts.query)['host'][0]}" if "host=" in parts.query else ""
    netloc = parts.netloc.rpartition("@")[2]
    return f"postgresql://{user}:{password}@{netloc}{parts.path}{host}", (user, netloc, parts.path)


def unreachable_url(password: str) -> tuple[str, tuple[str, str, str]]:
    return f"postgresql://u:{password}@127.0.0.1:1/x", ("u", "127.0.0.1:1", "/x")


def read_as_meant(url: str, meant: tuple[str, str, str]) -> bool:
    """Say whether the tool reads user, host and database as the URL's author meant (else it must exit 4)."""
    try:
        parts = config.parse_db_url(url)
        config.normalise_db_url(url)
    except ConfigError:
        return False
    return (parts.user, parts.netloc, parts.path) == meant


def pieces(text: str) -> set[str]:
    return {text[i:i + 4] for i in range(len(text) - 3)}


def strings(value: Any) -> list[str]:
    """Return every string in a JSON document, keys and values."""
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def assert_no_leak(password: str, result: Any, as_json: bool) -> None:
    encoded = quote(unquote(password), safe="")
    needles = pieces(password) | {p for p in pieces(encoded) if any(c in p for c in "QZJ")}
    texts = [result.stdout, result.stderr]
    if as_json:
        texts += strings(json.loads(result.stdout))
    shown = [needle for needle in needles for text in texts if needle in text]
    assert not shown, f"password pieces {shown} leaked:\n{result.stdout}\n{result.stderr}"


def check(run: Any, password: str, url: str, meant: tuple[str, str, str], exit_code: int, script: str,
          *args: str, as_json: bool) -> None:
    """Run one script with DB_URL=url; assert no leak, and the exit code the URL's reading calls for."""
    result = run(script, *args, *(["--json"] if as_json else []), db_url=url, timeout=120)
    assert_no_leak(password, result, as_json)
    expected = exit_code if read_as_meant(url, meant) or script in ("generate", "lint") else 4
    assert result.returncode == expected, (url, result.stdout, result.stderr)
    if as_json:
        assert json.loads(result.stdout)["ok"] is (expected == 0)
    if expected == 4 and script not in ("generate", "lint") and as_json:
        assert json.loads(result.stdout)["error"]["code"] in ("bad_db_url", "db_not_found", "db_unreachable",
                                                              "auth_failed")


@FUZZ
@given(password=PASSWORDS, as_json=st.booleans())
@example(password=ISSUE_EXAMPLE, as_json=True)
def test_plan_and_dry_run_never_show_the_password(password, as_json, db_url, migrations_dir, run_script):
    directory = str(migrations_dir(TWO))
    url, meant = server_url(db_url, password)

    check(run_script, password, url, meant, 0, "plan", "--migrations-dir", directory, as_json=as_json)
    check(run_script, password, url, meant, 0, "apply", "--migrations-dir", directory, "--dry-run", as_json=as_json)


@FUZZ
@given(password=PASSWORDS, as_json=st.booleans())
@example(password=ISSUE_EXAMPLE, as_json=False)
def test_apply_and_rollback_never_show_the_password(password, as_json, db_url, migrations_dir, run_script):
    directory = str(migrations_dir(TWO))
    url, meant = server_url(db_url, password)

    check(run_script, password, url, meant, 0, "apply", "--migrations-dir", directory, as_json=as_json)
    check(run_script, password, url, meant, 0, "rollback", "--migrations-dir", directory, as_json=as_json)


@FUZZ
@given(password=PASSWORDS, as_json=st.booleans())
def test_generate_and_lint_never_show_the_password(password, as_json, db_url, migrations_dir, run_script):
    url, meant = server_url(db_url, password)
    with tempfile.TemporaryDirectory() as scratch:
        check(run_script, password, url, meant, 0, "generate", "--migrations-dir", scratch, "--name", "add_c",
              "--up", "CREATE TABLE c (id int);", "--down", "DROP TABLE c;", as_json=as_json)
        assert len(list(Path(scratch).glob("*_add_c.sql"))) == 1
    check(run_script, password, url, meant, 0, "lint", "--migrations-dir", str(migrations_dir(TWO)),
          as_json=as_json)


@settings(FUZZ, max_examples=6)
@given(password=PASSWORDS, as_json=st.booleans())
def test_verify_never_shows_the_password(password, as_json, db_url, migrations_dir, run_script):
    url, meant = server_url(db_url, password)

    check(run_script, password, url, meant, 0, "verify", "--migrations-dir", str(migrations_dir(TWO)),
          as_json=as_json)


@settings(FUZZ, max_examples=12)
@given(password=PASSWORDS, as_json=st.booleans(),
       script=st.sampled_from([("plan",), ("apply",), ("apply", "--dry-run"), ("rollback",), ("verify",)]))
@example(password=AMBIGUOUS, as_json=True, script=("apply",))
@example(password=AMBIGUOUS, as_json=False, script=("verify",))
def test_a_wrong_host_never_shows_the_password(password, as_json, script, migrations_dir, run_script):
    url, meant = unreachable_url(password)
    if password == AMBIGUOUS:
        assert not read_as_meant(url, meant)  # so check() expects the refusal, bad_db_url

    check(run_script, password, url, meant, 4, script[0], "--migrations-dir", str(migrations_dir(TWO)),
          *script[1:], as_json=as_json)
