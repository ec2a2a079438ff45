"""apply_migrations.py: the seed demo, dry runs, --target, refusals on drift and missing files, history rows."""
import hashlib
import json
import shutil

import pytest
from conftest import ROOT, history, migration, query, tables

A = "20260101_000000_create_a"
B = "20260102_000000_create_b"
C = "20260103_000000_create_c"
USERS = "20260208_120000_create_users_table"
USERS_INDEX = "20260208_121500_add_index_on_users_email"


def table_migration(table: str) -> str:
    return migration(f"CREATE TABLE {table} (id int);", f"DROP TABLE {table};")


def three_tables(migrations_dir):
    return migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b"),
                           f"{C}.sql": table_migration("c")})


def history_rows(url: str) -> list[tuple]:
    """Return every schema_migrations row, all columns, or [] without the table."""
    if not query(url, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]:
        return []
    return query(url, "SELECT * FROM schema_migrations ORDER BY id")


def index_names(url: str) -> set[str]:
    return {r[0] for r in query(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def apply_json(run_script, directory, db_url, *args):
    result = run_script("apply", "--migrations-dir", str(directory), "--json", *args, db_url=db_url)
    return result, json.loads(result.stdout)


# ---- the seed demo ------------------------------------------------------------------------------------------

def test_apply_runs_the_shipped_seed_migrations(db_url, tmp_path, run_script):
    directory = tmp_path / "seed"
    shutil.copytree(ROOT / "migrations", directory)
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    applied_lines = [line for line in result.stdout.splitlines() if "applied" in line and "ms)" in line]
    assert [line.split()[-3] for line in applied_lines] == [USERS, USERS_INDEX]
    assert "Applied 2 migrations in " in result.stdout
    assert tables(db_url) == {"schema_migrations", "users"}
    assert "idx_users_email" in index_names(db_url)
    assert [r[0] for r in query(db_url, "SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'users' ORDER BY ordinal_position")] == [
        "id", "email", "created_at"]
    assert history(db_url) == [(USERS, "up", "success"), (USERS_INDEX, "up", "success")]

    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert plan.returncode == 0, plan.stdout
    doc = json.loads(plan.stdout)
    assert [a["version"] for a in doc["applied"]] == [USERS, USERS_INDEX]
    assert doc["pending"] == []


def test_apply_reports_applied_versions_in_json(db_url, migrations_dir, run_script):
    directory = three_tables(migrations_dir)
    result, doc = apply_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert doc["schema_version"] == 1 and doc["command"] == "apply" and doc["ok"] is True
    assert doc["applied"] == [A, B, C]
    assert doc["failed"] is None
    assert doc["dry_run"] is False
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}


# ---- dry run ------------------------------------------------------------------------------------------------

def test_apply_dry_run_prints_the_exact_sql_in_order_and_writes_nothing(db_url, migrations_dir, run_script):
    up_b = "CREATE TABLE b (\n    id int,\n    note text DEFAULT '50%'\n);\nINSERT INTO b (id) VALUES (1);"
    directory = migrations_dir({f"{B}.sql": migration(up_b, "DROP TABLE b;"),
                                f"{A}.sql": table_migration("a"),
                                f"{C}.sql": table_migration("c")})
    result = run_script("apply", "--migrations-dir", str(directory), "--dry-run", db_url=db_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    sqls = ["CREATE TABLE a (id int);", up_b, "CREATE TABLE c (id int);"]
    positions = [out.index(sql) for sql in sqls]
    assert positions == sorted(positions)
    assert [out.index(v) for v in (A, B, C)] == sorted(out.index(v) for v in (A, B, C))
    assert "DROP TABLE" not in out
    assert tables(db_url) == set()  # not even schema_migrations
    assert history_rows(db_url) == []


def test_apply_dry_run_in_json_applies_nothing(db_url, migrations_dir, run_script):
    directory = three_tables(migrations_dir)
    result, doc = apply_json(run_script, directory, db_url, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert doc["ok"] is True
    assert doc["dry_run"] is True
    assert doc["applied"] == []
    assert doc["failed"] is None
    assert tables(db_url) == set()


def test_apply_dry_run_shows_only_pending_migrations_and_changes_nothing(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    before = history_rows(db_url)
    result = run_script("apply", "--migrations-dir", str(directory), "--dry-run", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE b (id int);" in result.stdout
    assert "CREATE TABLE a (id int);" not in result.stdout
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a"}


# ---- --target -----------------------------------------------------------------------------------------------

def test_apply_target_applies_up_to_and_including_the_target(db_url, migrations_dir, run_script):
    directory = three_tables(migrations_dir)
    result, doc = apply_json(run_script, directory, db_url, "--target", B)
    assert result.returncode == 0, result.stderr
    assert doc["applied"] == [A, B]
    assert tables(db_url) == {"schema_migrations", "a", "b"}
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]

    rest = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert rest.returncode == 0, rest.stderr
    assert C in rest.stdout and "Applied 1 migration in " in rest.stdout
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}


def test_apply_target_that_is_already_applied_applies_nothing(db_url, migrations_dir, run_script):
    directory = three_tables(migrations_dir)
    assert run_script("apply", "--migrations-dir", str(directory), "--target", B, db_url=db_url).returncode == 0
    result, doc = apply_json(run_script, directory, db_url, "--target", A)
    assert result.returncode == 0, result.stderr
    assert doc["applied"] == []
    assert tables(db_url) == {"schema_migrations", "a", "b"}


BAD_TARGETS = [
    ("20990101_000000_no_such_file", "no_such_file"),
    ("not_a_version", "not_a_version"),
    (A[:-1], "prefix_of_a_real_version"),
]


@pytest.mark.parametrize("target", [t for t, _ in BAD_TARGETS], ids=[i for _, i in BAD_TARGETS])
def test_apply_unknown_target_exits_2_and_leaves_a_fresh_database_unchanged(
        db_url, migrations_dir, run_script, target):
    directory = three_tables(migrations_dir)
    result = run_script("apply", "--migrations-dir", str(directory), "--target", target, db_url=db_url)
    assert result.returncode == 2
    assert target in result.stderr
    assert "Traceback" not in result.stderr
    assert tables(db_url) == set()  # database unchanged: not even schema_migrations


@pytest.mark.parametrize("target", [t for t, _ in BAD_TARGETS], ids=[i for _, i in BAD_TARGETS])
def test_apply_unknown_target_exits_2_and_applies_nothing(db_url, migrations_dir, run_script, target):
    directory = three_tables(migrations_dir)
    assert run_script("apply", "--migrations-dir", str(directory), "--target", A, db_url=db_url).returncode == 0
    before = history_rows(db_url)
    result, doc = apply_json(run_script, directory, db_url, "--target", target)
    assert result.returncode == 2
    assert doc["ok"] is False
    assert target in doc["error"]["message"]
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a"}


# ---- refusals -----------------------------------------------------------------------------------------------

def test_apply_refuses_while_an_applied_file_has_drifted(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{A}.sql").write_text(migration("CREATE TABLE a (id bigint);", "DROP TABLE a;"), encoding="utf-8")
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    before = history_rows(db_url)

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 3
    assert A in result.stderr and "changed" in result.stderr
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a"}

    result, doc = apply_json(run_script, directory, db_url)
    assert result.returncode == 3
    assert doc["ok"] is False and doc["error"]["code"] == "drift_detected"
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a"}


def test_apply_refuses_while_an_applied_file_is_missing(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{A}.sql").unlink()
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    before = history_rows(db_url)

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 3
    assert A in result.stderr and "missing" in result.stderr
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a"}

    result, doc = apply_json(run_script, directory, db_url)
    assert result.returncode == 3
    assert doc["ok"] is False and doc["error"]["code"] == "missing_file"
    assert history_rows(db_url) == before


def test_apply_does_not_treat_a_crlf_copy_of_an_applied_file_as_drift(db_url, migrations_dir, run_script):
    text = table_migration("a")
    directory = migrations_dir({f"{A}.sql": text})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{A}.sql").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    result, doc = apply_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stdout
    assert doc["applied"] == [B]
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]


# ---- idempotence and history rows ---------------------------------------------------------------------------

def test_apply_twice_applies_nothing_the_second_time(db_url, migrations_dir, run_script):
    directory = three_tables(migrations_dir)
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    before = history_rows(db_url)
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "Nothing to apply" in result.stdout
    result, doc = apply_json(run_script, directory, db_url)
    assert result.returncode == 0
    assert doc["applied"] == []
    assert history_rows(db_url) == before
    assert tables(db_url) == {"schema_migrations", "a", "b", "c"}


def test_apply_writes_a_complete_success_row(db_url, migrations_dir, run_script):
    text_a = migration("CREATE TABLE a (id int);", "DROP TABLE a;", name="Create table a")
    directory = migrations_dir({f"{A}.sql": text_a, f"{B}.sql": table_migration("b")})
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    rows = query(db_url, "SELECT version, name, checksum, direction, status, error_message, applied_at IS NOT NULL "
                         "FROM schema_migrations ORDER BY id")
    assert rows == [
        (A, "Create table a", hashlib.sha256(text_a.encode()).hexdigest(), "up", "success", None, True),
        (B, "create_b", hashlib.sha256(table_migration("b").encode()).hexdigest(), "up", "success", None, True),
    ]


def test_apply_creates_the_designs_history_table(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    columns = query(db_url, "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                            "WHERE table_name = 'schema_migrations' ORDER BY ordinal_position")
    assert columns == [
        ("id", "integer", "NO"), ("version", "character varying", "NO"), ("name", "text", "NO"),
        ("checksum", "text", "NO"), ("applied_at", "timestamp with time zone", "NO"),
        ("direction", "character varying", "NO"), ("status", "character varying", "NO"),
        ("error_message", "text", "YES")]
    indexdef = query(db_url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_schema_migrations_version_dir'")
    assert len(indexdef) == 1
    assert "UNIQUE" in indexdef[0][0] and "(version, direction)" in indexdef[0][0]
    assert "status" in indexdef[0][0] and "'success'" in indexdef[0][0]
