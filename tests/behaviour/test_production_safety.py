"""Issue 6, production safety: per-migration timeouts, real blocking sessions, non-transactional migrations,
baseline, accepted checksums and out-of-order refusal, each proven with the scripts as subprocesses on a real server.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

import conftest
from conftest import ROOT, SCRIPTS, history, migration, query
from migration_core.parsing import compute_checksum

A = "20260101_000000_create_a"
B = "20260102_000000_create_b"
C = "20260103_000000_create_c"
D = "20260104_000000_create_d"

# A migration that records the settings it ran with in a table of its own.
RECORD_SETTINGS = ("CREATE TABLE {table} AS SELECT current_setting('lock_timeout') AS lock_timeout, "
                   "current_setting('statement_timeout') AS statement_timeout, "
                   "current_setting('application_name') AS application_name;")


def tables(url: str) -> set[str]:
    """The public tables, leaving out companion tables the tool may keep beside schema_migrations."""
    return {t for t in conftest.tables(url) if not t.startswith("schema_migrations_")}


def with_header(headers: list[str], up: str, down: str | None = None) -> str:
    """Return a migration file with header lines (TRANSACTION, LOCK_TIMEOUT, ...) above the up marker."""
    return "".join(f"{line}\n" for line in headers) + migration(up, down)


def table_migration(table: str) -> str:
    return migration(f"CREATE TABLE {table} (id int);", f"DROP TABLE {table};")


def settings_seen(db_url: str, table: str) -> tuple[str, str, str]:
    return query(db_url, f"SELECT lock_timeout, statement_timeout, application_name FROM {table}")[0]


def cli(run_script, command: str, directory: Path, db_url: str, *args: str, **kwargs):
    return run_script(command, "--migrations-dir", str(directory), *args, db_url=db_url, **kwargs)


def cli_json(run_script, command: str, directory: Path, db_url: str, *args: str, **kwargs):
    result = cli(run_script, command, directory, db_url, "--json", *args, **kwargs)
    return result, json.loads(result.stdout)


def rows(db_url: str) -> list[tuple]:
    """Every history row in id order, with everything that identifies it."""
    return query(db_url, "SELECT id, version, direction, status, checksum, error_message FROM schema_migrations "
                         "ORDER BY id")


def column_exists(db_url: str, table: str, column: str) -> bool:
    return bool(query(db_url, "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                      (table, column)))


def index_state(db_url: str, index: str) -> list[tuple[bool, bool]]:
    """[(valid, ready)] of the index, [] when it does not exist."""
    return query(db_url, "SELECT i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "WHERE c.relname = %s", (index,))


# ---- lock and statement timeouts ----------------------------------------------------------------------------

def test_each_migration_runs_with_the_default_timeouts_and_names_itself_to_the_server(db_url, migrations_dir,
                                                                                      run_script):
    directory = migrations_dir({f"{A}.sql": migration(RECORD_SETTINGS.format(table="seen"), "DROP TABLE seen;")})

    result = cli(run_script, "apply", directory, db_url)

    assert result.returncode == 0, result.stderr
    assert A in result.stdout and "Applied 1 migration in " in result.stdout
    assert settings_seen(db_url, "seen") == ("5s", "0", "migration-assistant")
    assert history(db_url) == [(A, "up", "success")]


def test_the_timeout_flags_set_each_migrations_lock_and_statement_timeout(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration(RECORD_SETTINGS.format(table="seen_a")),
                                f"{B}.sql": migration(RECORD_SETTINGS.format(table="seen_b"))})

    result, doc = cli_json(run_script, "apply", directory, db_url, "--lock-timeout-ms", "1500",
                           "--statement-timeout-ms", "60000")

    assert result.returncode == 0, result.stderr
    assert doc["ok"] is True and doc["applied"] == [A, B]
    assert settings_seen(db_url, "seen_a") == ("1500ms", "1min", "migration-assistant")
    assert settings_seen(db_url, "seen_b") == ("1500ms", "1min", "migration-assistant")


def test_header_timeouts_override_the_flags_for_that_migration_only(db_url, migrations_dir, run_script):
    directory = migrations_dir({
        f"{A}.sql": with_header(["-- MIGRATION: with_headers", "-- LOCK_TIMEOUT: 2s", "-- STATEMENT_TIMEOUT: 10min"],
                                RECORD_SETTINGS.format(table="seen_a")),
        f"{B}.sql": migration(RECORD_SETTINGS.format(table="seen_b")),
    })

    result, doc = cli_json(run_script, "apply", directory, db_url, "--lock-timeout-ms", "700",
                           "--statement-timeout-ms", "30000")

    assert result.returncode == 0, result.stderr
    assert doc["applied"] == [A, B]
    assert settings_seen(db_url, "seen_a")[:2] == ("2s", "10min")
    assert settings_seen(db_url, "seen_b")[:2] == ("700ms", "30s")  # the header did not leak into the next one


def test_a_non_transactional_migration_gets_its_header_timeouts_and_they_do_not_leak(db_url, migrations_dir,
                                                                                      run_script):
    directory = migrations_dir({
        f"{A}.sql": with_header(["-- TRANSACTION: none", "-- LOCK_TIMEOUT: 3s", "-- STATEMENT_TIMEOUT: 45s"],
                                RECORD_SETTINGS.format(table="seen_a")),
        f"{B}.sql": migration(RECORD_SETTINGS.format(table="seen_b")),
    })

    result, doc = cli_json(run_script, "apply", directory, db_url)

    assert result.returncode == 0, result.stderr
    assert doc["applied"] == [A, B]
    assert settings_seen(db_url, "seen_a") == ("3s", "45s", "migration-assistant")
    assert settings_seen(db_url, "seen_b") == ("5s", "0", "migration-assistant")


SLOW_UP = "CREATE TABLE slow (id int);\nSELECT pg_sleep(1);"

STATEMENT_TIMEOUTS = {
    # (header lines, flags) that must cancel a one-second statement
    "header": (["-- STATEMENT_TIMEOUT: 100ms"], []),
    "flag": ([], ["--statement-timeout-ms", "100"]),
    "header_wins_over_a_generous_flag": (["-- STATEMENT_TIMEOUT: 100ms"], ["--statement-timeout-ms", "600000"]),
}


@pytest.mark.parametrize(("headers", "flags"), list(STATEMENT_TIMEOUTS.values()), ids=list(STATEMENT_TIMEOUTS))
def test_a_statement_timeout_cancels_a_slow_migration_and_rolls_it_back(db_url, migrations_dir, run_script,
                                                                        headers, flags):
    directory = migrations_dir({f"{A}.sql": table_migration("a"),
                                f"{B}.sql": with_header(headers, SLOW_UP, "DROP TABLE slow;")})

    result, doc = cli_json(run_script, "apply", directory, db_url, *flags)

    assert result.returncode == 1
    assert doc["ok"] is False and doc["error"]["code"] == "migration_failed"
    assert doc["applied"] == [A]
    assert doc["failed"]["version"] == B and doc["failed"]["sqlstate"] == "57014"
    assert "statement timeout" in doc["failed"]["message"]
    assert tables(db_url) == {"schema_migrations", "a"}  # CREATE TABLE slow went with the rollback
    assert history(db_url) == [(A, "up", "success"), (B, "up", "failed")]
    assert "57014" in query(db_url, "SELECT error_message FROM schema_migrations WHERE status = 'failed'")[0][0]


def test_a_header_that_turns_the_statement_timeout_off_wins_over_the_flag(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": with_header(["-- STATEMENT_TIMEOUT: 0"],
                                                        "CREATE TABLE slow (id int);\nSELECT pg_sleep(0.5);")})

    result = cli(run_script, "apply", directory, db_url, "--statement-timeout-ms", "100")

    assert result.returncode == 0, result.stderr
    assert A in result.stdout and "Applied 1 migration in " in result.stdout
    assert tables(db_url) == {"schema_migrations", "slow"}
    assert history(db_url) == [(A, "up", "success")]


def test_rollback_honours_the_statement_timeout_flag(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);",
                                                      "SELECT pg_sleep(1);\nDROP TABLE a;")})
    assert cli(run_script, "apply", directory, db_url).returncode == 0

    result = cli(run_script, "rollback", directory, db_url, "--statement-timeout-ms", "100")

    assert result.returncode == 1
    assert A in result.stderr and "57014" in result.stderr and "statement timeout" in result.stderr
    assert tables(db_url) == {"schema_migrations", "a"}
    assert history(db_url) == [(A, "up", "success"), (A, "down", "failed")]


# ---- a real blocking session --------------------------------------------------------------------------------

ALTER = "20260110_000000_add_note_to_items"
ALTER_FILES = {f"{ALTER}.sql": migration("ALTER TABLE items ADD COLUMN note text;",
                                         "ALTER TABLE items DROP COLUMN note;")}
BLOCKERS = {
    # name: (what the blocking session ran in its still-open transaction, the lock it holds)
    "lock_table_access_exclusive": ("LOCK TABLE items IN ACCESS EXCLUSIVE MODE", "AccessExclusiveLock"),
    "open_transaction_that_read": ("SELECT count(*) FROM items", "AccessShareLock"),
    "open_transaction_that_updated": ("UPDATE items SET id = id", "RowExclusiveLock"),
}


@pytest.fixture
def items(db_url: str) -> str:
    query(db_url, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)")
    return db_url


def open_blocker(db_url: str, statement: str) -> psycopg2.extensions.connection:
    """Return a session named 'blocker-test' that ran `statement` in a transaction it keeps open."""
    conn = psycopg2.connect(db_url, application_name="blocker-test")
    with conn.cursor() as cur:
        cur.execute(statement)
    return conn


@pytest.fixture
def blockers() -> Iterator[list[psycopg2.extensions.connection]]:
    opened: list[psycopg2.extensions.connection] = []
    yield opened
    for conn in opened:
        conn.close()


@pytest.mark.parametrize(("statement", "mode"), list(BLOCKERS.values()), ids=list(BLOCKERS))
def test_a_blocked_migration_retries_then_fails_naming_the_blocker_and_applies_once_it_is_gone(
        items, migrations_dir, run_script, blockers, statement, mode):
    db_url = items
    directory = migrations_dir(ALTER_FILES)
    blocker = open_blocker(db_url, statement)
    blockers.append(blocker)
    pid = blocker.get_backend_pid()

    result, doc = cli_json(run_script, "apply", directory, db_url, "--lock-timeout-ms", "200",
                           "--lock-retries", "2", timeout=60)

    assert result.returncode == 1
    assert doc["ok"] is False and doc["error"]["code"] == "migration_failed" and doc["applied"] == []
    assert doc["failed"]["version"] == ALTER and doc["failed"]["sqlstate"] == "55P03"
    message = doc["failed"]["message"]
    for expected in (f"pid {pid}", "blocker-test", "gave up after 3 tries", "idle in transaction", statement, mode,
                     "items"):
        assert expected in message, (expected, message)
    assert message in doc["error"]["message"]
    assert "pg_terminate_backend" in doc["error"]["hint"] and "--lock-timeout-ms" in doc["error"]["hint"]
    assert not column_exists(db_url, "items", "note")
    assert history(db_url) == [(ALTER, "up", "failed")]
    assert f"pid {pid}" in query(db_url, "SELECT error_message FROM schema_migrations")[0][0]

    blocker.commit()
    rerun, rerun_doc = cli_json(run_script, "apply", directory, db_url, "--lock-timeout-ms", "200",
                                "--lock-retries", "2", timeout=60)

    assert rerun.returncode == 0, rerun.stdout
    assert rerun_doc["applied"] == [ALTER] and rerun_doc["failed"] is None
    assert column_exists(db_url, "items", "note")
    assert history(db_url) == [(ALTER, "up", "failed"), (ALTER, "up", "success")]


def test_a_blocked_rollback_retries_then_fails_naming_the_blocker_and_stays_applied(items, migrations_dir,
                                                                                     run_script, blockers):
    db_url = items
    directory = migrations_dir(ALTER_FILES)
    assert cli(run_script, "apply", directory, db_url).returncode == 0
    blocker = open_blocker(db_url, "SELECT count(*) FROM items")
    blockers.append(blocker)

    result, doc = cli_json(run_script, "rollback", directory, db_url, "--lock-timeout-ms", "200",
                           "--lock-retries", "1", timeout=60)

    assert result.returncode == 1
    assert doc["error"]["code"] == "migration_failed" and doc["rolled_back"] == []
    assert doc["failed"]["direction"] == "down" and doc["failed"]["sqlstate"] == "55P03"
    message = doc["failed"]["message"]
    assert f"pid {blocker.get_backend_pid()}" in message and "blocker-test" in message
    assert "gave up after 2 tries" in message and "AccessShareLock on items" in message
    assert column_exists(db_url, "items", "note")
    assert history(db_url) == [(ALTER, "up", "success"), (ALTER, "down", "failed")]

    blocker.commit()
    rerun = cli(run_script, "rollback", directory, db_url, "--lock-timeout-ms", "200")

    assert rerun.returncode == 0, rerun.stderr
    assert ALTER in rerun.stdout
    assert not column_exists(db_url, "items", "note")


def test_a_blocked_migration_says_who_blocks_it_in_human_output(items, migrations_dir, run_script, blockers):
    db_url = items
    directory = migrations_dir(ALTER_FILES)
    blocker = open_blocker(db_url, "LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    blockers.append(blocker)

    result = cli(run_script, "apply", directory, db_url, "--lock-timeout-ms", "200", "--lock-retries", "1",
                 timeout=60)

    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    line = error_lines[0]
    assert ALTER in line and "55P03" in line and "gave up after 2 tries" in line
    assert f"pid {blocker.get_backend_pid()} (blocker-test, idle in transaction" in line
    assert "AccessExclusiveLock on items" in line and "pg_terminate_backend" in line
    assert f"FAILED      {ALTER}" in result.stdout
    assert not column_exists(db_url, "items", "note")
    assert history(db_url) == [(ALTER, "up", "failed")]


def runner_state(db_url: str) -> list[tuple[str, str | None]]:
    return query(db_url, "SELECT state, wait_event_type FROM pg_stat_activity "
                         "WHERE application_name = 'migration-assistant'")


def test_a_lock_timeout_is_retried_and_the_migration_applies_when_the_blocker_lets_go_in_between(
        items, migrations_dir, blockers):
    db_url = items
    directory = migrations_dir(ALTER_FILES)
    blocker = open_blocker(db_url, "LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    blockers.append(blocker)
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    runner = subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--json", "--migrations-dir",
                               str(directory), "--lock-timeout-ms", "300", "--lock-retries", "5"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # First try: the runner waits on the table lock; then it times out and pauses before retrying (idle).
        seen_waiting = False
        for _ in range(1000):
            states = runner_state(db_url)
            seen_waiting = seen_waiting or any(wait == "Lock" for _, wait in states)
            if seen_waiting and states and all(state == "idle" for state, _ in states):
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the runner never timed out waiting for the lock")
        blocker.commit()
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    doc = json.loads(out)
    assert runner.returncode == 0, out + err
    assert doc["applied"] == [ALTER] and doc["failed"] is None
    assert column_exists(db_url, "items", "note")
    assert history(db_url) == [(ALTER, "up", "success")]  # the retried attempts are not failures


def test_a_blocked_non_transactional_statement_is_retried_and_names_its_blocker(items, migrations_dir, run_script,
                                                                                  blockers):
    db_url = items
    version = "20260110_000000_index_items"
    directory = migrations_dir({f"{version}.sql": with_header(
        ["-- TRANSACTION: none"], "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_items_id ON items (id);",
        "DROP INDEX CONCURRENTLY IF EXISTS idx_items_id;")})
    blocker = open_blocker(db_url, "LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    blockers.append(blocker)

    result, doc = cli_json(run_script, "apply", directory, db_url, "--lock-timeout-ms", "200", "--lock-retries", "1",
                           timeout=60)

    assert result.returncode == 1
    assert doc["failed"]["sqlstate"] == "55P03"
    message = doc["failed"]["error"]
    assert f"pid {blocker.get_backend_pid()}" in message and "blocker-test" in message
    assert "gave up after 2 tries" in message and "(0 of 1 statements completed, not rolled back)" in message
    assert index_state(db_url, "idx_items_id") == []
    assert history(db_url) == [(version, "up", "failed")]

    blocker.commit()
    rerun = cli(run_script, "apply", directory, db_url, "--lock-timeout-ms", "200")

    assert rerun.returncode == 0, rerun.stderr
    assert version in rerun.stdout
    assert index_state(db_url, "idx_items_id") == [(True, True)]
    assert history(db_url) == [(version, "up", "failed"), (version, "up", "success")]


# ---- non-transactional migrations ---------------------------------------------------------------------------

NEEDS_NO_TRANSACTION = {
    # statement, what the refusal calls it
    "create_index_concurrently": ("CREATE INDEX CONCURRENTLY idx_b ON b (id);", "CREATE INDEX CONCURRENTLY"),
    "drop_index_concurrently": ("DROP INDEX CONCURRENTLY IF EXISTS idx_b;", "DROP INDEX CONCURRENTLY"),
    "reindex_concurrently": ("REINDEX INDEX CONCURRENTLY idx_b;", "REINDEX CONCURRENTLY"),
    "vacuum": ("VACUUM b;", "VACUUM"),
}


@pytest.mark.parametrize(("statement", "reason"), list(NEEDS_NO_TRANSACTION.values()), ids=list(NEEDS_NO_TRANSACTION))
def test_a_statement_that_cannot_run_in_a_transaction_without_the_header_is_refused_before_anything_runs(
        db_url, migrations_dir, run_script, statement, reason):
    # Line 1 marker, line 2 CREATE TABLE b, line 3 the statement.
    directory = migrations_dir({f"{A}.sql": table_migration("a"),
                                f"{B}.sql": migration(f"CREATE TABLE b (id int);\n{statement}", "DROP TABLE b;")})

    result, doc = cli_json(run_script, "apply", directory, db_url)

    assert result.returncode == 2
    assert doc["ok"] is False and doc["error"]["code"] == "invalid_migration" and doc["applied"] == []
    assert f"{directory / B}.sql:3: {reason} cannot run inside a transaction block" in doc["error"]["message"]
    assert "-- TRANSACTION: none" in doc["error"]["hint"]
    assert tables(db_url) == set()  # not even the history table: nothing ran, not even the first migration
    assert history(db_url) == []


def test_the_dry_run_refuses_the_same_migration(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);\n"
                                                      "CREATE INDEX CONCURRENTLY i ON a (id);")})

    result = cli(run_script, "apply", directory, db_url, "--dry-run")

    assert result.returncode == 2
    assert f"{directory / A}.sql:3: CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in result.stderr
    assert "TRANSACTION: none" in result.stderr
    assert tables(db_url) == set()


def test_rollback_refuses_a_down_section_that_needs_the_header_before_undoing_anything(db_url, migrations_dir,
                                                                                        run_script):
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE a (id int);\nCREATE INDEX idx_a ON a (id);", "DROP TABLE a;"),
        f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP INDEX CONCURRENTLY idx_a;\nDROP TABLE b;"),
    })
    refused = cli(run_script, "apply", directory, db_url)  # B is invalid as a whole: nothing of the run starts
    assert refused.returncode == 2 and "DROP INDEX CONCURRENTLY" in refused.stderr and tables(db_url) == set()
    # Recorded as applied some other way (a baseline, an older tool): rollback refuses before undoing anything.
    query(db_url, "CREATE TABLE a (id int); CREATE INDEX idx_a ON a (id); CREATE TABLE b (id int)")
    assert cli(run_script, "apply", directory, db_url, "--baseline", B).returncode == 0
    before = rows(db_url)

    result, doc = cli_json(run_script, "rollback", directory, db_url, "--to", A)

    assert result.returncode == 2
    assert doc["error"]["code"] == "invalid_migration" and doc["rolled_back"] == []
    assert "DROP INDEX CONCURRENTLY cannot run inside a transaction block" in doc["error"]["message"]
    assert rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b"} and index_state(db_url, "idx_a") == [(True, True)]


def test_a_syntax_error_in_any_pending_migration_is_refused_before_the_first_one_runs(db_url, migrations_dir,
                                                                                      run_script):
    directory = migrations_dir({
        f"{A}.sql": table_migration("a"),
        f"{B}.sql": table_migration("b"),
        f"{C}.sql": migration("CREATE TABLE c (id int);\nCREATE TABLE c2 (id int;", "DROP TABLE c;"),
    })

    result, doc = cli_json(run_script, "apply", directory, db_url)

    assert result.returncode == 2
    assert doc["error"]["code"] == "invalid_migration" and doc["applied"] == []
    assert f"{directory / C}.sql:3: SQL syntax error" in doc["error"]["message"]
    assert tables(db_url) == set()
    assert history(db_url) == []


def test_a_concurrent_index_with_the_header_is_built_and_valid(db_url, migrations_dir, run_script):
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE people (id int, email text);\n"
                              "INSERT INTO people SELECT g, 'p' || g || '@x' FROM generate_series(1, 1000) g;",
                              "DROP TABLE people;"),
        f"{B}.sql": with_header(["-- TRANSACTION: none"],
                                "CREATE INDEX CONCURRENTLY idx_people_email ON people (lower(email));",
                                "DROP INDEX CONCURRENTLY idx_people_email;"),
    })

    result, doc = cli_json(run_script, "apply", directory, db_url)

    assert result.returncode == 0, result.stderr
    assert doc["applied"] == [A, B] and doc["failed"] is None
    assert index_state(db_url, "idx_people_email") == [(True, True)]
    history_rows = [(r[1], r[2], r[3], r[5]) for r in rows(db_url)]
    assert history_rows == [(A, "up", "success", None), (B, "up", "success", None)]

    rollback = cli(run_script, "rollback", directory, db_url)

    assert rollback.returncode == 0, rollback.stderr
    assert B in rollback.stdout
    assert index_state(db_url, "idx_people_email") == []
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success"), (B, "down", "success")]


# Statement 2 holds semicolons inside a dollar-quoted body, a string and a comment: a naive split would see more.
PART_WAY = (
    "-- TRANSACTION: none\n"                                          # line 1
    "-- DIRECTION: up\n"                                              # line 2
    "CREATE TABLE notes (body text);\n"                               # line 3: statement 1
    "DO $$\n"                                                         # line 4: statement 2
    "BEGIN\n"
    "  INSERT INTO notes VALUES ('one; two'); -- a comment; really\n"
    "  INSERT INTO notes VALUES ($q$three; four$q$);\n"
    "END\n"
    "$$;\n"
    "INSERT INTO no_such_table VALUES (1);\n"                         # line 10: statement 3 fails
    "CREATE TABLE never (id int);\n"                                  # line 11: statement 4
    "\n"
    "-- DIRECTION: down\n"
    "DROP TABLE IF EXISTS never;\n"
    "DROP TABLE IF EXISTS notes;\n"
)
PART_WAY_FIXED = PART_WAY.replace("CREATE TABLE notes", "CREATE TABLE IF NOT EXISTS notes").replace(
    "INSERT INTO no_such_table VALUES (1);", "CREATE TABLE IF NOT EXISTS no_such_table (id int);")


def test_a_non_transactional_migration_failing_part_way_keeps_and_reports_the_completed_statements(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": PART_WAY,
                                f"{C}.sql": table_migration("c")})

    result = cli(run_script, "apply", directory, db_url)

    assert result.returncode == 1
    assert f"applied     {A}" in result.stdout and f"FAILED      {B}" in result.stdout
    assert f"then {B} failed (1 not run)" in result.stdout
    assert "failed part way" in result.stderr and "42P01" in result.stderr
    assert "(2 of 4 statements completed, not rolled back)" in result.stderr
    assert f"{directory / B}.sql:10" in result.stderr
    assert "IF NOT EXISTS" in result.stderr  # the hint: make it safe to re-run
    assert tables(db_url) == {"schema_migrations", "a", "notes"}  # statements 1 and 2 stay; 4 and C never ran
    assert sorted(query(db_url, "SELECT body FROM notes")) == [("one; two",), ("three; four",)]
    assert history(db_url) == [(A, "up", "success"), (B, "up", "failed")]
    stored = query(db_url, "SELECT error_message FROM schema_migrations WHERE version = %s", (B,))[0][0]
    assert stored.startswith("SQLSTATE 42P01 at line 10:")
    assert stored.endswith("(2 of 4 statements completed, not rolled back)")

    plan = cli(run_script, "plan", directory, db_url)
    plan_doc = json.loads(cli(run_script, "plan", directory, db_url, "--json").stdout)

    assert plan.returncode == 0, plan.stderr
    assert f"FAILED   {B} (up)" in plan.stdout and "2 of 4 statements completed" in plan.stdout
    assert [(f["version"], f["error_message"]) for f in plan_doc["failed"]] == [(B, stored)]
    assert [p["version"] for p in plan_doc["pending"]] == [B, C]

    (directory / f"{B}.sql").write_text(PART_WAY_FIXED, encoding="utf-8")  # made safe to re-run
    rerun, rerun_doc = cli_json(run_script, "apply", directory, db_url)

    assert rerun.returncode == 0, rerun.stdout
    assert rerun_doc["applied"] == [B, C]
    assert tables(db_url) == {"schema_migrations", "a", "notes", "no_such_table", "never", "c"}
    assert history(db_url) == [(A, "up", "success"), (B, "up", "failed"), (B, "up", "success"), (C, "up", "success")]
    assert json.loads(cli(run_script, "plan", directory, db_url, "--json").stdout)["failed"] == []


def test_the_shipped_production_example_applies_rolls_back_and_applies_again(db_url, run_script):
    directory = ROOT / "examples" / "production"
    users, index = "20260208_120000_create_users_table", "20260208_121500_add_index_on_users_email"
    text = (directory / f"{index}.sql").read_text(encoding="utf-8")
    assert "-- TRANSACTION: none" in text and "CREATE INDEX CONCURRENTLY" in text

    first, first_doc = cli_json(run_script, "apply", directory, db_url)
    assert first.returncode == 0, first.stdout
    assert first_doc["applied"] == [users, index]
    assert index_state(db_url, "idx_users_email_lower") == [(True, True)]

    back = cli(run_script, "rollback", directory, db_url)
    assert back.returncode == 0, back.stderr
    assert index in back.stdout and "Rolled back 1 migration in " in back.stdout
    assert index_state(db_url, "idx_users_email_lower") == []
    assert "users" in tables(db_url)

    again, again_doc = cli_json(run_script, "apply", directory, db_url)
    assert again.returncode == 0, again.stdout
    assert again_doc["applied"] == [index]
    assert index_state(db_url, "idx_users_email_lower") == [(True, True)]
    assert query(db_url, "SELECT version, direction, status FROM schema_migrations ORDER BY id") == [
        (users, "up", "success"), (index, "up", "superseded"), (index, "down", "success"), (index, "up", "success")]
    plan = cli(run_script, "plan", directory, db_url)
    assert plan.returncode == 0 and "Up to date" in plan.stdout


# ---- baseline -------------------------------------------------------------------------------------------------

BASELINE_FILES = {f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b"), f"{C}.sql": table_migration("c")}


def test_baseline_records_migrations_as_applied_without_running_them(db_url, migrations_dir, run_script):
    directory = migrations_dir(BASELINE_FILES)
    # The database already has the schema of A and B, made by hand (with its own columns).
    query(db_url, "CREATE TABLE a (legacy text); CREATE TABLE b (legacy text)")

    result, doc = cli_json(run_script, "apply", directory, db_url, "--baseline", B)

    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["baselined"] == [A, B] and doc["applied"] == []
    assert tables(db_url) == {"schema_migrations", "a", "b"}
    assert column_exists(db_url, "a", "legacy") and not column_exists(db_url, "a", "id")  # A's SQL never ran
    recorded = [(r[1], r[2], r[3], r[4]) for r in rows(db_url)]
    assert recorded == [(A, "up", "success", compute_checksum(BASELINE_FILES[f"{A}.sql"])),
                        (B, "up", "success", compute_checksum(BASELINE_FILES[f"{B}.sql"]))]
    assert all(r[5].startswith("baseline:") for r in rows(db_url))

    plan = cli(run_script, "plan", directory, db_url)
    plan_result, plan_doc = cli_json(run_script, "plan", directory, db_url)

    assert plan.returncode == 0 and plan_result.returncode == 0
    assert [line.split()[1] for line in plan.stdout.splitlines() if "BASELINED" in line] == [A, B]
    assert f"pending  {C}" in plan.stdout
    assert [a["version"] for a in plan_doc["applied"]] == [A, B]
    assert all(a["note"].startswith("baseline:") for a in plan_doc["applied"])
    assert [p["version"] for p in plan_doc["pending"]] == [C]

    apply, apply_doc = cli_json(run_script, "apply", directory, db_url)

    assert apply.returncode == 0, apply.stdout
    assert apply_doc["applied"] == [C]
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success"), (C, "up", "success")]


def test_baseline_in_human_output_lists_what_it_recorded(db_url, migrations_dir, run_script):
    directory = migrations_dir(BASELINE_FILES)

    result = cli(run_script, "apply", directory, db_url, "--baseline", A)

    assert result.returncode == 0, result.stderr
    assert f"recorded    {A}" in result.stdout and B not in result.stdout
    assert "without running 1 migration(s)" in result.stdout
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(A, "up", "success")]


def test_baseline_leaves_applied_migrations_alone_and_a_repeat_records_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir(BASELINE_FILES)
    assert cli(run_script, "apply", directory, db_url, "--target", A).returncode == 0
    before = rows(db_url)

    first, first_doc = cli_json(run_script, "apply", directory, db_url, "--baseline", B)
    after_first = rows(db_url)
    repeat = cli(run_script, "apply", directory, db_url, "--baseline", B)

    assert first.returncode == 0 and first_doc["baselined"] == [B]
    assert after_first[:1] == before  # A's own success row untouched
    assert [(r[1], r[3]) for r in after_first[1:]] == [(B, "success")] and after_first[1][5].startswith("baseline:")
    assert repeat.returncode == 0, repeat.stderr
    assert "Nothing to record" in repeat.stdout
    assert rows(db_url) == after_first
    assert tables(db_url) == {"schema_migrations", "a"}


@pytest.mark.parametrize("action", ["--baseline", "--accept-checksum"])
def test_a_dry_run_of_baseline_or_accept_checksum_writes_nothing(db_url, migrations_dir, run_script, action):
    directory = migrations_dir(BASELINE_FILES)
    if action == "--accept-checksum":
        assert cli(run_script, "apply", directory, db_url, "--target", A).returncode == 0
        edit(directory, A, "-- reviewed edit\n" + table_migration("a"))
    before = rows(db_url) if history(db_url) else []

    result, doc = cli_json(run_script, "apply", directory, db_url, "--dry-run", action, A)

    # --dry-run writes nothing to the database at all: a preview of the recording, or a refusal of the combination.
    assert (rows(db_url) if history(db_url) else []) == before
    assert result.returncode in (0, 2), result.stdout
    assert doc["dry_run"] is True if result.returncode == 0 else doc["error"]["code"] == "usage"


def test_baseline_of_an_unknown_version_is_refused_and_records_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir(BASELINE_FILES)

    result, doc = cli_json(run_script, "apply", directory, db_url, "--baseline", "20260199_000000_nope")

    assert result.returncode == 2
    assert doc["error"]["code"] == "unknown_version" and "20260199_000000_nope" in doc["error"]["message"]
    assert history(db_url) == []
    assert tables(db_url) <= {"schema_migrations"}


# ---- accepting a reviewed checksum change ---------------------------------------------------------------------

def edit(directory: Path, version: str, text: str) -> None:
    (directory / f"{version}.sql").write_text(text, encoding="utf-8")


def test_accept_checksum_records_the_reviewed_file_without_running_it_and_plan_is_clean(db_url, migrations_dir,
                                                                                       run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    assert cli(run_script, "apply", directory, db_url).returncode == 0
    old_checksum = compute_checksum(table_migration("a"))
    edited = migration("CREATE TABLE a (id int, extra text);", "DROP TABLE a;")
    edit(directory, A, edited)
    before = rows(db_url)
    assert cli(run_script, "plan", directory, db_url).returncode == 3
    refused, refused_doc = cli_json(run_script, "apply", directory, db_url)
    assert refused.returncode == 3 and refused_doc["error"]["code"] == "drift_detected"

    result, doc = cli_json(run_script, "apply", directory, db_url, "--accept-checksum", A)

    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["accepted_checksum"] == [A] and doc["applied"] == []
    after = rows(db_url)
    # Append-only: every earlier row is still there, only the superseded one changed status.
    assert [r[:3] + r[4:] for r in after[:len(before)]] == [r[:3] + r[4:] for r in before]
    assert [(r[1], r[3]) for r in after[:len(before)]] == [(A, "superseded"), (B, "success")]
    new = after[len(before):]
    assert [(r[1], r[2], r[3], r[4]) for r in new] == [(A, "up", "success", compute_checksum(edited))]
    assert new[0][5] == f"accepted checksum change after review: was {old_checksum}"
    assert not column_exists(db_url, "a", "extra")  # the edited SQL was not run

    plan = cli(run_script, "plan", directory, db_url)
    plan_result, plan_doc = cli_json(run_script, "plan", directory, db_url)
    apply = cli(run_script, "apply", directory, db_url)

    assert plan.returncode == 0 and "Up to date" in plan.stdout and "CHECKSUM ACCEPTED" in plan.stdout
    assert plan_result.returncode == 0 and plan_doc["drift"] == []
    assert apply.returncode == 0 and "Nothing to apply" in apply.stdout
    assert rows(db_url) == after


def test_rollback_after_an_accepted_checksum_still_undoes_the_latest_applied_migration(db_url, migrations_dir,
                                                                                       run_script):
    # Accepting a checksum records a file, it does not apply anything: B, applied after A, is still the latest.
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    assert cli(run_script, "apply", directory, db_url).returncode == 0
    edit(directory, A, "-- reviewed: comment added after the fact\n" + table_migration("a"))
    assert cli(run_script, "apply", directory, db_url, "--accept-checksum", A).returncode == 0

    result, doc = cli_json(run_script, "rollback", directory, db_url)

    assert result.returncode == 0, result.stdout
    assert doc["rolled_back"] == [B]
    assert tables(db_url) == {"schema_migrations", "a"}


def test_accept_checksum_refuses_a_version_that_has_not_drifted(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    assert cli(run_script, "apply", directory, db_url, "--target", A).returncode == 0
    before = rows(db_url)

    for version in (A, B, "20260199_000000_nope"):  # applied and unchanged; pending; unknown
        result, doc = cli_json(run_script, "apply", directory, db_url, "--accept-checksum", version)
        assert result.returncode == 2, version
        assert doc["ok"] is False and doc["error"]["code"] == "not_drifted"
        assert version in doc["error"]["message"] and "plan_migrations.py" in doc["error"]["hint"]
    human = cli(run_script, "apply", directory, db_url, "--accept-checksum", A)

    assert human.returncode == 2 and "has not drifted" in human.stderr
    assert rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a"}


def test_history_stays_append_only_over_repeated_accepted_edits(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    assert cli(run_script, "apply", directory, db_url).returncode == 0
    versions_of_file = [table_migration("a")]
    for n in (1, 2, 3):
        before = rows(db_url)
        text = f"-- reviewed edit {n}\n" + table_migration("a")
        edit(directory, A, text)
        versions_of_file.append(text)
        assert cli(run_script, "apply", directory, db_url, "--accept-checksum", A).returncode == 0
        after = rows(db_url)
        assert len(after) == len(before) + 1
        assert [(r[0], r[4]) for r in after[:-1]] == [(r[0], r[4]) for r in before]

    final = rows(db_url)
    assert [r[4] for r in final] == [compute_checksum(t) for t in versions_of_file]
    assert [r[3] for r in final] == ["superseded", "superseded", "superseded", "success"]
    assert cli(run_script, "plan", directory, db_url).returncode == 0
    rollback = cli(run_script, "rollback", directory, db_url)
    assert rollback.returncode == 0, rollback.stderr
    assert tables(db_url) == {"schema_migrations"}


# ---- out-of-order --------------------------------------------------------------------------------------------

def test_apply_refuses_a_pending_migration_older_than_the_newest_applied_one(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{C}.sql": table_migration("c")})
    assert cli(run_script, "apply", directory, db_url).returncode == 0
    edit(directory, B, table_migration("b"))  # e.g. merged from a branch after C was applied
    edit(directory, D, table_migration("d"))
    before = rows(db_url)

    result, doc = cli_json(run_script, "apply", directory, db_url)
    human = cli(run_script, "apply", directory, db_url)
    plan = cli(run_script, "plan", directory, db_url)

    assert result.returncode == 3
    assert doc["ok"] is False and doc["error"]["code"] == "out_of_order" and doc["applied"] == []
    assert B in doc["error"]["message"] and D not in doc["error"]["message"]
    assert "--allow-out-of-order" in doc["error"]["hint"]
    assert human.returncode == 3 and B in human.stderr and "--allow-out-of-order" in human.stderr
    assert plan.returncode == 0 and f"pending  {B}" in plan.stdout and "OUT OF ORDER" in plan.stdout
    assert rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "c"}  # D, although in order, did not run either


def test_allow_out_of_order_applies_them_in_version_order(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{C}.sql": table_migration("c")})
    assert cli(run_script, "apply", directory, db_url).returncode == 0
    edit(directory, B, table_migration("b"))
    edit(directory, D, table_migration("d"))

    result, doc = cli_json(run_script, "apply", directory, db_url, "--allow-out-of-order")

    assert result.returncode == 0, result.stdout
    assert doc["applied"] == [B, D]
    assert tables(db_url) == {"schema_migrations", "a", "b", "c", "d"}
    assert history(db_url) == [(A, "up", "success"), (C, "up", "success"), (B, "up", "success"),
                               (D, "up", "success")]
    plan_result, plan_doc = cli_json(run_script, "plan", directory, db_url)
    assert plan_result.returncode == 0 and plan_doc["out_of_order"] == [] and plan_doc["pending"] == []


def test_pending_migrations_newer_than_every_applied_one_are_not_out_of_order(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{C}.sql": table_migration("c")})
    assert cli(run_script, "apply", directory, db_url, "--target", A).returncode == 0
    edit(directory, B, table_migration("b"))

    result, doc = cli_json(run_script, "apply", directory, db_url)  # B is pending and newer than A: in order

    assert result.returncode == 0, result.stdout
    assert doc["applied"] == [B, C]
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success"), (C, "up", "success")]
