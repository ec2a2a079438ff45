"""The cheaper lock guard and the supersede UPDATE sent only when needed keep every guarantee.

The guard: the lock connection holds a random run key with the runner lock, and a history row is written only while
another session holds that key. A migration that ends the lock connection (even one that then takes the key in its
own session) is refused (lock_lost) and rolled back, or stops before its next statement; migrations that release
their own advisory locks do not fool it; no advisory lock is left behind, after a run, a failed run or a lost lock,
through a transaction pooler too. The supersede UPDATE: a success row written meanwhile (by the migration's own SQL)
is refused by the unique index, in both directions, on re-apply, and statement by statement.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from conftest import history, migration, query, tables
from pgbouncer import pgbouncer

V1 = "20240101_000000_first"
V2 = "20240101_000001_second"
LOCK_APP = "migration-assistant-lock"
KILL_LOCK = (f"SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
             f"WHERE application_name = '{LOCK_APP}' AND datname = current_database();")
# The run key as the lock connection holds it: every advisory bigint key of that session but the runner lock's.
RUN_KEY_OF_LOCK = ("(SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l "
                   "JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = '" + LOCK_APP + "' "
                   "AND a.datname = current_database() AND l.locktype = 'advisory' AND l.objsubid = 1 "
                   "AND (l.classid::bigint << 32) | l.objid::bigint <> 7361027501)")
ADVISORY_LOCKS = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                  "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
STEAL_UP = ("INSERT INTO schema_migrations (version, name, checksum, direction, status) "
            "VALUES ('{version}', 'by_hand', 'written-by-hand', '{direction}', 'success');")


def run(run_script, command: str, directory, url: str, *args: str) -> tuple[int, dict, str]:
    result = run_script(command, "--migrations-dir", str(directory), "--json", *args, db_url=url, timeout=60)
    return result.returncode, json.loads(result.stdout), result.stderr


def success_rows(url: str, version: str) -> list[tuple[str, str]]:
    return query(url, "SELECT direction, checksum FROM schema_migrations WHERE version = %s AND status = 'success' "
                      "ORDER BY id", (version,))


def test_the_lock_connection_holds_one_run_key_during_the_run_and_no_advisory_lock_stays_after_it(
        db_url, migrations_dir, run_script):
    seen = ("CREATE TABLE seen AS SELECT a.application_name AS app, l.mode, l.granted FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());")
    directory = migrations_dir({f"{V1}.sql": migration(seen, "DROP TABLE seen;")})

    code, doc, err = run(run_script, "apply", directory, db_url)

    assert code == 0 and doc["applied"] == [V1], doc
    # The runner lock and the run key, both exclusive, both on the lock connection; the work connection none.
    assert query(db_url, "SELECT app, mode, granted FROM seen") == [(LOCK_APP, "ExclusiveLock", True)] * 2
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]
    assert "Traceback" not in err


def test_a_failed_run_and_a_lost_lock_leave_no_advisory_lock_behind(db_url, migrations_dir, run_script):
    failing = migrations_dir({f"{V1}.sql": migration("CREATE TABLE t (id int);\nSELECT 1/0;")}, name="failing")
    code, doc, _ = run(run_script, "apply", failing, db_url)
    assert code == 1 and doc["failed"]["version"] == V1, doc
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]

    losing = migrations_dir({f"{V1}.sql": migration(KILL_LOCK + "\nCREATE TABLE t (id int);")}, name="losing")
    code, doc, _ = run(run_script, "apply", losing, db_url)
    assert code == 3 and doc["error"]["code"] == "lock_lost", doc
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]
    assert "t" not in tables(db_url) and success_rows(db_url, V1) == []


@pytest.mark.parametrize("take", ["pg_advisory_xact_lock", "pg_advisory_lock"])
def test_a_migration_that_ends_the_lock_connection_and_takes_the_run_key_itself_is_still_refused(
        take, db_url, migrations_dir, run_script):
    # Its own session holding the key does not count: the guard needs another session to hold it.
    up = (f"CREATE TEMP TABLE k AS SELECT {RUN_KEY_OF_LOCK} AS key;\n"
          "SELECT 1 / count(key)::int FROM k;\n"  # no key found: the migration fails (exit 1), proving nothing
          f"{KILL_LOCK}\n"
          f"SELECT {take}(key) FROM k;\nCREATE TABLE taken AS SELECT key FROM k;")
    directory = migrations_dir({f"{V1}.sql": migration("CREATE TABLE first (id int);", "DROP TABLE first;"),
                                f"{V2}.sql": migration(up, "DROP TABLE taken;")})

    code, doc, err = run(run_script, "apply", directory, db_url)

    assert code == 3 and doc["error"]["code"] == "lock_lost" and V2 in doc["error"]["message"], doc
    assert doc["applied"] == [V1]
    assert "taken" not in tables(db_url) and "first" in tables(db_url)
    assert [row for row in history(db_url) if row[2] == "success"] == [(V1, "up", "success")]
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]
    assert "Traceback" not in err


def test_a_statement_by_statement_migration_that_ends_the_lock_connection_sends_no_further_statement(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{V1}.sql": "-- TRANSACTION: none\n" + migration(
        KILL_LOCK + "\nCREATE TABLE after_kill (id int);", "DROP TABLE after_kill;")})

    code, doc, err = run(run_script, "apply", directory, db_url)

    assert code == 3 and doc["error"]["code"] == "lock_lost", doc
    assert "1 of 2 statements had completed" in doc["error"]["message"]
    assert "after_kill" not in tables(db_url)
    assert history(db_url) == [(V1, "up", "failed")]  # the progress row, never turned into a success
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]
    assert "Traceback" not in err


def test_migrations_that_release_their_own_advisory_locks_are_recorded_while_the_lock_is_held(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({
        f"{V1}.sql": migration("SELECT pg_advisory_unlock_all();\nCREATE TABLE a (id int);", "DROP TABLE a;"),
        f"{V2}.sql": "-- TRANSACTION: none\n" + migration(
            "DISCARD ALL;\nSELECT pg_advisory_unlock_all();\nCREATE TABLE b (id int);", "DROP TABLE b;"),
    })

    code, doc, err = run(run_script, "apply", directory, db_url)

    assert code == 0 and doc["applied"] == [V1, V2], doc
    assert history(db_url) == [(V1, "up", "success"), (V2, "up", "success")]
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]


def test_a_rollback_whose_own_sql_writes_the_rolled_back_row_is_refused_and_undone(
        db_url, migrations_dir, run_script):
    down = STEAL_UP.format(version=V1, direction="down") + "\nDROP TABLE a;"
    directory = migrations_dir({f"{V1}.sql": migration("CREATE TABLE a (id int);", down)})
    assert run(run_script, "apply", directory, db_url)[0] == 0

    code, doc, err = run(run_script, "rollback", directory, db_url)

    assert code == 3 and doc["error"]["code"] == "already_recorded" and V1 in doc["error"]["message"], doc
    assert "a" in tables(db_url)  # the down was rolled back with the row it wrote
    assert history(db_url) == [(V1, "up", "success")]
    assert "Traceback" not in err


def test_a_reapply_whose_own_sql_records_the_reapply_first_is_refused_and_undone(db_url, migrations_dir,
                                                                                  run_script):
    # On the re-apply (a down row exists) the up SQL does what another run would: it supersedes the old up row and
    # writes its own. The tool's supersede must then leave that row alone and its INSERT be refused.
    rolled_back = (f"EXISTS (SELECT 1 FROM schema_migrations WHERE version = '{V1}' AND direction = 'down' "
                   "AND status = 'success')")
    up = (f"UPDATE schema_migrations SET status = 'superseded' WHERE version = '{V1}' AND direction = 'up' "
          f"AND status = 'success' AND {rolled_back};\n"
          "INSERT INTO schema_migrations (version, name, checksum, direction, status) "
          f"SELECT '{V1}', 'by_hand', 'written-by-hand', 'up', 'success' WHERE {rolled_back};\n"
          "CREATE TABLE a (id int);")
    directory = migrations_dir({f"{V1}.sql": migration(up, "DROP TABLE a;")})
    assert run(run_script, "apply", directory, db_url)[0] == 0
    assert run(run_script, "rollback", directory, db_url)[0] == 0
    before = query(db_url, "SELECT id, version, direction, status FROM schema_migrations ORDER BY id")

    code, doc, err = run(run_script, "apply", directory, db_url)

    assert code == 3 and doc["error"]["code"] == "already_recorded" and V1 in doc["error"]["message"], doc
    assert "a" not in tables(db_url)
    assert query(db_url, "SELECT id, version, direction, status FROM schema_migrations ORDER BY id") == before
    assert "Traceback" not in err


def test_a_statement_by_statement_migration_whose_statement_writes_its_row_is_refused(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{V1}.sql": "-- TRANSACTION: none\n" + migration(
        STEAL_UP.format(version=V1, direction="up") + "\nCREATE TABLE nt (id int);", "DROP TABLE nt;")})

    code, doc, err = run(run_script, "apply", directory, db_url)

    assert code == 3 and doc["error"]["code"] == "already_recorded" and V1 in doc["error"]["message"], doc
    assert success_rows(db_url, V1) == [("up", "written-by-hand")]  # never superseded
    assert "nt" in tables(db_url)  # its statements committed one by one
    assert "Traceback" not in err


def test_statement_by_statement_migrations_cycle_through_apply_rollback_and_reapply(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{V1}.sql": "-- TRANSACTION: none\n" + migration(
        "CREATE TABLE c (id int);\nCREATE INDEX CONCURRENTLY c_id ON c (id);", "DROP TABLE c;")})

    for _ in range(2):
        assert run(run_script, "apply", directory, db_url)[1]["applied"] == [V1]
        assert run(run_script, "rollback", directory, db_url)[1]["rolled_back"] == [V1]
    assert run(run_script, "apply", directory, db_url)[1]["applied"] == [V1]

    assert "c" in tables(db_url)
    assert query(db_url, "SELECT direction, status, count(*) FROM schema_migrations GROUP BY 1, 2 ORDER BY 1, 2") == [
        ("down", "success", 1), ("down", "superseded", 1), ("up", "success", 1), ("up", "superseded", 2)]


# ---- behind a transaction pooler --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def transaction_pooler(pg_server: str) -> Iterator[Callable[[str], str]]:
    with pgbouncer(pg_server, "transaction") as bouncer:
        yield bouncer.url


def test_behind_a_transaction_pooler_the_run_key_goes_with_the_run_and_a_lost_lock_is_refused(
        transaction_pooler, db_url, migrations_dir, run_script):
    pooled = transaction_pooler(db_url)
    directory = migrations_dir({f"{V1}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")}, name="ok")
    code, doc, _ = run(run_script, "apply", directory, pooled)
    assert code == 0 and doc["applied"] == [V1], doc
    # The pool keeps its server connections: a session-level key would still be held on one of them.
    assert query(db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND pid <> pg_backend_pid()")[0][0] > 0
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]

    losing = migrations_dir({f"{V1}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
                             f"{V2}.sql": migration(KILL_LOCK + "\nCREATE TABLE b (id int);", "DROP TABLE b;")},
                            name="losing")
    code, doc, err = run(run_script, "apply", losing, pooled)
    assert code == 3 and doc["error"]["code"] == "lock_lost" and V2 in doc["error"]["message"], doc
    assert "b" not in tables(db_url) and success_rows(db_url, V2) == []
    assert query(db_url, ADVISORY_LOCKS) == [(0,)]
    assert "Traceback" not in err
