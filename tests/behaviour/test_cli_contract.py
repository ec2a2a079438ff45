"""The command-line contract of every script (issue 9): numeric flags are checked while parsing, a reader that goes
away ends the output quietly, --json --help is one JSON document, abbreviated flags are refused, and verify keeps
its range honest and cleans up after a signal.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRIPTS, history, migration, query, tables

A, B = "20260101_000000_a", "20260102_000000_b"
TWO = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
       f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")}
SCRIPT_FILES = {"plan": "plan_migrations.py", "apply": "apply_migrations.py", "rollback": "rollback_migrations.py",
                "generate": "generate_migration.py", "lint": "lint_migrations.py", "verify": "verify_migrations.py"}


def command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / SCRIPT_FILES[script]), *args]


def environment(db_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"}
    return env | ({"DB_URL": db_url} if db_url else {})


def assert_nothing_done(db_url: str) -> None:
    assert history(db_url) == [] and tables(db_url) == set()


# ---- numeric flags ------------------------------------------------------------------------------------------

BAD_NUMBERS = {  # case: (script, flag, value, with --json)
    "lock_timeout_nan": ("apply", "--lock-timeout", "nan", False),
    "lock_timeout_infinite": ("apply", "--lock-timeout", "inf", True),
    "lock_timeout_overflowing_to_infinity": ("apply", "--lock-timeout", "1e309", False),
    "lock_timeout_negative": ("rollback", "--lock-timeout", "-1", True),
    "lock_timeout_over_a_day": ("apply", "--lock-timeout", "86401", False),
    "lock_timeout_ms_negative": ("apply", "--lock-timeout-ms", "-5", True),
    "lock_timeout_ms_over_the_server_maximum": ("apply", "--lock-timeout-ms", "2147483648", False),
    "statement_timeout_ms_far_too_large": ("rollback", "--statement-timeout-ms", "99999999999", True),
    "statement_timeout_ms_fraction": ("apply", "--statement-timeout-ms", "1.5", False),
    "lock_retries_over_100": ("apply", "--lock-retries", "101", True),
    "lock_retries_negative": ("rollback", "--lock-retries", "-1", False),
    "pg_version_negative": ("lint", "--pg-version", "-1.5", True),
    "pg_version_negative_minor": ("lint", "--pg-version", "10.-5", False),
    "pg_version_far_too_large": ("lint", "--pg-version", "99999999", True),
    "small_table_rows_negative": ("apply", "--small-table-rows", "-1", False),
    "plan_lock_timeout_ms_negative": ("plan", "--lock-timeout-ms", "-1", True),
}  # every numeric flag of every script belongs here


@pytest.mark.parametrize("script, flag, value, as_json", list(BAD_NUMBERS.values()), ids=list(BAD_NUMBERS))
def test_a_numeric_flag_out_of_range_is_a_one_line_usage_error_and_changes_nothing(script, flag, value, as_json,
                                                                                   db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    result = run_script(script, "--migrations-dir", str(directory), f"{flag}={value}",
                        *(["--json"] if as_json else []), db_url=db_url, timeout=60)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if as_json:
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "usage" and flag in error["message"] and repr(value) in error["message"]
    else:
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith(f"error: argument {flag}:") and repr(value) in result.stderr
    assert_nothing_done(db_url)


def test_numeric_flags_at_the_edges_of_their_ranges_are_accepted(db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    dry = run_script("apply", "--migrations-dir", str(directory), "--dry-run", "--lock-timeout", "0",
                     "--lock-timeout-ms", "2147483647", "--statement-timeout-ms", "0", "--lock-retries", "100",
                     db_url=db_url)
    real = run_script("apply", "--migrations-dir", str(directory), "--lock-timeout", "86400", "--lock-retries", "0",
                      "--lock-timeout-ms", "0", "--statement-timeout-ms", "2147483647", db_url=db_url)
    lint = run_script("lint", "--migrations-dir", str(directory), "--pg-version", "9.6", db_url=db_url)

    assert (dry.returncode, real.returncode, lint.returncode) == (0, 0, 0), (dry.stderr, real.stderr, lint.stderr)
    assert [row[0] for row in history(db_url)] == [A, B] and tables(db_url) == {"a", "b", "schema_migrations"}


# ---- a reader that goes away --------------------------------------------------------------------------------

def run_with_closed_stdout(args: list[str], db_url: str | None) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reading end is already closed: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(args, stdout=write_end, stderr=subprocess.PIPE, text=True, env=environment(db_url),
                              timeout=60)
    finally:
        os.close(write_end)


CLOSED_STDOUT = {
    "plan": ("plan", (), 0),
    "plan_json": ("plan", ("--json",), 0),
    "apply_dry_run": ("apply", ("--dry-run",), 0),
    "apply_dry_run_json": ("apply", ("--dry-run", "--json"), 0),
    "lint_json": ("lint", ("--json",), 0),
    "usage_error_json": ("apply", ("--json", "--lock-retries", "-1"), 2),
    "help_json": ("plan", ("--json", "--help"), 0),
}


@pytest.mark.parametrize("script, args, exit_code", list(CLOSED_STDOUT.values()), ids=list(CLOSED_STDOUT))
def test_a_closed_stdout_ends_quietly_with_the_usual_exit_code(script, args, exit_code, db_url, migrations_dir):
    directory = migrations_dir(TWO)

    result = run_with_closed_stdout(command(script, "--migrations-dir", str(directory), *args), db_url)

    assert result.returncode == exit_code, result.stderr
    assert result.stderr == ""
    assert_nothing_done(db_url)


@pytest.mark.parametrize("flags, first_line", [((), "Migrations in "), (("--json",), "{")], ids=["human", "json"])
def test_plan_piped_into_head_prints_one_line_and_no_traceback(flags, first_line, db_url, migrations_dir):
    # 2,000 pending migrations: far more output than a pipe buffers, so the writer meets the closed pipe.
    directory = migrations_dir({f"20260101_{n:06d}_m.sql": migration("SELECT 1;", "SELECT 1;") for n in range(2000)})
    script = " ".join(command("plan", "--migrations-dir", str(directory), "--no-schema-check", *flags))

    result = subprocess.run(["bash", "-c", f'{script} | head -1; echo "exit=${{PIPESTATUS[0]}}"'],
                            capture_output=True, text=True, env=environment(db_url), timeout=120)

    lines = result.stdout.splitlines()
    assert lines[0].startswith(first_line) and lines[1:] == ["exit=0"], result.stdout
    assert result.stderr == ""
    assert_nothing_done(db_url)


# ---- --help and abbreviations -------------------------------------------------------------------------------

HELP_ORDERS = [(script, ("--json", "--help")) for script in SCRIPT_FILES] + [
    ("plan", ("--help", "--json")), ("apply", ("-h", "--json"))]


@pytest.mark.parametrize("script, order", HELP_ORDERS, ids=[f"{s}_{'_'.join(o)}" for s, o in HELP_ORDERS])
def test_help_with_json_is_one_json_document(script, order):
    result = subprocess.run(command(script, *order), capture_output=True, text=True, env=environment(None),
                            timeout=60)

    assert result.returncode == 0 and result.stderr == ""
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1 and document["command"] == script and document["ok"] is True
    assert document["help"].startswith("usage: ") and "--json" in document["help"]


def test_help_without_json_stays_text():
    result = subprocess.run(command("plan", "--help"), capture_output=True, text=True, env=environment(None),
                            timeout=60)

    assert result.returncode == 0 and result.stdout.startswith("usage: plan_migrations.py")


ABBREVIATIONS = {
    "js_for_json": ("plan", ("--js",), "--js"),
    "js_next_to_json": ("plan", ("--js", "--json"), "--js"),
    "dry_for_dry_run": ("apply", ("--dry",), "--dry"),
    "lock_retr_for_lock_retries": ("rollback", ("--lock-retr", "1", "--json"), "--lock-retr"),
    "migrations_for_migrations_dir": ("verify", ("--migrations", "x", "--json"), "--migrations"),
}


@pytest.mark.parametrize("script, args, flag", list(ABBREVIATIONS.values()), ids=list(ABBREVIATIONS))
def test_an_abbreviated_flag_is_a_usage_error(script, args, flag, db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)

    result = run_script(script, "--migrations-dir", str(directory), *args, db_url=db_url)

    assert result.returncode == 2, (result.stdout, result.stderr)
    if "--json" in args:
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "usage" and flag in error["message"]
    else:
        assert result.stderr.startswith("error: unrecognized arguments:") and flag in result.stderr
    assert_nothing_done(db_url)


# ---- verify: range and signals ------------------------------------------------------------------------------

def scratch_databases(server: str) -> set[str]:
    return {row[0] for row in query(server, "SELECT datname FROM pg_database WHERE datname LIKE %s", ("verify\\_%",))}


def test_verify_with_an_inverted_range_is_a_usage_error(pg_server, db_url, migrations_dir, run_script):
    directory = migrations_dir(TWO)
    before = scratch_databases(pg_server)

    result = run_script("verify", "--migrations-dir", str(directory), "--from", B, "--to", A, "--json",
                        db_url=db_url)

    assert result.returncode == 2, result.stdout
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage" and A in error["message"] and B in error["message"]
    assert scratch_databases(pg_server) == before
    assert_nothing_done(db_url)


SLEEPING = "SELECT datname FROM pg_stat_activity WHERE query LIKE '%%pg_sleep(60)%%' AND pid <> pg_backend_pid()"


def wait_for_sleep(server: str, process: subprocess.Popen[str], deadline_s: float = 30) -> str:
    """Return the database in which the migration's pg_sleep is running, once it runs."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and process.poll() is None:
        rows = query(server, SLEEPING)
        if rows:
            return rows[0][0]
        time.sleep(0.1)
    raise AssertionError(f"verify never reached the slow migration: {process.poll()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_stops_verify_and_drops_its_scratch_database(signum, pg_server, db_url, migrations_dir):
    slow = {**TWO, "20260103_000000_slow.sql": migration("SELECT pg_sleep(60);", "SELECT 1;")}
    directory = migrations_dir(slow)
    process = subprocess.Popen(command("verify", "--migrations-dir", str(directory), "--json"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(db_url))
    try:
        scratch = wait_for_sleep(pg_server, process)
        started = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        stopped_after = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 1, (out, err)
    document = json.loads(out)
    assert document["ok"] is False and document["error"]["code"] == "interrupted"
    assert stopped_after < 20  # the 60 s sleep was cancelled, not waited for
    assert scratch.startswith("verify_") and scratch not in scratch_databases(pg_server)
    assert query(pg_server, SLEEPING) == []
    assert_nothing_done(db_url)
