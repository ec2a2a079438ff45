"""What the tool records and reports is the truth (issue 9): no INVALID index recorded as success, no under-counted
non-transactional run, a stable application order, `applied` reported after a late failure, server errors of the
tool's own statements named by SQLSTATE, and a stale live-schema check that can always be repaired.
Real subprocesses on a real server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from conftest import SCRIPTS, migration, query

A = "20260101_000000_create_items"
B = "20260102_000000_index_items"
C = "20260103_000000_create_c"
D = "20260104_000000_create_d"

# some_other_table is what a long report reads while holding its snapshot (see old_snapshot).
ITEMS = migration("CREATE TABLE items (id int);\nINSERT INTO items SELECT generate_series(1, 1000);\n"
                  "CREATE TABLE some_other_table (id int);", "DROP TABLE some_other_table;\nDROP TABLE items;")
INDEX = "idx_items_id"


def start_script(name: str, db_url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / f"{name}_migrations.py"), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    """Wait (bounded) for a script; return exit code, stdout and stderr."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
        raise AssertionError(f"the script hung: {out} {err}") from None
    return process.returncode, out, err


def wait_for_session(db_url: str, condition: str, process: subprocess.Popen[str], deadline_s: float = 20) -> int:
    """Return the pid of a migration-assistant session matching condition (SQL), polling with a deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = query(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'migration-assistant' "
                              f"AND pid <> pg_backend_pid() AND {condition}")
        if found:
            return found[0][0]
        if process.poll() is not None:
            raise AssertionError(f"the script ended first: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"no migration-assistant session matched: {condition}")


def success_rows(db_url: str, version: str) -> int:
    return query(db_url, "SELECT count(*)::int FROM public.schema_migrations WHERE version = %s "
                         "AND direction = 'up' AND status = 'success'", (version,))[0][0]


def table_exists(db_url: str, name: str) -> bool:
    return query(db_url, "SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",))[0][0]


def cli_json(run_script, command: str, directory: Path, db_url: str, *args: str,
             **kwargs) -> tuple[subprocess.CompletedProcess[str], dict]:
    result = run_script(command, "--migrations-dir", str(directory), "--json", *args, db_url=db_url,
                        timeout=kwargs.pop("timeout", 60), **kwargs)
    try:
        return result, json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not one JSON document: {result.stdout!r} {result.stderr!r}") from None


@pytest.fixture
def make_role(db_url: str) -> Iterator[Callable[[], tuple[str, str]]]:
    """Return a factory of login roles that may create tables in public: make_role() -> (name, url)."""
    made: list[str] = []

    def make() -> tuple[str, str]:
        name = "r_" + uuid.uuid4().hex[:10]
        query(db_url, f'CREATE ROLE "{name}" LOGIN')
        query(db_url, f'GRANT USAGE, CREATE ON SCHEMA public TO "{name}"')
        made.append(name)
        parts = urlsplit(db_url)
        return name, urlunsplit(parts._replace(netloc=f"{name}@{parts.netloc.rpartition('@')[2]}"))

    yield make
    for name in made:
        query(db_url, f'DROP OWNED BY "{name}" CASCADE')
        query(db_url, f'DROP ROLE "{name}"')


# ---- point 5: CREATE INDEX CONCURRENTLY never leaves an INVALID index recorded as success ------------------------

@contextmanager
def old_snapshot(db_url: str) -> Iterator[None]:
    """Hold an old snapshot in another session (as a long report would): CREATE INDEX CONCURRENTLY waits for it."""
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT count(*) FROM some_other_table")
        yield
    finally:
        conn.close()


def concurrent_index(if_not_exists: bool = False) -> str:
    return "-- TRANSACTION: none\n-- LOCK_TIMEOUT: 300ms\n" + migration(
        f"CREATE INDEX CONCURRENTLY {'IF NOT EXISTS ' if if_not_exists else ''}{INDEX} ON items (id);",
        f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX};")


def invalid_indexes(db_url: str) -> list[str]:
    return [r[0] for r in query(db_url, "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON "
                                        "c.oid = i.indexrelid WHERE NOT i.indisvalid ORDER BY 1")]


def test_a_concurrent_index_build_that_times_out_waiting_for_old_snapshots_is_not_recorded_and_not_left_invalid(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": ITEMS})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    directory = migrations_dir({f"{B}.sql": concurrent_index()})
    with old_snapshot(db_url):
        result, doc = cli_json(run_script, "apply", directory, db_url, "--lock-retries", "0")

    assert result.returncode == 1, result.stdout + result.stderr
    assert doc["error"]["code"] == "migration_failed" and doc["applied"] == []
    assert INDEX in doc["error"]["message"], doc["error"]
    assert doc["failed"]["version"] == B and doc["failed"]["sqlstate"] == "55P03"  # the wait for old snapshots
    assert success_rows(db_url, B) == 0
    # The runner dropped what its failed attempt built, or at least named it as INVALID for the user to drop.
    assert INDEX not in invalid_indexes(db_url) or "invalid" in doc["error"]["message"].lower(), doc["error"]
    plan_doc = cli_json(run_script, "plan", directory, db_url)[1]
    assert [p["version"] for p in plan_doc["pending"]] == [B]
    assert [i["index"] for i in plan_doc["invalid_indexes"]] == invalid_indexes(db_url)


def test_create_index_concurrently_if_not_exists_over_an_invalid_index_fails_naming_it(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": ITEMS})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    clean_plan = cli_json(run_script, "plan", directory, db_url)[1]
    assert clean_plan["invalid_indexes"] == []
    # Leave an INVALID index behind by hand, the way a failed concurrent build does, then let the snapshot go.
    builder = psycopg2.connect(db_url)
    builder.autocommit = True
    try:
        with old_snapshot(db_url), builder.cursor() as cur, pytest.raises(psycopg2.errors.LockNotAvailable):
            cur.execute("SET lock_timeout = '300ms'")
            cur.execute(f"CREATE INDEX CONCURRENTLY {INDEX} ON items (id)")
    finally:
        builder.close()
    assert invalid_indexes(db_url) == [INDEX]
    directory = migrations_dir({f"{B}.sql": concurrent_index(if_not_exists=True)})

    plan_doc = cli_json(run_script, "plan", directory, db_url)[1]
    # The hand-made index is also out-of-band schema drift; let the run past that gate to reach the migration.
    result, doc = cli_json(run_script, "apply", directory, db_url, "--lock-retries", "0", "--allow-schema-drift")

    assert {"schema": "public", "table": "items", "index": INDEX}.items() <= plan_doc["invalid_indexes"][0].items()
    assert len(plan_doc["invalid_indexes"]) == 1
    assert result.returncode != 0, result.stdout + result.stderr
    assert doc["ok"] is False and doc["error"]["code"] != "unexpected_error" and doc["applied"] == []
    assert INDEX in doc["error"]["message"] and "invalid" in doc["error"]["message"].lower(), doc["error"]
    assert success_rows(db_url, B) == 0


# ---- point 6: a killed non-transactional run never under-counts -------------------------------------------------

KILLED = (
    "-- TRANSACTION: none\n"            # line 1
    "-- DIRECTION: up\n"                # line 2
    "CREATE TABLE k1 (id int);\n"       # line 3: statement 1
    "SELECT pg_sleep(30);\n"            # line 4: statement 2
    "CREATE TABLE k3 (id int);\n"       # line 5: statement 3
    "\n"
    "-- DIRECTION: down\n"
    "DROP TABLE IF EXISTS k3;\n"
    "DROP TABLE IF EXISTS k1;\n"
)


def test_a_runner_killed_during_a_non_transactional_statement_says_that_statement_may_have_completed(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{C}.sql": KILLED})
    runner = start_script("apply", db_url, "--json", "--migrations-dir", str(directory))
    pid = wait_for_session(db_url, "state = 'active' AND query LIKE '%%pg_sleep%%'", runner)
    try:
        os.kill(runner.pid, signal.SIGKILL)
        runner.communicate(timeout=30)
    finally:
        query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))  # the orphaned session would sleep on

    assert runner.returncode == -signal.SIGKILL
    rows = query(db_url, "SELECT status, error_message FROM public.schema_migrations WHERE version = %s", (C,))
    assert len(rows) == 1 and rows[0][0] == "failed", rows
    note = rows[0][1]
    assert "1 of 3" in note and "statement 2" in note and "may have completed" in note, note
    assert "line 4" in note, note
    assert table_exists(db_url, "k1") and not table_exists(db_url, "k3")

    plan, plan_doc = cli_json(run_script, "plan", directory, db_url)

    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert [(f["version"], f["error_message"]) for f in plan_doc["failed"]] == [(C, note)]
    assert [p["version"] for p in plan_doc["pending"]] == [C]


# ---- point 7: the application order is stable across baseline and accepted checksums -----------------------------

def test_rollback_after_a_baseline_and_an_accepted_checksum_undoes_the_last_baselined_migration(
        db_url, migrations_dir, run_script):
    query(db_url, "CREATE TABLE a (id int); CREATE TABLE b (id int)")  # the schema the database already has
    files = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
             f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")}
    directory = migrations_dir(files)
    baseline = run_script("apply", "--migrations-dir", str(directory), "--baseline", B, db_url=db_url, timeout=60)
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    (directory / f"{A}.sql").write_text(files[f"{A}.sql"].replace("(id int);", "(id int);\n-- reviewed edit"),
                                        encoding="utf-8")
    accepted = run_script("apply", "--migrations-dir", str(directory), "--accept-checksum", A, db_url=db_url,
                          timeout=60)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr

    plan_doc = cli_json(run_script, "plan", directory, db_url)[1]
    result, doc = cli_json(run_script, "rollback", directory, db_url)

    assert [r["version"] for r in plan_doc["applied"]] == [A, B]
    assert result.returncode == 0, result.stdout + result.stderr
    assert doc["rolled_back"] == [B]
    assert not table_exists(db_url, "b") and table_exists(db_url, "a")
    assert query(db_url, "SELECT version FROM public.schema_migrations WHERE direction = 'down'") == [(B,)]


# ---- point 8: a failure after migrations committed still reports what was applied ------------------------------

def test_a_connection_lost_while_recording_the_snapshot_reports_both_applied_migrations(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    directory = migrations_dir({f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;"),
                                f"{D}.sql": migration("CREATE TABLE d (id int);\nSELECT pg_sleep(1);",
                                                      "DROP TABLE d;")})
    runner = start_script("apply", db_url, "--json", "--migrations-dir", str(directory))
    holder = psycopg2.connect(db_url)
    try:
        # Take the lock while the last migration runs: after the pre-run checks, before the snapshot is recorded.
        wait_for_session(db_url, "state = 'active' AND query LIKE '%%pg_sleep%%'", runner)
        with holder.cursor() as cur:
            cur.execute("SET lock_timeout = '10s'")
            cur.execute("LOCK TABLE public.schema_migrations_snapshots IN ACCESS EXCLUSIVE MODE")
        blocked = wait_for_session(db_url, "state = 'active' AND wait_event_type = 'Lock'", runner)
        query(db_url, "SELECT pg_terminate_backend(%s)", (blocked,))
        code, out, err = finish(runner)
    finally:
        holder.close()
        if runner.poll() is None:
            runner.kill()
            runner.communicate(timeout=10)

    doc = json.loads(out)
    assert code == 4, out + err
    assert doc["error"]["code"] == "connection_lost"
    assert doc["applied"] == [C, D]
    assert "Traceback" not in err
    assert table_exists(db_url, "c") and table_exists(db_url, "d")
    assert success_rows(db_url, C) == 1 and success_rows(db_url, D) == 1


def test_a_missing_privilege_on_the_snapshot_table_is_permission_denied_with_its_sqlstate(
        db_url, migrations_dir, run_script, make_role):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    user, user_url = make_role()
    for table in ("schema_migrations", "schema_migrations_snapshots"):
        query(db_url, f'GRANT SELECT, INSERT, UPDATE ON public."{table}" TO "{user}"')
        sequence = query(db_url, "SELECT pg_get_serial_sequence(%s, 'id')", (f"public.{table}",))[0][0]
        query(db_url, f'GRANT USAGE ON SEQUENCE {sequence} TO "{user}"')
    query(db_url, f'REVOKE INSERT ON public.schema_migrations_snapshots FROM "{user}"')
    directory = migrations_dir({f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;")})

    result, doc = cli_json(run_script, "apply", directory, user_url)

    assert result.returncode == 4, result.stdout + result.stderr
    assert doc["ok"] is False
    assert doc["error"]["code"] == "permission_denied" and doc["error"]["sqlstate"] == "42501", doc["error"]
    assert doc["error"]["hint"]
    assert "Traceback" not in result.stderr
    # "applied" says exactly what the database holds: C counts as applied only if it committed with its row.
    committed = [C] if success_rows(db_url, C) == 1 else []
    assert doc["applied"] == committed
    assert table_exists(db_url, "c") == bool(committed)


@pytest.mark.parametrize("with_history", [False, True], ids=["fresh_database", "with_history"])
def test_a_read_only_database_is_exit_4_read_only_and_changes_nothing_while_plan_still_works(
        with_history, db_url, migrations_dir, run_script):
    first = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")}, name="first")
    if with_history:
        assert run_script("apply", "--migrations-dir", str(first), db_url=db_url, timeout=60).returncode == 0
    before = query(db_url, "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                           "ORDER BY 1")
    history_before = (query(db_url, "SELECT * FROM public.schema_migrations ORDER BY id") if with_history else None)
    # Only new sessions see it; the test database is dropped afterwards, so nothing needs undoing.
    query(db_url, f'ALTER DATABASE "{urlsplit(db_url).path.lstrip("/")}" SET default_transaction_read_only = on')
    files = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
             f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;")}
    directory = migrations_dir(files)

    result, doc = cli_json(run_script, "apply", directory, db_url)
    plan, plan_doc = cli_json(run_script, "plan", directory, db_url)

    assert result.returncode == 4, result.stdout + result.stderr
    assert doc["error"]["code"] == "read_only", doc["error"]
    assert doc["error"]["sqlstate"] == "25006"
    assert doc["applied"] == [] and "Traceback" not in result.stderr
    assert query(db_url, "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                         "ORDER BY 1") == before
    if with_history:
        assert query(db_url, "SELECT * FROM public.schema_migrations ORDER BY id") == history_before
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert [p["version"] for p in plan_doc["pending"]] == ([C] if with_history else [A, C])


# ---- point 9: a stale live-schema check is never permanent -------------------------------------------------------

def test_a_stale_schema_reference_is_reported_and_record_schema_makes_the_live_schema_the_reference(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    directory = migrations_dir({f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url, timeout=60).returncode == 0
    # As if the run died between its last commit and recording its snapshot.
    query(db_url, "DELETE FROM public.schema_migrations_snapshots WHERE id = "
                  "(SELECT max(id) FROM public.schema_migrations_snapshots)")

    stale, stale_doc = cli_json(run_script, "plan", directory, db_url)
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url, timeout=60)

    assert stale.returncode == 0, stale.stdout + stale.stderr
    assert stale_doc["schema_check"] == "stale"
    assert human.returncode == 0 and "apply_migrations.py --record-schema" in human.stdout + human.stderr, \
        human.stdout + human.stderr

    query(db_url, "CREATE TABLE out_of_band (id int)")  # the stale reference cannot tell this from the tool's work
    recorded = run_script("apply", "--migrations-dir", str(directory), "--record-schema", db_url=db_url, timeout=60)

    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    clean, clean_doc = cli_json(run_script, "plan", directory, db_url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean_doc["schema_check"] == "clean"
    assert query(db_url, "SELECT count(*) FROM public.schema_migrations WHERE version NOT IN (%s, %s)", (A, C)) == [
        (0,)]  # recording the schema wrote no history

    query(db_url, "ALTER TABLE out_of_band ADD COLUMN later text")
    drift, drift_doc = cli_json(run_script, "plan", directory, db_url)

    assert drift.returncode == 3, drift.stdout + drift.stderr
    assert drift_doc["schema_check"] == "drift"
    assert any("out_of_band" in json.dumps(change) for change in drift_doc["schema_drift"]), drift_doc


def test_a_success_row_inserted_by_hand_makes_the_check_stale_until_the_schema_is_recorded(
        db_url, migrations_dir, run_script):
    files = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
             f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;")}
    directory = migrations_dir(files)
    assert run_script("apply", "--migrations-dir", str(directory), "--target", A, db_url=db_url,
                      timeout=60).returncode == 0
    # Someone ran C's SQL by hand and recorded it by hand.
    query(db_url, "CREATE TABLE c (id int)")
    checksum = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url,
                                     timeout=60).stdout)["pending"][0]["checksum"]
    query(db_url, "INSERT INTO public.schema_migrations (version, name, checksum, direction, status) "
                  "VALUES (%s, 'create_c', %s, 'up', 'success')", (C, checksum))

    stale_doc = cli_json(run_script, "plan", directory, db_url)[1]
    recorded = run_script("apply", "--migrations-dir", str(directory), "--record-schema", "--json", db_url=db_url,
                          timeout=60)
    clean, clean_doc = cli_json(run_script, "plan", directory, db_url)

    assert stale_doc["schema_check"] == "stale"
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert json.loads(recorded.stdout)["ok"] is True
    assert clean.returncode == 0 and clean_doc["schema_check"] == "clean", clean_doc
