"""Live-schema drift through the scripts, on a real PostgreSQL (issue 4, README "Live-schema drift and proven
rollbacks"): a change made out of band with a separate connection makes plan exit 3 with readable descriptions,
apply and rollback refuse it unless allowed, --schema-diff lists differences (also against a second database,
never printing its password), and snapshots are recorded once per run that changed something, never by plan.
"""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import database_url, history, migration, query, tables

BASE = "20260101_000000_create_users"
NOTES = "20260102_000000_create_notes"
LATER = "20260103_000000_create_tags"

BASE_SQL = migration(
    "CREATE TYPE mood AS ENUM ('happy', 'ok');\n"
    "CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, mood mood);\n"
    "CREATE INDEX idx_users_email ON users (email);\n"
    "CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM users';",
    "DROP FUNCTION user_count();\nDROP TABLE users;\nDROP TYPE mood;")
NOTES_SQL = migration("CREATE TABLE notes (id integer, body text);", "DROP TABLE notes;")
LATER_SQL = migration("CREATE TABLE tags (id integer);", "DROP TABLE tags;")
CHANGE_KEYS = {"kind", "object_type", "name", "detail", "parent", "description"}

# (id, out-of-band SQL, the description plan gives)
OUT_OF_BAND = [
    ("column added", "ALTER TABLE users ADD COLUMN status text",
     "table users: column status added (text, nullable)"),
    ("index dropped", "DROP INDEX idx_users_email", "index idx_users_email removed"),
    ("function body changed",
     "CREATE OR REPLACE FUNCTION user_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) + 0 FROM users'",
     "function user_count(): body changed"),
    ("enum value added", "ALTER TYPE mood ADD VALUE 'sad'", "type mood: value 'sad' added (after 'ok')"),
]
HOTFIX = "ALTER TABLE users ADD COLUMN status text"
HOTFIX_DESCRIPTION = "table users: column status added (text, nullable)"


def run_json(run_script, *args: str, db_url: str):
    """Run a script with --json; return (completed process, parsed document)."""
    result = run_script(*args, "--json", db_url=db_url)
    return result, json.loads(result.stdout)


def applied(run_script, migrations_dir, db_url, files: dict[str, str] | None = None, name: str = "migrations"):
    """Write the files (default: BASE), apply them all, and return the directory."""
    directory = migrations_dir({f"{v}.sql": text for v, text in (files or {BASE: BASE_SQL}).items()}, name=name)
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    return directory


def add_file(directory, version: str, text: str) -> None:
    (directory / f"{version}.sql").write_text(text, encoding="utf-8")


def out_of_band(db_url: str, sql: str) -> None:
    """Change the schema by hand, on a connection of its own (as a person with psql would)."""
    query(db_url, sql)


def snapshot_table_exists(db_url: str) -> bool:
    return bool(query(db_url, "SELECT to_regclass('schema_migrations_snapshots') IS NOT NULL")[0][0])


def snapshots(db_url: str) -> list[tuple[list[str], str]]:
    """Return (applied_versions, schema_hash) of every recorded snapshot, oldest first."""
    if not snapshot_table_exists(db_url):
        return []
    return [(list(v), h) for v, h in query(
        db_url, "SELECT applied_versions, schema_hash FROM schema_migrations_snapshots ORDER BY id")]


def users_columns(db_url: str) -> list[str]:
    return [r[0] for r in query(db_url, "SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'users' ORDER BY ordinal_position")]


# ---- plan ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, description", [c[1:] for c in OUT_OF_BAND], ids=[c[0] for c in OUT_OF_BAND])
def test_plan_exits_3_and_describes_an_out_of_band_change(db_url, migrations_dir, run_script, change, description):
    directory = applied(run_script, migrations_dir, db_url)
    recorded = snapshots(db_url)
    out_of_band(db_url, change)

    result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["ok"] is False and doc["error"]["code"] == "schema_drift"
    assert doc["schema_check"] == "drift"
    (drift,) = doc["schema_drift"]
    assert set(drift) == CHANGE_KEYS
    assert drift["description"] == description
    assert doc["drift"] == [] and doc["missing"] == []  # the files are fine: it is the database that moved
    assert [a["version"] for a in doc["applied"]] == [BASE]
    assert snapshots(db_url) == recorded  # plan recorded nothing


def test_a_drift_entry_names_kind_object_parent_and_detail(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    out_of_band(db_url, HOTFIX)

    _, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)

    assert doc["schema_drift"] == [{"kind": "added", "object_type": "column", "name": "status",
                                    "detail": "text, nullable", "parent": "table users",
                                    "description": HOTFIX_DESCRIPTION}]


def test_human_plan_shows_a_schema_line_per_change_and_exits_3(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    out_of_band(db_url, HOTFIX)
    out_of_band(db_url, "DROP INDEX idx_users_email")

    result = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3
    schema_lines = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("SCHEMA")]
    assert schema_lines == [f"SCHEMA   {HOTFIX_DESCRIPTION}", "SCHEMA   index idx_users_email removed"]
    assert "--allow-schema-drift" in result.stdout
    assert result.stderr.startswith("error: The live schema changed outside the migrations: 2 difference(s)")
    assert "Traceback" not in result.stderr


def test_plan_keeps_reporting_drift_because_it_never_records_a_snapshot(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    recorded = snapshots(db_url)
    out_of_band(db_url, HOTFIX)

    first = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    second, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)

    assert (first.returncode, second.returncode) == (3, 3)
    assert [d["description"] for d in doc["schema_drift"]] == [HOTFIX_DESCRIPTION]
    assert snapshots(db_url) == recorded
    assert history(db_url) == [(BASE, "up", "success")]


def test_plan_no_schema_check_skips_the_comparison_and_exits_0(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    out_of_band(db_url, HOTFIX)

    result, doc = run_json(run_script, "plan", "--no-schema-check", "--migrations-dir", str(directory),
                           db_url=db_url)
    human = run_script("plan", "--no-schema-check", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0 and human.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["schema_check"] == "skipped" and doc["schema_drift"] == []
    assert "SCHEMA" not in human.stdout
    assert users_columns(db_url) == ["id", "email", "mood", "status"]


# ---- apply and rollback refuse ------------------------------------------------------------------------------

def test_apply_refuses_on_schema_drift_with_exit_3_and_changes_nothing(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    add_file(directory, NOTES, NOTES_SQL)
    out_of_band(db_url, HOTFIX)
    recorded = snapshots(db_url)

    result, doc = run_json(run_script, "apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["ok"] is False and doc["applied"] == []
    assert doc["error"]["code"] == "schema_drift"
    assert HOTFIX_DESCRIPTION in doc["error"]["message"]
    assert "migration" in doc["error"]["hint"] and "--allow-schema-drift" in doc["error"]["hint"]
    assert history(db_url) == [(BASE, "up", "success")]
    assert "notes" not in tables(db_url)
    assert snapshots(db_url) == recorded


def test_apply_refusal_on_schema_drift_is_one_line_on_stderr_for_humans(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    add_file(directory, NOTES, NOTES_SQL)
    out_of_band(db_url, HOTFIX)

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("error: The live schema changed outside the migrations since the last run: "
                                    f"{HOTFIX_DESCRIPTION}.")
    assert "Hint: Capture the change in a migration" in result.stderr
    assert "notes" not in tables(db_url)


def test_rollback_refuses_on_schema_drift_with_exit_3_and_changes_nothing(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url, {BASE: BASE_SQL, NOTES: NOTES_SQL})
    out_of_band(db_url, HOTFIX)
    recorded = snapshots(db_url)

    result, doc = run_json(run_script, "rollback", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["ok"] is False and doc["rolled_back"] == []
    assert doc["error"]["code"] == "schema_drift"
    assert HOTFIX_DESCRIPTION in doc["error"]["message"]
    assert history(db_url) == [(BASE, "up", "success"), (NOTES, "up", "success")]
    assert "notes" in tables(db_url)
    assert snapshots(db_url) == recorded


def test_dry_runs_refuse_on_schema_drift_too(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    add_file(directory, NOTES, NOTES_SQL)
    out_of_band(db_url, HOTFIX)

    apply, apply_doc = run_json(run_script, "apply", "--dry-run", "--migrations-dir", str(directory), db_url=db_url)
    rollback, rollback_doc = run_json(run_script, "rollback", "--dry-run", "--migrations-dir", str(directory),
                                      db_url=db_url)

    assert (apply.returncode, rollback.returncode) == (3, 3)
    assert apply_doc["error"]["code"] == rollback_doc["error"]["code"] == "schema_drift"
    assert history(db_url) == [(BASE, "up", "success")]
    assert users_columns(db_url) == ["id", "email", "mood", "status"]


def test_apply_allow_schema_drift_runs_and_the_next_plan_is_clean(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    add_file(directory, NOTES, NOTES_SQL)
    out_of_band(db_url, HOTFIX)

    result, doc = run_json(run_script, "apply", "--allow-schema-drift", "--migrations-dir", str(directory),
                           db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["applied"] == [NOTES]
    assert history(db_url) == [(BASE, "up", "success"), (NOTES, "up", "success")]
    assert "notes" in tables(db_url) and "status" in users_columns(db_url)  # the hotfix stays
    after, plan = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    assert after.returncode == 0, after.stdout
    assert plan["schema_check"] == "clean" and plan["schema_drift"] == []


def test_rollback_allow_schema_drift_runs_and_the_next_plan_is_clean(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url, {BASE: BASE_SQL, NOTES: NOTES_SQL})
    out_of_band(db_url, HOTFIX)

    result, doc = run_json(run_script, "rollback", "--allow-schema-drift", "--migrations-dir", str(directory),
                           db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["rolled_back"] == [NOTES]
    assert history(db_url)[-1] == (NOTES, "down", "success")
    assert "notes" not in tables(db_url) and "status" in users_columns(db_url)
    after, plan = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    assert after.returncode == 0, after.stdout
    assert plan["schema_check"] == "clean" and plan["schema_drift"] == []


def test_capturing_the_change_in_a_migration_and_baselining_it_makes_plan_clean(db_url, migrations_dir,
                                                                              run_script):
    directory = applied(run_script, migrations_dir, db_url)
    out_of_band(db_url, HOTFIX)
    captured = "20260102_000000_add_users_status"  # the refusal's hint: the same SQL in a migration, then baseline
    add_file(directory, captured, migration(f"{HOTFIX};", "ALTER TABLE users DROP COLUMN status;"))

    result = run_script("apply", "--baseline", captured, "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert history(db_url) == [(BASE, "up", "success"), (captured, "up", "success")]
    assert [v for v, _ in snapshots(db_url)] == [[BASE], [BASE, captured]]
    after, plan = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    assert after.returncode == 0, after.stdout
    assert plan["schema_check"] == "clean" and plan["pending"] == []
    assert users_columns(db_url) == ["id", "email", "mood", "status"]


# ---- no false drift ------------------------------------------------------------------------------------------

def test_no_false_drift_after_apply_rollback_apply_cycles(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url, {BASE: BASE_SQL, NOTES: NOTES_SQL, LATER: LATER_SQL})
    cycle = [("rollback",), ("apply",), ("rollback", "--to", BASE), ("apply",), ("rollback", "--to", BASE),
             ("rollback",), ("apply",)]
    statuses = []

    for args in [()] + cycle:
        if args:
            run = run_script(*args, "--migrations-dir", str(directory), db_url=db_url)
            assert run.returncode == 0, (args, run.stderr)
        result, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
        assert result.returncode == 0, (args, result.stdout)
        statuses.append((doc["schema_check"], doc["schema_drift"]))

    assert statuses == [("clean", [])] * (len(cycle) + 1)
    assert history(db_url)[-3:] == [(BASE, "up", "success"), (NOTES, "up", "success"), (LATER, "up", "success")]
    assert tables(db_url) == {"schema_migrations", "users", "notes", "tags"}


# ---- plan --schema-diff --------------------------------------------------------------------------------------

def test_schema_diff_lists_every_difference_and_exits_3(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)
    out_of_band(db_url, HOTFIX)
    out_of_band(db_url, "ALTER TYPE mood ADD VALUE 'sad'")

    result, doc = run_json(run_script, "plan", "--schema-diff", "--migrations-dir", str(directory), db_url=db_url)
    human = run_script("plan", "--schema-diff", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3 and human.returncode == 3, result.stdout
    assert doc["ok"] is False and doc["error"]["code"] == "schema_drift"
    assert doc["status"] == "drift" and doc["reference"] == "last recorded snapshot"
    assert [d["description"] for d in doc["differences"]] == [
        "type mood: value 'sad' added (after 'ok')", HOTFIX_DESCRIPTION]
    assert human.stdout.splitlines() == ["Live schema vs last recorded snapshot: 2 difference(s).",
                                         "  type mood: value 'sad' added (after 'ok')",
                                         f"  {HOTFIX_DESCRIPTION}"]
    assert len(snapshots(db_url)) == 1


def test_schema_diff_exits_0_when_the_schema_matches_the_snapshot(db_url, migrations_dir, run_script):
    directory = applied(run_script, migrations_dir, db_url)

    result, doc = run_json(run_script, "plan", "--schema-diff", "--migrations-dir", str(directory), db_url=db_url)
    human = run_script("plan", "--schema-diff", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0 and human.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["status"] == "clean" and doc["differences"] == []
    assert human.stdout.strip() == "Live schema vs last recorded snapshot: 0 difference(s)."
    assert len(snapshots(db_url)) == 1


AGAINST_PASSWORD = "Ag41nst-S3cret"


@pytest.fixture
def other_db(pg_server: str):
    """Yield the admin URL of a second database on the same server; drop it afterwards."""
    name = "t_other_" + uuid.uuid4().hex[:10]
    query(pg_server, f'CREATE DATABASE "{name}"')
    try:
        yield database_url(pg_server, name)
    finally:
        query(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def reader_role(pg_server: str):
    """Yield a login role whose password is AGAINST_PASSWORD (real on any server, ignored under trust)."""
    role = "reader_" + uuid.uuid4().hex[:10]
    query(pg_server, f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (AGAINST_PASSWORD,))
    try:
        yield role
    finally:
        query(pg_server, f'DROP ROLE IF EXISTS "{role}"')


def with_password(url: str, user: str, password: str) -> str:
    """Return url with its user and password replaced, keeping host, port, path and query."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def test_schema_diff_against_compares_two_databases_and_never_prints_the_password(
        db_url, other_db, reader_role, migrations_dir, run_script):
    applied(run_script, migrations_dir, db_url, {BASE: BASE_SQL}, name="production")
    applied(run_script, migrations_dir, other_db, {BASE: BASE_SQL, NOTES: NOTES_SQL}, name="staging")
    out_of_band(other_db, "DROP INDEX idx_users_email")
    against = with_password(other_db, reader_role, AGAINST_PASSWORD)
    other_name = urlsplit(other_db).path

    result, doc = run_json(run_script, "plan", "--schema-diff", "--against", against, db_url=db_url)
    human = run_script("plan", "--schema-diff", "--against", against, db_url=db_url)

    assert result.returncode == 3 and human.returncode == 3, result.stdout
    assert doc["error"]["code"] == "schema_drift" and doc["status"] == "drift"
    assert doc["reference"].endswith(other_name)
    # DB_URL's live schema, described relative to the --against database.
    assert [d["description"] for d in doc["differences"]] == [
        "table notes removed", "index idx_users_email added (on users USING btree (email))"]
    assert f"vs {doc['reference']}: 2 difference(s)." in human.stdout
    for output in (result.stdout, result.stderr, human.stdout, human.stderr):
        assert AGAINST_PASSWORD not in output and "S3cret" not in output
    assert "notes" not in tables(db_url) and "notes" in tables(other_db)  # both read, neither changed
    assert len(snapshots(db_url)) == len(snapshots(other_db)) == 1


def test_schema_diff_against_a_database_with_the_same_migrations_exits_0(db_url, other_db, migrations_dir,
                                                                          run_script):
    files = {BASE: BASE_SQL, NOTES: NOTES_SQL}
    applied(run_script, migrations_dir, db_url, files, name="production")
    applied(run_script, migrations_dir, other_db, files, name="staging")

    result, doc = run_json(run_script, "plan", "--schema-diff", "--against", other_db, db_url=db_url)

    assert result.returncode == 0, result.stdout
    assert doc["ok"] is True and doc["status"] == "clean" and doc["differences"] == []


def test_an_against_database_that_does_not_exist_is_named_as_such_without_its_password(
        db_url, pg_server, reader_role, migrations_dir, run_script):
    applied(run_script, migrations_dir, db_url)
    against = with_password(database_url(pg_server, "no_such_staging"), reader_role, AGAINST_PASSWORD)

    result, doc = run_json(run_script, "plan", "--schema-diff", "--against", against, db_url=db_url)

    assert result.returncode == 4, result.stdout
    assert doc["error"]["code"] == "db_not_found"
    assert "no_such_staging" in doc["error"]["message"]
    assert AGAINST_PASSWORD not in result.stdout + result.stderr
    # DB_URL is fine: the message and the hint must point at the --against URL, not send the user to DB_URL.
    assert "DB_URL" not in doc["error"]["message"] + doc["error"]["hint"], doc["error"]
    assert len(snapshots(db_url)) == 1


# ---- snapshot rows -----------------------------------------------------------------------------------------

def test_one_snapshot_row_per_run_that_changed_something_and_none_for_plan_or_dry_runs(db_url, migrations_dir,
                                                                                    run_script):
    directory = migrations_dir({f"{BASE}.sql": BASE_SQL})
    run = lambda *args: run_script(*args, "--migrations-dir", str(directory), db_url=db_url)  # noqa: E731

    assert run("plan").returncode == 0
    assert not snapshot_table_exists(db_url)  # plan is read-only: not even the table
    assert run("apply").returncode == 0
    assert [v for v, _ in snapshots(db_url)] == [[BASE]]

    add_file(directory, NOTES, NOTES_SQL)
    for args in [("plan",), ("plan", "--schema-diff"), ("apply", "--dry-run"), ("rollback", "--dry-run")]:
        assert run(*args).returncode == 0, args
    assert [v for v, _ in snapshots(db_url)] == [[BASE]]

    assert run("apply").returncode == 0
    assert run("apply").returncode == 0  # nothing pending: nothing changed
    assert run("rollback").returncode == 0
    add_file(directory, LATER, LATER_SQL)
    assert run("apply", "--baseline", NOTES).returncode == 0  # records NOTES as applied without running it
    assert run("plan", "--target", NOTES).returncode == 0

    recorded = snapshots(db_url)
    assert [v for v, _ in recorded] == [[BASE], [BASE, NOTES], [BASE], [BASE, NOTES]]
    assert recorded[0][1] == recorded[2][1] == recorded[3][1]  # the same schema hashes the same
    assert recorded[1][1] != recorded[0][1]
    assert history(db_url)[-1] == (NOTES, "up", "success")
    assert "notes" not in tables(db_url)  # the baseline ran nothing
