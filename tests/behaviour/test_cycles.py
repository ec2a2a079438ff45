"""apply -> rollback -> apply cycles: older success rows become 'superseded', history only grows."""
import json

from conftest import history, migration, query, tables

A = "20260101_000000_create_a"
B = "20260102_000000_create_b"


def two_migrations(migrations_dir):
    return migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
                           f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")})


def all_rows(url: str) -> list[tuple]:
    return query(url, "SELECT id, version, direction, status, error_message FROM schema_migrations ORDER BY id")


def success_counts(url: str) -> list[tuple]:
    return query(url, "SELECT version, direction, count(*) FROM schema_migrations WHERE status = 'success' "
                      "GROUP BY version, direction ORDER BY version, direction")


def applied_versions(run_script, directory, db_url) -> list[str]:
    result = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 0, result.stdout
    return [a["version"] for a in json.loads(result.stdout)["applied"]]


def run_json(run_script, command, directory, db_url, *args) -> dict:
    result = run_script(command, "--migrations-dir", str(directory), "--json", *args, db_url=db_url)
    assert result.returncode == 0, result.stdout
    return json.loads(result.stdout)


def assert_history_only_grew(before: list[tuple], after: list[tuple], added: int) -> None:
    """Every earlier row is still there (same id, version, direction, message), and `added` rows are new."""
    assert len(after) == len(before) + added
    kept = {row[0]: (row[1], row[2], row[4]) for row in after}
    assert all(kept[row[0]] == (row[1], row[2], row[4]) for row in before)


def test_apply_rollback_cycles_work_and_keep_one_success_row_per_version_and_direction(
        db_url, migrations_dir, run_script):
    directory = two_migrations(migrations_dir)
    rows = []
    for cycle in range(3):
        assert run_json(run_script, "apply", directory, db_url)["applied"] == [A, B]
        assert tables(db_url) == {"schema_migrations", "a", "b"}
        assert applied_versions(run_script, directory, db_url) == [A, B]
        after = all_rows(db_url)
        assert_history_only_grew(rows, after, 2)
        rows = after

        assert run_json(run_script, "rollback", directory, db_url, "--to", A)["rolled_back"] == [B]
        assert run_json(run_script, "rollback", directory, db_url)["rolled_back"] == [A]
        assert tables(db_url) == {"schema_migrations"}
        assert applied_versions(run_script, directory, db_url) == []
        after = all_rows(db_url)
        assert_history_only_grew(rows, after, 2)
        rows = after

        expected = [(A, "down", 1), (A, "up", 1), (B, "down", 1), (B, "up", 1)]
        assert success_counts(db_url) == expected, f"cycle {cycle}"

    assert len(rows) == 12
    statuses = query(db_url, "SELECT version, direction, status FROM schema_migrations ORDER BY id")
    # Each (version, direction) ran 3 times: the first two runs are superseded, the last is the success row.
    for version in (A, B):
        for direction in ("up", "down"):
            assert [s for v, d, s in statuses if (v, d) == (version, direction)] == [
                "superseded", "superseded", "success"]


def test_reapplying_a_rolled_back_migration_supersedes_its_older_up_row(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    assert run_json(run_script, "apply", directory, db_url)["applied"] == [A]
    assert run_json(run_script, "rollback", directory, db_url)["rolled_back"] == [A]
    assert history(db_url) == [(A, "up", "success"), (A, "down", "success")]

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert A in result.stdout and "Applied 1 migration in " in result.stdout
    assert tables(db_url) == {"schema_migrations", "a"}
    assert history(db_url) == [(A, "up", "superseded"), (A, "down", "success"), (A, "up", "success")]
    assert applied_versions(run_script, directory, db_url) == [A]

    result = run_script("rollback", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert A in result.stdout
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(A, "up", "superseded"), (A, "down", "superseded"),
                               (A, "up", "success"), (A, "down", "success")]
    assert applied_versions(run_script, directory, db_url) == []


def test_failed_rows_survive_cycles_and_are_never_superseded(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("SELECT * FROM no_such_table;", "SELECT 1;")})
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 1
    (directory / f"{A}.sql").write_text(migration("CREATE TABLE a (id int);", "DROP TABLE a;"), encoding="utf-8")
    for _ in range(2):
        assert run_json(run_script, "apply", directory, db_url)["applied"] == [A]
        assert run_json(run_script, "rollback", directory, db_url)["rolled_back"] == [A]
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(A, "up", "failed"),
                               (A, "up", "superseded"), (A, "down", "superseded"),
                               (A, "up", "success"), (A, "down", "success")]
    [(message,)] = query(db_url, "SELECT error_message FROM schema_migrations WHERE status = 'failed'")
    assert "42P01" in message


def test_partial_rollback_and_reapply_cycles_keep_the_state_consistent(db_url, migrations_dir, run_script):
    directory = two_migrations(migrations_dir)
    assert run_json(run_script, "apply", directory, db_url)["applied"] == [A, B]
    for _ in range(3):
        assert run_json(run_script, "rollback", directory, db_url)["rolled_back"] == [B]
        assert tables(db_url) == {"schema_migrations", "a"}
        assert run_json(run_script, "apply", directory, db_url)["applied"] == [B]
        assert tables(db_url) == {"schema_migrations", "a", "b"}
    assert applied_versions(run_script, directory, db_url) == [A, B]
    assert success_counts(db_url) == [(A, "up", 1), (B, "down", 1), (B, "up", 1)]
    assert query(db_url, "SELECT count(*) FROM schema_migrations") == [(8,)]
    assert query(db_url, "SELECT count(*) FROM schema_migrations WHERE status = 'superseded'") == [(5,)]
