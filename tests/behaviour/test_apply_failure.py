"""A migration whose SQL fails: rolled back whole, recorded as failed with SQLSTATE and file line, run stops."""
import json

import pytest
from conftest import history, migration, query, tables

A = "20260101_000000_create_a"
B = "20260102_000000_fill_a"
C = "20260103_000000_create_c"

# Line numbers matter: the failing statement of B sits on line 5 of its file.
B_FAILING_TEMPLATE = (
    "-- MIGRATION: fill_a\n"             # line 1
    "-- DIRECTION: up\n"                 # line 2
    "CREATE TABLE b (id int);\n"         # line 3
    "INSERT INTO a VALUES (1), (2);\n"   # line 4
    "{bad}\n"                            # line 5
    "\n"
    "-- DIRECTION: down\n"
    "DROP TABLE b;\n"
    "DELETE FROM a;\n"
)
B_FIXED = migration("CREATE TABLE b (id int);\nINSERT INTO a VALUES (1), (2);", "DROP TABLE b;\nDELETE FROM a;",
                    name="fill_a")

FAILURES = [
    # (bad statement on line 5, SQLSTATE, text of the server's message, the line is known)
    ("SELECT * FROM no_such_table;", "42P01", "no_such_table", True),
    ("SELECT no_such_column FROM a;", "42703", "no_such_column", True),
    ("SELECT 1 / 0;", "22012", "division by zero", False),
]


def three_migrations(migrations_dir, bad: str):
    return migrations_dir({
        f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
        f"{B}.sql": B_FAILING_TEMPLATE.format(bad=bad),
        f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;"),
    })


def assert_state_after_failure(db_url: str) -> None:
    """First applied, the failing one's partial effects gone, its failed row recorded, the third not run."""
    assert tables(db_url) == {"schema_migrations", "a"}
    assert query(db_url, "SELECT count(*) FROM a") == [(0,)]
    assert history(db_url) == [(A, "up", "success"), (B, "up", "failed")]


@pytest.mark.parametrize(("bad", "sqlstate", "message", "has_line"), FAILURES,
                         ids=["undefined_table", "undefined_column", "division_by_zero"])
def test_apply_stops_at_first_failure_and_records_it(db_url, migrations_dir, run_script,
                                                     bad, sqlstate, message, has_line):
    directory = three_migrations(migrations_dir, bad)
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert A in result.stdout and "applied" in result.stdout
    assert B in result.stderr and "failed" in result.stderr
    assert sqlstate in output and message in output
    assert not any(C in line for line in result.stdout.splitlines() if "applied" in line)
    assert "Traceback" not in result.stderr
    assert_state_after_failure(db_url)
    [(error_message,)] = query(db_url, "SELECT error_message FROM schema_migrations WHERE status = 'failed'")
    assert sqlstate in error_message
    assert message in error_message
    if has_line:
        assert "line 5" in error_message
        assert f"{B}.sql:5" in result.stderr


def test_apply_failure_is_reported_in_json(db_url, migrations_dir, run_script):
    directory = three_migrations(migrations_dir, "SELECT * FROM no_such_table;")
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["applied"] == [A]
    assert doc["failed"]["version"] == B
    assert "42P01" in doc["failed"]["error"] and "no_such_table" in doc["failed"]["error"]
    assert doc["error"]["code"] == "migration_failed"
    assert B in doc["error"]["message"]
    assert_state_after_failure(db_url)


def test_apply_failed_row_carries_name_checksum_and_direction(db_url, migrations_dir, run_script):
    directory = three_migrations(migrations_dir, "SELECT * FROM no_such_table;")
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 1
    plan = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    [pending_b] = [p for p in plan["pending"] if p["version"] == B]
    rows = query(db_url, "SELECT version, name, checksum, direction, status FROM schema_migrations "
                         "WHERE status = 'failed'")
    assert rows == [(B, "fill_a", pending_b["checksum"], "up", "failed")]


def test_apply_reruns_successfully_after_the_failing_file_is_fixed(db_url, migrations_dir, run_script):
    directory = three_migrations(migrations_dir, "SELECT * FROM no_such_table;")
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 1
    (directory / f"{B}.sql").write_text(B_FIXED, encoding="utf-8")

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["applied"] == [B, C] and doc["failed"] is None
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}
    assert query(db_url, "SELECT id FROM a ORDER BY id") == [(1,), (2,)]
    assert history(db_url) == [(A, "up", "success"), (B, "up", "failed"), (B, "up", "success"), (C, "up", "success")]

    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert plan.returncode == 0
    assert json.loads(plan.stdout)["failed"] == []


def test_apply_failure_of_the_first_migration_applies_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE a (id int);\nSELECT * FROM no_such_table;", "DROP TABLE a;"),
        f"{C}.sql": migration("CREATE TABLE c (id int);", "DROP TABLE c;"),
    })
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["applied"] == [] and doc["failed"]["version"] == A
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(A, "up", "failed")]


# ---- a failed down ------------------------------------------------------------------------------------------

def test_rollback_failure_is_rolled_back_recorded_and_keeps_the_migration_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;\nSELECT * FROM no_such_table;"),
    })
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0

    result = run_script("rollback", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 1
    assert A in result.stderr and "down" in result.stderr
    assert "42P01" in result.stderr and "no_such_table" in result.stderr
    assert "Traceback" not in result.stderr
    assert tables(db_url) == {"schema_migrations", "a"}  # the DROP TABLE was rolled back with the failure
    assert history(db_url) == [(A, "up", "success"), (A, "down", "failed")]
    [(error_message,)] = query(db_url, "SELECT error_message FROM schema_migrations WHERE status = 'failed'")
    assert "42P01" in error_message and "no_such_table" in error_message and "line 6" in error_message

    plan = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    assert [a["version"] for a in plan["applied"]] == [A]
    assert plan["pending"] == []


def test_rollback_failure_is_reported_in_json(db_url, migrations_dir, run_script):
    directory = migrations_dir({
        f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;\nSELECT * FROM no_such_table;"),
    })
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    result = run_script("rollback", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["command"] == "rollback"
    assert doc["rolled_back"] == []
    assert doc["failed"]["version"] == A and "42P01" in doc["failed"]["error"]
    assert tables(db_url) == {"schema_migrations", "a"}
    assert history(db_url) == [(A, "up", "success"), (A, "down", "failed")]


def test_a_syntax_error_is_refused_before_anything_runs(db_url, migrations_dir, run_script):
    """The PostgreSQL parser (pglast) reads every step first, so a typo in B stops A from running too."""
    directory = three_migrations(migrations_dir, "SELEC 1;")
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 2
    assert f"{B}.sql:5: SQL syntax error" in result.stderr and "Traceback" not in result.stderr
    assert tables(db_url) == set() and history(db_url) == []
