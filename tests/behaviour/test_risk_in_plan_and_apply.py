"""Risk analysis where it matters, as subprocesses on a real PostgreSQL (issue 5, README "Risk analysis"):
plan shows each pending migration's risk and findings, apply refuses above --max-risk unless the user allows it,
a silenced finding does not block, dry runs show the findings and write nothing, rollback is not gated.

Findings are judged against the live tables (issue 10): the users table these tests index holds 20,000 rows, above
the default --small-table-rows (10,000), so its index build stays high (tests/behaviour/test_risk_in_context.py
covers small tables and runs that create their tables).
"""
from __future__ import annotations

import json

from conftest import history, migration, query, tables

USERS = "20260101_000000_create_users"
INDEX = "20260102_000000_index_users_email"
RENAME = "20260103_000000_rename_users_email"
AUDIT = "20260104_000000_create_audit"
UNINDEX = "20260105_000000_drop_users_email_index"
SCORE = "20260106_000000_add_users_score"

CREATE_USERS = migration("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);", "DROP TABLE users;")
# Line 2 of the file holds the CREATE INDEX: line 1 is the '-- DIRECTION: up' header.
INDEX_USERS = migration("CREATE INDEX idx_users_email ON users (email);", "DROP INDEX idx_users_email;")
RENAME_EMAIL = migration("ALTER TABLE users RENAME COLUMN email TO mail;",
                         "ALTER TABLE users RENAME COLUMN mail TO email;")
REASON = "users holds a dozen rows"
SILENCED_INDEX = migration(f"-- risk: ignore adding_index_non_concurrently because {REASON}\n"
                           "CREATE INDEX idx_users_email ON users (email);", "DROP INDEX idx_users_email;")
# The safer way the finding's hint gives: no transaction, CONCURRENTLY, safe to re-run.
CONCURRENT_INDEX = ("-- TRANSACTION: none\n"
                    + migration("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_email ON users (email);",
                                "DROP INDEX CONCURRENTLY IF EXISTS idx_users_email;"))
# A constant default needs no rewrite from PostgreSQL 11 on; lint flags it only for older servers.
CONSTANT_DEFAULT = migration("ALTER TABLE users ADD COLUMN score integer NOT NULL DEFAULT 0;",
                             "ALTER TABLE users DROP COLUMN score;")
# Dropping an index is harmless; its down rebuilds it on a live table without CONCURRENTLY (high).
DROP_INDEX = migration("DROP INDEX idx_users_email;", "CREATE INDEX idx_users_email ON users (email);")
# A table and its index in one file: no rows and no traffic yet, so nothing to flag.
AUDIT_WITH_INDEX = migration("CREATE TABLE audit (id integer, at timestamptz NOT NULL);\n"
                             "CREATE INDEX idx_audit_at ON audit (at);", "DROP TABLE audit;")
FINDING_KEYS = {"rule", "severity", "line", "message", "hint", "direction", "ignored_reason", "table", "size",
                "lowered_from", "lock"}
USERS_ROWS = 20_000  # large for the risk rules: above the default --small-table-rows


def run_json(run_script, *args: str, db_url: str):
    """Run a script with --json; return (completed process, parsed document)."""
    result = run_script(*args, "--json", db_url=db_url)
    return result, json.loads(result.stdout)


def applied_users(run_script, migrations_dir, db_url, **later: str):
    """Apply the users table on its own, fill it with 20,000 rows (analysed), then add the later files; return the
    migrations directory."""
    directory = migrations_dir({f"{USERS}.sql": CREATE_USERS})
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    query(db_url, f"INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, {USERS_ROWS}) g")
    query(db_url, "ANALYZE users")
    for version, text in later.items():
        (directory / f"{version}.sql").write_text(text, encoding="utf-8")
    return directory


def index_exists(db_url: str, name: str) -> bool:
    return bool(query(db_url, "SELECT 1 FROM pg_indexes WHERE indexname = %s", (name,)))


def columns(db_url: str, table: str) -> list[str]:
    return [r[0] for r in query(db_url, "SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = %s ORDER BY ordinal_position", (table,))]


def snapshot_rows(db_url: str) -> int:
    if not query(db_url, "SELECT to_regclass('schema_migrations_snapshots') IS NOT NULL")[0][0]:
        return 0
    return query(db_url, "SELECT count(*) FROM schema_migrations_snapshots")[0][0]


def versions_in_history(db_url: str) -> set[str]:
    return {version for version, _, _ in history(db_url)}


# ---- plan -------------------------------------------------------------------------------------------------

def test_plan_json_gives_each_pending_migration_its_risk_rollback_risk_and_findings(db_url, migrations_dir,
                                                                                   run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS, RENAME: RENAME_EMAIL})

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout  # risky but only pending: plan itself is clean
    assert doc["ok"] is True
    index, rename = doc["pending"]
    assert (index["version"], index["risk"], index["rollback_risk"]) == (INDEX, "high", None)
    (finding,) = index["findings"]
    assert set(finding) == FINDING_KEYS
    assert {k: finding[k] for k in ("rule", "severity", "line", "direction", "ignored_reason")} == {
        "rule": "adding_index_non_concurrently", "severity": "high", "line": 2, "direction": "up",
        "ignored_reason": None}
    assert "users" in finding["message"] and "SHARE" in finding["message"]
    assert "CONCURRENTLY" in finding["hint"]
    assert (rename["version"], rename["risk"], rename["rollback_risk"]) == (RENAME, "medium", "medium")
    assert [(f["rule"], f["direction"], f["line"]) for f in rename["findings"]] == [
        ("renaming_column", "up", 2), ("renaming_column", "down", 5)]
    assert versions_in_history(db_url) == {USERS}  # plan wrote nothing
    assert not index_exists(db_url, "idx_users_email")


def test_plan_json_gives_a_pending_migration_without_findings_no_risk(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{AUDIT}.sql": migration("CREATE TABLE audit (id integer);")})

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    (pending,) = doc["pending"]
    assert (pending["risk"], pending["rollback_risk"], pending["findings"]) == (None, None, [])
    assert tables(db_url) == set()


def test_human_plan_shows_the_risk_and_each_finding_with_its_hint(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS})

    result = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    headline = next(line for line in lines if "pending" in line and INDEX in line)
    assert "risk HIGH" in headline
    finding = next(i for i, line in enumerate(lines) if "adding_index_non_concurrently" in line)
    assert lines[finding].split()[:2] == ["high", "up:2"]
    assert "SHARE lock" in lines[finding]
    assert lines[finding + 1].strip().startswith("hint: Use CREATE INDEX CONCURRENTLY")
    assert not index_exists(db_url, "idx_users_email")


# ---- apply: the gate ----------------------------------------------------------------------------------------

def test_apply_refuses_a_high_risk_migration_with_exit_3_and_applies_nothing(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS})
    snapshots = snapshot_rows(db_url)

    result, doc = run_json(run_script, "apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["ok"] is False and doc["applied"] == [] and doc["failed"] is None
    assert doc["error"]["code"] == "risk_too_high"
    assert f"{INDEX} line 2: adding_index_non_concurrently (high)" in doc["error"]["message"]
    assert "--allow-risk" in doc["error"]["hint"]
    assert versions_in_history(db_url) == {USERS}  # not even a failed row for it
    assert not index_exists(db_url, "idx_users_email")
    assert snapshot_rows(db_url) == snapshots


def test_apply_refusal_is_one_line_on_stderr_for_humans(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("error: Refused: 1 finding(s) above the allowed risk medium")
    assert "adding_index_non_concurrently" in result.stderr and "--allow-risk" in result.stderr
    assert "Traceback" not in result.stderr
    assert not index_exists(db_url, "idx_users_email")


def test_a_refused_run_does_not_apply_the_safe_migrations_before_the_risky_one(db_url, migrations_dir, run_script):
    # The safe one (a new table) comes first in the run; the risky one indexes the live 20,000-row users table.
    directory = applied_users(run_script, migrations_dir, db_url,
                              **{"20260101_500000_create_audit": migration("CREATE TABLE audit (id integer);"),
                                 INDEX: INDEX_USERS})

    result, doc = run_json(run_script, "apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["error"]["code"] == "risk_too_high" and doc["applied"] == []
    assert [(f["version"], f["table"]) for f in doc["error"]["findings"]] == [(INDEX, "users")]
    assert history(db_url) == [(USERS, "up", "success")]
    assert tables(db_url) == {"schema_migrations", "users"}


def test_allow_risk_applies_the_high_risk_migration(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS})

    result, doc = run_json(run_script, "apply", "--allow-risk", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["applied"] == [INDEX]
    assert history(db_url) == [(USERS, "up", "success"), (INDEX, "up", "success")]
    assert index_exists(db_url, "idx_users_email")


def test_max_risk_high_applies_the_high_risk_migration_too(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS})

    result, doc = run_json(run_script, "apply", "--max-risk", "high", "--migrations-dir", str(directory),
                           db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["applied"] == [INDEX]
    assert history(db_url)[-1] == (INDEX, "up", "success")
    assert index_exists(db_url, "idx_users_email")


def test_the_default_max_risk_medium_lets_a_rename_through(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{RENAME: RENAME_EMAIL})

    result, doc = run_json(run_script, "apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["applied"] == [RENAME]
    assert columns(db_url, "users") == ["id", "mail"]


def test_max_risk_low_refuses_a_medium_risk_rename(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{RENAME: RENAME_EMAIL})

    result, doc = run_json(run_script, "apply", "--max-risk", "low", "--migrations-dir", str(directory),
                           db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["error"]["code"] == "risk_too_high"
    assert "allowed risk low" in doc["error"]["message"]
    assert f"{RENAME} line 2: renaming_column (medium)" in doc["error"]["message"]
    assert versions_in_history(db_url) == {USERS}
    assert columns(db_url, "users") == ["id", "email"]


def test_a_silenced_finding_does_not_block_apply_and_plan_shows_its_reason(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: SILENCED_INDEX})

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    human = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0 and human.returncode == 0, result.stdout
    (pending,) = doc["pending"]
    assert pending["risk"] is None  # a silenced finding does not count
    (finding,) = pending["findings"]
    assert (finding["rule"], finding["severity"], finding["line"], finding["ignored_reason"]) == (
        "adding_index_non_concurrently", "high", 3, REASON)
    assert f"ignored  up:3     adding_index_non_concurrently (because {REASON})" in human.stdout
    assert "risk HIGH" not in human.stdout

    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert applied.returncode == 0, applied.stderr
    assert history(db_url)[-1] == (INDEX, "up", "success")
    assert index_exists(db_url, "idx_users_email")


def test_a_table_indexed_in_the_file_that_creates_it_is_not_flagged(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{AUDIT: AUDIT_WITH_INDEX})

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    (pending,) = doc["pending"]
    assert pending["risk"] is None
    assert [f for f in pending["findings"] if f["direction"] == "up"] == []

    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert applied.returncode == 0, applied.stderr
    assert history(db_url)[-1] == (AUDIT, "up", "success")
    assert index_exists(db_url, "idx_audit_at")


def test_the_safer_way_the_hint_gives_passes_the_gate(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: CONCURRENT_INDEX})

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    (pending,) = doc["pending"]
    assert (pending["risk"], pending["rollback_risk"], pending["findings"]) == (None, None, [])
    assert applied.returncode == 0, applied.stderr
    assert history(db_url)[-1] == (INDEX, "up", "success")
    assert query(db_url, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "WHERE c.relname = 'idx_users_email'") == [(True,)]


def test_plan_and_apply_judge_a_constant_default_for_the_connected_server(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{SCORE: CONSTANT_DEFAULT})
    assert int(query(db_url, "SHOW server_version_num")[0][0]) >= 110000
    old_server = run_script("lint", "--pg-version", "10", "--json", "--migrations-dir", str(directory))
    assert [m["risk"] for m in json.loads(old_server.stdout)["migrations"]] == [None, "high"]

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    (pending,) = doc["pending"]
    assert [f for f in pending["findings"] if f["direction"] == "up"] == []
    assert applied.returncode == 0, applied.stderr
    assert columns(db_url, "users") == ["id", "email", "score"]


# ---- dry runs and rollback -----------------------------------------------------------------------------------

def test_apply_dry_run_shows_the_findings_of_each_step_and_writes_nothing(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS, RENAME: RENAME_EMAIL})
    snapshots = snapshot_rows(db_url)

    result, doc = run_json(run_script, "apply", "--dry-run", "--migrations-dir", str(directory), db_url=db_url)
    human = run_script("apply", "--dry-run", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0 and human.returncode == 0, result.stdout
    assert doc["dry_run"] is True and doc["applied"] == []
    index, rename = doc["steps"]
    assert (index["version"], index["risk"]) == (INDEX, "high")
    (finding,) = index["findings"]
    assert set(finding) == FINDING_KEYS
    assert (finding["rule"], finding["line"], finding["direction"]) == ("adding_index_non_concurrently", 2, "up")
    assert (rename["version"], rename["risk"]) == (RENAME, "medium")
    assert [(f["rule"], f["direction"]) for f in rename["findings"]] == [("renaming_column", "up")]
    assert "-- risk high     up:2     adding_index_non_concurrently: " in human.stdout
    assert "-- risk medium   up:2     renaming_column: " in human.stdout
    assert versions_in_history(db_url) == {USERS}
    assert not index_exists(db_url, "idx_users_email")
    assert columns(db_url, "users") == ["id", "email"]
    assert snapshot_rows(db_url) == snapshots


def test_rollback_is_not_gated_by_the_risk_of_its_down(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url)

    # The down drops the table its up created (rollback_drops_data, medium); even --max-risk low does not stop it.
    result, doc = run_json(run_script, "rollback", "--max-risk", "low", "--migrations-dir", str(directory),
                           db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["rolled_back"] == [USERS]
    assert history(db_url) == [(USERS, "up", "success"), (USERS, "down", "success")]
    assert tables(db_url) == {"schema_migrations"}


def test_rollback_runs_a_high_risk_down_without_allow_risk(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url, **{INDEX: INDEX_USERS})
    assert run_script("apply", "--allow-risk", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{UNINDEX}.sql").write_text(DROP_INDEX, encoding="utf-8")
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    assert not index_exists(db_url, "idx_users_email")

    # Its down rebuilds the index without CONCURRENTLY on a live table: high, yet rollback is not refused.
    result, doc = run_json(run_script, "rollback", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["rolled_back"] == [UNINDEX]
    assert history(db_url)[-1] == (UNINDEX, "down", "success")
    assert index_exists(db_url, "idx_users_email")


def test_rollback_dry_run_shows_the_findings_of_the_down_section(db_url, migrations_dir, run_script):
    directory = applied_users(run_script, migrations_dir, db_url)

    result, doc = run_json(run_script, "rollback", "--dry-run", "--migrations-dir", str(directory), db_url=db_url)
    human = run_script("rollback", "--dry-run", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0 and human.returncode == 0, result.stdout
    assert doc["dry_run"] is True and doc["rolled_back"] == []
    (step,) = doc["steps"]
    assert (step["version"], step["direction"], step["rollback_risk"]) == (USERS, "down", "medium")
    (finding,) = step["findings"]
    assert set(finding) == FINDING_KEYS
    # DROP TABLE users sits on line 5, below the blank line and '-- DIRECTION: down'.
    assert (finding["rule"], finding["severity"], finding["direction"], finding["line"]) == (
        "rollback_drops_data", "medium", "down", 5)
    assert "users" in finding["message"]
    assert "-- risk medium   down:5   rollback_drops_data: " in human.stdout
    assert history(db_url) == [(USERS, "up", "success")]
    assert tables(db_url) == {"schema_migrations", "users"}
