"""plan_migrations.py: strictly read-only; reports applied, pending, drift, missing, out-of-order and failed."""
import json

from conftest import history, migration, query, tables

A = "20260101_000000_create_a"
B = "20260102_000000_create_b"
C = "20260103_000000_create_c"


def table_migration(table: str, reversible: bool = True) -> str:
    """Return a migration that creates one table (and drops it on the way down when reversible)."""
    return migration(f"CREATE TABLE {table} (id int);", f"DROP TABLE {table};" if reversible else None)


def history_table_exists(url: str) -> bool:
    return bool(query(url, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0])


def versions(items: list[dict]) -> list[str]:
    return [item["version"] for item in items]


def plan_json(run_script, directory, db_url):
    """Run plan --json and return (completed process, parsed document)."""
    result = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)
    return result, json.loads(result.stdout)


def apply_all(run_script, directory, db_url) -> None:
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr


# ---- read-only ----------------------------------------------------------------------------------------------

def test_plan_creates_nothing_on_a_fresh_database(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    result = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "0 applied, 1 pending" in result.stdout
    assert A in result.stdout
    assert not history_table_exists(db_url)
    assert tables(db_url) == set()


def test_plan_treats_a_missing_history_table_as_nothing_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert doc["ok"] is True and doc["command"] == "plan" and doc["schema_version"] == 1
    assert doc["applied"] == []
    assert versions(doc["pending"]) == [A, B]
    assert doc["drift"] == doc["missing"] == doc["out_of_order"] == doc["failed"] == []
    assert not history_table_exists(db_url)
    assert tables(db_url) == set()


def test_plan_writes_no_history_rows_when_the_table_exists(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    apply_all(run_script, directory, db_url)
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    before = query(db_url, "SELECT * FROM schema_migrations ORDER BY id")
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert versions(doc["pending"]) == [B]
    assert query(db_url, "SELECT * FROM schema_migrations ORDER BY id") == before
    assert tables(db_url) == {"schema_migrations", "a"}


# ---- applied and pending ------------------------------------------------------------------------------------

def test_plan_lists_pending_migrations_in_version_order_with_reversibility(db_url, migrations_dir, run_script):
    # Written out of order on purpose: the order must come from the version, not the directory listing.
    directory = migrations_dir({f"{C}.sql": table_migration("c"), f"{A}.sql": table_migration("a"),
                                f"{B}.sql": table_migration("b", reversible=False)})
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert [(p["version"], p["name"], p["reversible"]) for p in doc["pending"]] == [
        (A, "create_a", True), (B, "create_b", False), (C, "create_c", True)]
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert human.returncode == 0, human.stderr
    lines = [line for line in human.stdout.splitlines() if line.strip().startswith("pending")]
    assert [line.split()[1] for line in lines] == [A, B, C]
    assert "IRREVERSIBLE" in lines[1] and "IRREVERSIBLE" not in lines[0] + lines[2]
    assert tables(db_url) == set()


def test_plan_reports_applied_migrations_and_exits_0_when_clean(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    apply_all(run_script, directory, db_url)
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert doc["ok"] is True
    assert [(a["version"], a["name"]) for a in doc["applied"]] == [(A, "create_a"), (B, "create_b")]
    assert doc["pending"] == [] and doc["drift"] == [] and doc["missing"] == []
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert human.returncode == 0
    assert "2 applied, 0 pending" in human.stdout
    assert "Up to date" in human.stdout
    assert history(db_url) == [(A, "up", "success"), (B, "up", "success")]


def test_plan_reports_applied_and_pending_together_and_exits_0(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a")})
    apply_all(run_script, directory, db_url)
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert versions(doc["applied"]) == [A]
    assert versions(doc["pending"]) == [B]
    assert doc["out_of_order"] == []
    assert history(db_url) == [(A, "up", "success")]


def test_plan_uses_the_migration_header_name(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;", name="Make A")})
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert [(p["version"], p["name"]) for p in doc["pending"]] == [(A, "Make A")]
    assert tables(db_url) == set()


# ---- drift, missing, CRLF -----------------------------------------------------------------------------------

def test_plan_reports_drift_of_an_edited_applied_file_and_exits_3(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    apply_all(run_script, directory, db_url)
    (directory / f"{A}.sql").write_text(migration("CREATE TABLE a (id bigint);", "DROP TABLE a;"), encoding="utf-8")
    before = query(db_url, "SELECT * FROM schema_migrations ORDER BY id")
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 3
    assert doc["ok"] is False
    assert doc["error"]["code"] == "drift_detected"
    assert [(d["version"], d["name"]) for d in doc["drift"]] == [(A, "create_a")]
    assert doc["missing"] == []
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert human.returncode == 3
    assert "DRIFT" in human.stdout and A in human.stdout
    assert query(db_url, "SELECT * FROM schema_migrations ORDER BY id") == before


def test_plan_reports_a_deleted_applied_file_as_missing_and_exits_3(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{B}.sql": table_migration("b")})
    apply_all(run_script, directory, db_url)
    (directory / f"{B}.sql").unlink()
    before = query(db_url, "SELECT * FROM schema_migrations ORDER BY id")
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 3
    assert doc["ok"] is False
    assert doc["error"]["code"] == "missing_file"
    assert [(m["version"], m["name"]) for m in doc["missing"]] == [(B, "create_b")]
    assert doc["drift"] == []
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert human.returncode == 3
    assert "MISSING" in human.stdout and B in human.stdout
    assert query(db_url, "SELECT * FROM schema_migrations ORDER BY id") == before
    assert tables(db_url) == {"schema_migrations", "a", "b"}


def test_plan_does_not_report_a_crlf_copy_of_an_applied_file_as_drift(db_url, migrations_dir, run_script):
    text = migration("CREATE TABLE a (\n    id int\n);", "DROP TABLE a;", name="create_a")
    directory = migrations_dir({f"{A}.sql": text})
    apply_all(run_script, directory, db_url)
    (directory / f"{A}.sql").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True
    assert doc["drift"] == []
    assert versions(doc["applied"]) == [A]
    assert history(db_url) == [(A, "up", "success")]


# ---- out of order and failed --------------------------------------------------------------------------------

def test_plan_reports_a_pending_version_older_than_the_newest_applied_as_out_of_order(
        db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"), f"{C}.sql": table_migration("c")})
    apply_all(run_script, directory, db_url)
    (directory / f"{B}.sql").write_text(table_migration("b"), encoding="utf-8")
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stderr
    assert versions(doc["pending"]) == [B]
    assert [(o["version"], o["name"]) for o in doc["out_of_order"]] == [(B, "create_b")]
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert human.returncode == 0
    assert "OUT OF ORDER" in next(line for line in human.stdout.splitlines() if B in line)
    assert history(db_url) == [(A, "up", "success"), (C, "up", "success")]


def test_plan_reports_the_latest_failed_attempt_of_a_never_applied_version(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": table_migration("a"),
                                f"{B}.sql": migration("SELECT * FROM first_missing_table;", "SELECT 1;")})
    first = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert first.returncode == 1
    (directory / f"{B}.sql").write_text(migration("SELECT * FROM second_missing_table;", "SELECT 1;"),
                                        encoding="utf-8")
    second = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert second.returncode == 1
    assert history(db_url) == [(A, "up", "success"), (B, "up", "failed"), (B, "up", "failed")]

    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stdout
    assert versions(doc["failed"]) == [B]
    assert doc["failed"][0]["name"] == "create_b"
    assert "second_missing_table" in doc["failed"][0]["error_message"]
    assert versions(doc["pending"]) == [B]
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert human.returncode == 0
    failed_lines = [line for line in human.stdout.splitlines() if "FAILED" in line]
    assert len(failed_lines) == 1 and B in failed_lines[0] and "second_missing_table" in failed_lines[0]
    assert len(history(db_url)) == 3


def test_plan_stops_reporting_a_failed_attempt_once_the_version_is_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": migration("SELECT * FROM missing_table;", "SELECT 1;")})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 1
    (directory / f"{A}.sql").write_text(table_migration("a"), encoding="utf-8")
    apply_all(run_script, directory, db_url)
    result, doc = plan_json(run_script, directory, db_url)
    assert result.returncode == 0, result.stdout
    assert doc["failed"] == []
    assert versions(doc["applied"]) == [A]
    assert history(db_url) == [(A, "up", "failed"), (A, "up", "success")]
