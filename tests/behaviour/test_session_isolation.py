"""Migration SQL cannot reach the tool's own state (issue 9): whatever a migration does to its session (search_path,
role, settings, advisory locks), the next migration runs as in a fresh session, the history and snapshot tables stay
where they are, and the runner lock still keeps a second runner out. Real subprocesses on a real server.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SCRIPTS, migration, query

M1 = "20260101_000000_change_session"
M2 = "20260102_000000_create_seen"
M3 = "20260103_000000_create_after"

# m2 records what its session looks like, in a table created with an unqualified name.
SEEN = ("CREATE TABLE seen AS SELECT current_user::text AS usr, session_user::text AS session_usr, "
        "current_setting('search_path') AS path, current_setting('lock_timeout') AS lock_timeout;")

# What m1 does to its session; {role} is a throwaway role the connecting superuser may switch to.
SESSION_CHANGES = {
    "set_search_path": "CREATE SCHEMA app;\nSET search_path TO app;",
    "set_role": "SET ROLE {role};",
    "set_session_authorization": "SET SESSION AUTHORIZATION {role};",
    "reset_all": "RESET ALL;",
    "set_config_search_path": "CREATE SCHEMA app;\nSELECT set_config('search_path', 'app', false);",
    "discard_all": "-- TRANSACTION: none\n" + "DISCARD ALL;",
    "advisory_unlock_all": "SELECT pg_advisory_unlock_all();",
}


@pytest.fixture
def other_role(db_url: str) -> Iterator[str]:
    """Yield a fresh role that may create tables in public (so a leaked role shows as a wrong owner)."""
    name = "other_" + uuid.uuid4().hex[:10]
    query(db_url, f'CREATE ROLE "{name}"')
    query(db_url, f'GRANT USAGE, CREATE ON SCHEMA public TO "{name}"')
    try:
        yield name
    finally:
        query(db_url, f'DROP OWNED BY "{name}" CASCADE')
        query(db_url, f'DROP ROLE "{name}"')


def session_change_file(change: str, role: str) -> str:
    """Return m1: a header (if the change needs one) then an up section doing the change."""
    text = SESSION_CHANGES[change].format(role=role)
    header, _, body = text.rpartition("\n") if text.startswith("--") else ("", "", text)
    return (header + "\n" if header else "") + migration(body)


def fresh_session_settings(db_url: str) -> tuple[str, str]:
    """Return (current_user, search_path) of a brand-new session, which m2 must see too."""
    return query(db_url, "SELECT current_user::text, current_setting('search_path')")[0]


def tool_tables(db_url: str) -> list[tuple[str, str]]:
    """Return (schema, table) of every table named schema_migrations*, wherever it is."""
    return query(db_url, "SELECT schemaname::text, tablename::text FROM pg_tables "
                         "WHERE tablename LIKE 'schema_migrations%%' ORDER BY 1, 2")


def start_apply(db_url: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": db_url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--json",
                             "--migrations-dir", str(directory), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def with_application_name(url: str, name: str) -> str:
    """Return url with an application_name of its own, to tell this runner's sessions apart."""
    return url + ("&" if "?" in url else "?") + f"application_name={name}"


def wait_for_sleep(db_url: str, runner: subprocess.Popen[str], deadline_s: float = 20) -> int:
    """Return the server pid of the runner's session once it runs pg_sleep; fail if it never does."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = query(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'migration-assistant' "
                              "AND state = 'active' AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()")
        if found:
            return found[0][0]
        if runner.poll() is not None:
            raise AssertionError(f"the runner ended before reaching pg_sleep: {runner.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the runner never reached pg_sleep")


def finish(runner: subprocess.Popen[str]) -> tuple[int, dict, str]:
    """Wait for a runner (bounded) and return its exit code, JSON document and stderr."""
    try:
        out, err = runner.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        runner.kill()
        out, err = runner.communicate(timeout=10)
        raise AssertionError(f"runner hung: {out} {err}") from None
    return runner.returncode, json.loads(out), err


def success_counts(db_url: str) -> dict[str, int]:
    return dict(query(db_url, "SELECT version, count(*)::int FROM public.schema_migrations "
                              "WHERE status = 'success' AND direction = 'up' GROUP BY version"))


# ---- what one migration does to its session does not reach the next one or the tool ----------------------------

@pytest.mark.parametrize("change", list(SESSION_CHANGES), ids=list(SESSION_CHANGES))
def test_a_migration_changing_its_session_leaves_the_next_migration_and_the_history_untouched(
        change, db_url, migrations_dir, run_script, other_role):
    user, default_path = fresh_session_settings(db_url)
    directory = migrations_dir({f"{M1}.sql": session_change_file(change, other_role),
                                f"{M2}.sql": migration(SEEN, "DROP TABLE seen;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url, timeout=60)

    doc = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert doc["applied"] == [M1, M2] and doc["failed"] is None
    # m2 ran as in a fresh session: the connecting user, the default search_path, the tool's lock timeout.
    assert query(db_url, "SELECT schemaname::text, tableowner::text FROM pg_tables WHERE tablename = 'seen'") == [
        ("public", user)]
    assert query(db_url, "SELECT usr, session_usr, path, lock_timeout FROM public.seen") == [
        (user, user, default_path, "5s")]
    # The tool's tables stayed in public; nothing of the tool's landed in app.
    assert tool_tables(db_url) == [("public", "schema_migrations"), ("public", "schema_migrations_snapshots")]
    assert query(db_url, "SELECT version, direction, status FROM public.schema_migrations ORDER BY id") == [
        (M1, "up", "success"), (M2, "up", "success")]
    assert query(db_url, "SELECT count(*) FROM public.schema_migrations_snapshots")[0][0] >= 1
    # Nothing the tool writes is owned by, or was created as, the other role.
    assert query(db_url, "SELECT count(*) FROM pg_class WHERE relowner = to_regrole(%s)", (other_role,)) == [(0,)]

    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url, timeout=60)

    assert plan.returncode == 0, plan.stdout + plan.stderr
    plan_doc = json.loads(plan.stdout)
    assert plan_doc["pending"] == [] and plan_doc["schema_check"] == "clean"


# ---- releasing advisory locks inside a migration does not let a second runner in -------------------------------

UNLOCKERS = {"advisory_unlock_all": migration("SELECT pg_advisory_unlock_all();"),
             "discard_all": "-- TRANSACTION: none\n" + migration("DISCARD ALL;")}


@pytest.mark.parametrize("unlocker", list(UNLOCKERS), ids=list(UNLOCKERS))
def test_a_migration_releasing_advisory_locks_does_not_let_a_second_runner_run_anything_twice(
        unlocker, db_url, migrations_dir):
    directory = migrations_dir({
        f"{M1}.sql": UNLOCKERS[unlocker],
        f"{M2}.sql": migration("CREATE TABLE slow (id int);\nSELECT pg_sleep(3);", "DROP TABLE slow;"),
        f"{M3}.sql": migration("CREATE TABLE after_slow (id int);", "DROP TABLE after_slow;"),
    })
    first = start_apply(db_url, directory, "--lock-timeout", "60")
    sleeper = wait_for_sleep(db_url, first)
    first_sessions = [pid for (pid,) in query(db_url, "SELECT pid FROM pg_stat_activity "
                                                      "WHERE application_name LIKE 'migration-assistant%%'")]

    second = start_apply(db_url, directory, "--lock-timeout", "60")
    # The second runner must meet the first while it still sleeps, or the test proves nothing.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and second.poll() is None:
        if query(db_url, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                         "'migration-assistant%%' AND pid <> ALL(%s)", (first_sessions,))[0][0]:
            break
        time.sleep(0.05)
    still_sleeping = query(db_url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query LIKE "
                                   "'%%pg_sleep%%' AND state = 'active'", (sleeper,))[0][0]
    first_code, first_doc, first_err = finish(first)
    second_code, second_doc, second_err = finish(second)

    assert still_sleeping == 1, "the second runner connected only after the first had finished its slow migration"
    assert first_code == 0, first_doc
    assert first_doc["applied"] == [M1, M2, M3]
    assert second_code == 0, second_doc  # it waited for the lock, then found nothing to do
    assert second_doc["applied"] == [] and second_doc["failed"] is None
    assert success_counts(db_url) == {M1: 1, M2: 1, M3: 1}
    assert query(db_url, "SELECT count(*) FROM public.schema_migrations") == [(3,)]  # no failed attempt either
    assert query(db_url, "SELECT count(*) FROM pg_tables WHERE tablename IN ('slow', 'after_slow')") == [(2,)]


def test_a_second_runner_with_a_short_lock_timeout_gives_up_even_after_the_first_released_advisory_locks(
        db_url, migrations_dir):
    directory = migrations_dir({
        f"{M1}.sql": UNLOCKERS["advisory_unlock_all"],
        f"{M2}.sql": migration("CREATE TABLE slow (id int);\nSELECT pg_sleep(5);", "DROP TABLE slow;"),
    })
    first = start_apply(db_url, directory)
    wait_for_sleep(db_url, first)

    second = start_apply(db_url, directory, "--lock-timeout", "1")
    second_code, second_doc, second_err = finish(second)
    first_code, first_doc, _ = finish(first)

    assert second_code == 3, second_doc
    assert second_doc["error"]["code"] == "lock_timeout" and second_doc["applied"] == []
    assert "Traceback" not in second_err
    assert first_code == 0 and first_doc["applied"] == [M1, M2]
    assert success_counts(db_url) == {M1: 1, M2: 1}
    assert query(db_url, "SELECT count(*) FROM public.schema_migrations") == [(2,)]


def test_a_runner_whose_url_names_its_own_application_name_takes_the_lock_and_applies(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{M1}.sql": migration("CREATE TABLE named (id int);", "DROP TABLE named;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", "--lock-timeout", "5",
                        db_url=with_application_name(db_url, "deploy_job"), timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["applied"] == [M1]
    assert success_counts(db_url) == {M1: 1}


# ---- the success row never silently supersedes one written meanwhile --------------------------------------------

INSERT_SUCCESS_BY_HAND = ("INSERT INTO public.schema_migrations (version, name, checksum, direction, status) "
                          "VALUES (%s, 'by_hand', 'written-by-hand', 'up', 'success')")


@pytest.mark.parametrize("which", ["running", "next"])
def test_a_success_row_written_meanwhile_for_a_version_makes_its_apply_fail_instead_of_superseding_it(
        which, db_url, migrations_dir):
    directory = migrations_dir({
        f"{M1}.sql": migration("CREATE TABLE sleeper (id int);\nSELECT pg_sleep(2);", "DROP TABLE sleeper;"),
        f"{M2}.sql": migration("CREATE TABLE next_one (id int);", "DROP TABLE next_one;"),
    })
    version, table = (M1, "sleeper") if which == "running" else (M2, "next_one")
    runner = start_apply(db_url, directory)
    wait_for_sleep(db_url, runner)

    query(db_url, INSERT_SUCCESS_BY_HAND, (version,))  # another writer got there first, inside the sleep
    code, doc, err = finish(runner)

    assert code != 0, doc
    assert doc["ok"] is False and doc["error"]["code"] != "unexpected_error", doc["error"]
    assert version in json.dumps(doc["error"]) + json.dumps(doc.get("failed")), doc
    assert version not in doc["applied"]
    assert "Traceback" not in err
    # Exactly the hand-written success row, never superseded; the migration's own work rolled back.
    assert query(db_url, "SELECT checksum, status FROM public.schema_migrations WHERE version = %s "
                         "AND status IN ('success', 'superseded')", (version,)) == [("written-by-hand", "success")]
    assert query(db_url, "SELECT to_regclass(%s) IS NULL", (f"public.{table}",)) == [(True,)]
