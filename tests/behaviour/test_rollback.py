"""rollback_migrations.py: latest by application order, --to, dry runs, and refusals checked before anything runs."""
import hashlib
import json

import pytest
from conftest import history, migration, query, tables

A = "20260101_000000_create_a"
B = "20260102_000000_create_b"
C = "20260103_000000_create_c"
D = "20260104_000000_create_d"


def table_migration(table: str) -> str:
    return migration(f"CREATE TABLE {table} (id int);", f"DROP TABLE {table};")


def history_rows(url: str) -> list[tuple]:
    if not query(url, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]:
        return []
    return query(url, "SELECT * FROM schema_migrations ORDER BY id")


def applied_directory(migrations_dir, run_script, db_url, files: dict[str, str]):
    """Write the files, apply them all, and return the directory."""
    directory = migrations_dir(files)
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    return directory


def four_applied(migrations_dir, run_script, db_url):
    return applied_directory(migrations_dir, run_script, db_url, {
        f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b"),
        f"{C}.sql": table_migration("c"), f"{D}.sql": table_migration("d")})


def rollback_json(run_script, directory, db_url, *args):
    result = run_script("rollback", "--migrations-dir", str(directory), "--json", *args, db_url=db_url)
    return result, json.loads(result.stdout)


# ---- what gets rolled back ----------------------------------------------------------------------------------

def test_rollback_undoes_only_the_latest_migration(db_url, migrations_dir, run_script):
    directory = four_applied(migrations_dir, run_script, db_url)
    result = run_script("rollback", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "rolled back" in line and "ms)" in line]
    assert len(lines) == 1 and D in lines[0]
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}
    assert history(db_url)[-1] == (D, "down", "success")
    assert len(history(db_url)) == 5


def test_rollback_undoes_the_latest_by_application_order_not_version_order(db_url, migrations_dir, run_script):
    directory = applied_directory(migrations_dir, run_script, db_url,
                                  {f"{A}.sql": table_migration("a"), f"{C}.sql": table_migration("c")})
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    assert run_script("apply", "--allow-out-of-order", "--migrations-dir", str(directory),
                      db_url=db_url).returncode == 0  # B applied last

    result, doc = rollback_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["command"] == "rollback" and doc["dry_run"] is False
    assert doc["rolled_back"] == [B]
    assert tables(db_url) == {"schema_migrations", "a", "c"}
    assert history(db_url)[-1] == (B, "down", "success")


def test_rollback_to_a_version_undoes_every_later_one_newest_first(db_url, migrations_dir, run_script):
    directory = four_applied(migrations_dir, run_script, db_url)
    result, doc = rollback_json(run_script, directory, db_url, "--to", B)
    assert result.returncode == 0, result.stdout
    assert doc["rolled_back"] == [D, C]
    assert tables(db_url) == {"schema_migrations", "a", "b"}
    assert history(db_url)[4:] == [(D, "down", "success"), (C, "down", "success")]
    plan = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    assert [a["version"] for a in plan["applied"]] == [A, B]
    assert [p["version"] for p in plan["pending"]] == [C, D]


def test_rollback_to_a_version_in_human_output_lists_each_migration(db_url, migrations_dir, run_script):
    directory = four_applied(migrations_dir, run_script, db_url)
    result = run_script("rollback", "--migrations-dir", str(directory), "--to", A, db_url=db_url)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "rolled back" in line and "ms)" in line]
    assert [line.split()[-3] for line in lines] == [D, C, B]
    assert tables(db_url) == {"schema_migrations", "a"}


def test_rollback_to_the_latest_version_undoes_nothing(db_url, migrations_dir, run_script):
    directory = four_applied(migrations_dir, run_script, db_url)
    before = history_rows(db_url)
    result, doc = rollback_json(run_script, directory, db_url, "--to", D)
    assert result.returncode == 0, result.stdout
    assert doc["rolled_back"] == []
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b", "c", "d"}


def test_rollback_writes_a_down_success_row(db_url, migrations_dir, run_script):
    text = migration("CREATE TABLE a (id int);", "DROP TABLE a;", name="Create a")
    directory = applied_directory(migrations_dir, run_script, db_url, {f"{A}.sql": text})
    result = run_script("rollback", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    rows = query(db_url, "SELECT version, name, checksum, direction, status, error_message FROM schema_migrations "
                         "ORDER BY id")
    checksum = hashlib.sha256(text.encode()).hexdigest()
    assert rows == [(A, "Create a", checksum, "up", "success", None),
                    (A, "Create a", checksum, "down", "success", None)]
    assert tables(db_url) == {"schema_migrations"}
    plan = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    assert plan["applied"] == [] and [p["version"] for p in plan["pending"]] == [A]


# ---- dry run ------------------------------------------------------------------------------------------------

def test_rollback_dry_run_prints_the_down_sql_newest_first_and_changes_nothing(db_url, migrations_dir, run_script):
    directory = four_applied(migrations_dir, run_script, db_url)
    before = history_rows(db_url)
    result = run_script("rollback", "--migrations-dir", str(directory), "--to", B, "--dry-run", db_url=db_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "DROP TABLE d;" in out and "DROP TABLE c;" in out
    assert out.index("DROP TABLE d;") < out.index("DROP TABLE c;")
    assert "DROP TABLE b;" not in out and "DROP TABLE a;" not in out
    assert "CREATE TABLE" not in out
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b", "c", "d"}


def test_rollback_dry_run_in_json_rolls_back_nothing(db_url, migrations_dir, run_script):
    directory = four_applied(migrations_dir, run_script, db_url)
    before = history_rows(db_url)
    result, doc = rollback_json(run_script, directory, db_url, "--dry-run")
    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["dry_run"] is True
    assert doc["rolled_back"] == []
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b", "c", "d"}


# ---- refusals -----------------------------------------------------------------------------------------------

IRREVERSIBLE = [
    (migration("CREATE TABLE c (id int);"), "no_down_section"),
    (migration("CREATE TABLE c (id int);", "-- cannot be undone\n/* really */"), "comment_only_down_section"),
]


@pytest.mark.parametrize("text_c", [t for t, _ in IRREVERSIBLE], ids=[i for _, i in IRREVERSIBLE])
@pytest.mark.parametrize("to", [None, A], ids=["latest", "to_version"])
def test_rollback_refuses_an_irreversible_migration_in_range_and_changes_nothing(
        db_url, migrations_dir, run_script, text_c, to):
    # C is irreversible; D (after it) is reversible, so a partial run would undo D before hitting C.
    directory = applied_directory(migrations_dir, run_script, db_url, {
        f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b"),
        f"{C}.sql": text_c, f"{D}.sql": table_migration("d")})
    if to is None:  # make C the latest
        assert run_script("rollback", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    before = history_rows(db_url)
    before_tables = tables(db_url)
    args = ["--to", to] if to else []
    result = run_script("rollback", "--migrations-dir", str(directory), *args, db_url=db_url)
    assert result.returncode == 3
    assert C in result.stderr
    assert "Traceback" not in result.stderr
    assert history_rows(db_url) == before
    assert tables(db_url) == before_tables
    result, doc = rollback_json(run_script, directory, db_url, *args)
    assert result.returncode == 3
    assert doc["ok"] is False and doc["error"]["code"] == "irreversible"
    assert history_rows(db_url) == before


def edit_file(path) -> None:
    path.write_text(migration("CREATE TABLE c (id bigint);", "DROP TABLE c;"), encoding="utf-8")


def delete_file(path) -> None:
    path.unlink()


@pytest.mark.parametrize(("damage", "code"), [(edit_file, "drift_detected"), (delete_file, "missing_file")],
                         ids=["drifted_file", "missing_file"])
@pytest.mark.parametrize("to", [A, B], ids=["damaged_in_middle_of_range", "damaged_at_end_of_range"])
def test_rollback_refuses_a_damaged_file_in_range_and_changes_nothing(
        db_url, migrations_dir, run_script, damage, code, to):
    directory = four_applied(migrations_dir, run_script, db_url)
    damage(directory / f"{C}.sql")
    before = history_rows(db_url)
    result = run_script("rollback", "--migrations-dir", str(directory), "--to", to, db_url=db_url)
    assert result.returncode == 3
    assert C in result.stderr
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b", "c", "d"}
    result, doc = rollback_json(run_script, directory, db_url, "--to", to)
    assert result.returncode == 3
    assert doc["ok"] is False and doc["error"]["code"] == code
    assert history_rows(db_url) == before


@pytest.mark.parametrize(("damage", "code"), [(edit_file, "drift_detected"), (delete_file, "missing_file")],
                         ids=["drifted_file", "missing_file"])
def test_rollback_refuses_a_damaged_latest_migration(db_url, migrations_dir, run_script, damage, code):
    directory = applied_directory(migrations_dir, run_script, db_url,
                                  {f"{B}.sql": table_migration("b"), f"{C}.sql": table_migration("c")})
    damage(directory / f"{C}.sql")
    before = history_rows(db_url)
    result, doc = rollback_json(run_script, directory, db_url)
    assert result.returncode == 3
    assert doc["ok"] is False and doc["error"]["code"] == code and C in doc["error"]["message"]
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "b", "c"}


BAD_TO = [
    ("20990101_000000_no_such_file", "unknown_version"),
    ("not_a_version", "not_a_version"),
    (D, "pending_version"),
    (C, "rolled_back_version"),
]


@pytest.mark.parametrize("to", [t for t, _ in BAD_TO], ids=[i for _, i in BAD_TO])
def test_rollback_to_an_unknown_or_unapplied_version_exits_2_and_changes_nothing(
        db_url, migrations_dir, run_script, to):
    directory = applied_directory(migrations_dir, run_script, db_url, {
        f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b"), f"{C}.sql": table_migration("c")})
    assert run_script("rollback", "--migrations-dir", str(directory), db_url=db_url).returncode == 0  # C undone
    (directory / f"{D}.sql").write_text(table_migration("d"), encoding="utf-8")
    before = history_rows(db_url)
    result = run_script("rollback", "--migrations-dir", str(directory), "--to", to, db_url=db_url)
    assert result.returncode == 2
    assert to in result.stderr
    assert "Traceback" not in result.stderr
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b"}
    result, doc = rollback_json(run_script, directory, db_url, "--to", to)
    assert result.returncode == 2
    assert doc["ok"] is False and to in doc["error"]["message"]
    assert history_rows(db_url) == before


@pytest.mark.parametrize("to", ["20990101_000000_no_such_file", A], ids=["unknown_version", "pending_version"])
def test_rollback_to_on_a_fresh_database_exits_2_and_leaves_it_unchanged(db_url, migrations_dir, run_script, to):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    result = run_script("rollback", "--migrations-dir", str(directory), "--to", to, db_url=db_url)
    assert result.returncode == 2
    assert to in result.stderr
    assert tables(db_url) == set()  # database unchanged: not even schema_migrations


# ---- nothing to do ------------------------------------------------------------------------------------------

def test_rollback_with_nothing_applied_exits_0_and_does_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    result = run_script("rollback", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "Nothing to roll back" in result.stdout
    assert history(db_url) == []
    assert tables(db_url) == set()  # nothing done: not even schema_migrations


def test_rollback_after_everything_is_rolled_back_exits_0_and_does_nothing(db_url, migrations_dir, run_script):
    directory = applied_directory(migrations_dir, run_script, db_url, {f"{A}.sql": table_migration("a")})
    assert run_script("rollback", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    before = history_rows(db_url)
    result, doc = rollback_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["rolled_back"] == []
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations"}
