"""verify_migrations.py proves rollbacks on a scratch database and never touches the target (issue 4)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from conftest import ROOT, database_url, history, migration, query, tables

A = "20260101_000000_create_users"
B = "20260102_000000_add_status"
C = "20260103_000000_create_audit"
USERS = migration("CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);", "DROP TABLE users;")
AUDIT = migration("CREATE TABLE audit (id int, note text);", "DROP TABLE audit;")
STATUS_OK = migration("ALTER TABLE users ADD COLUMN status text;\nCREATE INDEX idx_users_status ON users (status);",
                      "DROP INDEX idx_users_status;\nALTER TABLE users DROP COLUMN status;")
FORGETS_INDEX = migration("ALTER TABLE users ADD COLUMN nickname text;\n"
                          "CREATE INDEX idx_users_email ON users (lower(email));",
                          "ALTER TABLE users DROP COLUMN nickname;")
DOWN_FAILS = migration("ALTER TABLE users ADD COLUMN status text;",
                       "ALTER TABLE users DROP COLUMN status;\nALTER TABLE users DROP COLUMN statuss;")
# The down restores the schema, but the seed row it forgets makes the second up fail on the primary key.
SEEDS = migration("CREATE TABLE settings (key text PRIMARY KEY);\n", "DROP TABLE settings;")
NOT_RERUNNABLE = migration("INSERT INTO settings VALUES ('mode');\nCREATE TABLE modes (id int);", "DROP TABLE modes;")


def verify(run_script, directory, db_url, *args, env=None):
    """Run verify with --json; return (process, document)."""
    result = run_script("verify", "--migrations-dir", str(directory), "--json", *args, db_url=db_url, env=env,
                        timeout=300)
    return result, json.loads(result.stdout)


def statuses(document) -> dict[str, str]:
    return {check["version"]: check["status"] for check in document["checks"]}


def scratch_databases(db_url: str) -> set[str]:
    return {r[0] for r in query(db_url, "SELECT datname FROM pg_database WHERE starts_with(datname, 'verify_')")}


def test_correct_migrations_pass_and_the_target_stays_empty(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": STATUS_OK, f"{C}.sql": AUDIT})
    databases = scratch_databases(db_url)

    result, document = verify(run_script, directory, db_url)

    assert result.returncode == 0, result.stderr
    assert document["ok"] is True and document["command"] == "verify" and document["problems"] == []
    assert statuses(document) == {A: "ok", B: "ok", C: "ok"} and document["verified"] == [A, B, C]
    assert tables(db_url) == set() and history(db_url) == []
    assert scratch_databases(db_url) == databases  # the scratch database was dropped


def test_the_shipped_example_migrations_verify(db_url, run_script):
    result = run_script("verify", "--migrations-dir", str(ROOT / "migrations"), db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("each up runs again after it.")
    assert tables(db_url) == set()


def test_a_down_that_forgets_an_index_is_caught_with_the_difference(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": FORGETS_INDEX})

    result, document = verify(run_script, directory, db_url)

    assert result.returncode == 3
    assert document["error"]["code"] == "verify_failed" and B in document["error"]["message"]
    assert statuses(document) == {A: "ok", B: "down_leaves_difference"}
    (check,) = [c for c in document["checks"] if c["version"] == B]
    assert [d["description"] for d in check["differences"]] == \
        ["index idx_users_email added (on users USING btree (lower(email)))"]
    assert "already exists" in check["error"]  # and the second up trips over it
    assert tables(db_url) == set()


def test_the_human_report_names_what_the_down_leaves_behind(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": FORGETS_INDEX})

    result = run_script("verify", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 3
    assert f"DOWN LEAVES DIFFERENCE  {B}" in result.stdout
    assert "index idx_users_email added (on users USING btree (lower(email)))" in result.stdout
    assert "error: 1 of 2 migration(s) not verified" in result.stderr


def test_a_down_that_fails_is_reported_with_its_error_and_the_rest_still_verified(db_url, migrations_dir,
                                                                                   run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": DOWN_FAILS, f"{C}.sql": AUDIT})

    result, document = verify(run_script, directory, db_url)

    assert result.returncode == 3
    assert statuses(document) == {A: "ok", B: "down_failed", C: "ok"}
    (check,) = [c for c in document["checks"] if c["version"] == B]
    assert check["error"].startswith("SQLSTATE 42703") and "statuss" in check["error"]
    assert tables(db_url) == set()


def test_an_up_that_cannot_run_again_after_its_down_is_caught(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": SEEDS, f"{B}.sql": NOT_RERUNNABLE, f"{C}.sql": AUDIT})

    result, document = verify(run_script, directory, db_url)

    assert result.returncode == 3
    assert statuses(document) == {A: "ok", B: "up_not_rerunnable", C: "not_run"}
    (check,) = [c for c in document["checks"] if c["version"] == B]
    assert check["error"].startswith("SQLSTATE 23505") and check["differences"] == []


def test_an_irreversible_migration_fails_verification_unless_allowed(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": migration("ALTER TABLE users ADD COLUMN x int;")})

    refused, document = verify(run_script, directory, db_url)
    allowed, allowed_document = verify(run_script, directory, db_url, "--allow-irreversible")

    assert refused.returncode == 3 and statuses(document) == {A: "ok", B: "irreversible"}
    assert allowed.returncode == 0 and allowed_document["ok"] is True
    assert statuses(allowed_document) == {A: "ok", B: "irreversible"}


def test_the_target_database_is_untouched_by_verify(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    query(db_url, "INSERT INTO users VALUES (1, 'a@example.com')")
    (directory / f"{B}.sql").write_text(FORGETS_INDEX, encoding="utf-8")
    (directory / f"{C}.sql").write_text(AUDIT, encoding="utf-8")
    before = (tables(db_url), query(db_url, "SELECT * FROM schema_migrations ORDER BY id"),
              query(db_url, "SELECT * FROM users"), scratch_databases(db_url))

    for args in ((), ("--pending",), ("--from", B)):
        assert verify(run_script, directory, db_url, *args)[0].returncode == 3

    assert (tables(db_url), query(db_url, "SELECT * FROM schema_migrations ORDER BY id"),
            query(db_url, "SELECT * FROM users"), scratch_databases(db_url)) == before


def test_pending_verifies_only_what_the_target_has_not_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    (directory / f"{B}.sql").write_text(STATUS_OK, encoding="utf-8")

    result, document = verify(run_script, directory, db_url, "--pending")

    assert result.returncode == 0, result.stderr
    assert statuses(document) == {B: "ok"} and document["prepared"] == [A]
    assert "status" not in {r[0] for r in query(db_url, "SELECT column_name FROM information_schema.columns "
                                                        "WHERE table_name = 'users'")}


def test_nothing_pending_means_nothing_to_verify(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0

    result = run_script("verify", "--migrations-dir", str(directory), "--pending", db_url=db_url)

    assert result.returncode == 0 and result.stdout.strip() == "Nothing to verify."


def test_a_range_verifies_from_and_to_inclusive_after_applying_the_earlier_ones(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": STATUS_OK, f"{C}.sql": DOWN_FAILS})

    result, document = verify(run_script, directory, db_url, "--from", B, "--to", B)

    assert result.returncode == 0, result.stderr
    assert statuses(document) == {B: "ok"} and document["prepared"] == [A]


def test_an_unknown_range_version_is_a_usage_error(db_url, migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS})

    result, document = verify(run_script, directory, db_url, "--to", "20990101_000000_nope")

    assert result.returncode == 2 and document["error"]["code"] == "unknown_version"
    assert "20990101_000000_nope" in document["error"]["message"]


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc.rpartition('@')[2]}"))


@pytest.fixture
def limited_role(pg_server: str, db_url: str) -> Iterator[tuple[str, str]]:
    """Yield (URL of an empty database owned by a role without CREATEDB, URL of a non-empty one)."""
    role = "verifier_" + uuid.uuid4().hex[:8]
    empty, full = (f"{role}_{suffix}" for suffix in ("empty", "full"))
    admin = psycopg2.connect(pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD 'secret-pw'")
        for name in (empty, full):
            cur.execute(f"CREATE DATABASE {name} OWNER {role}")
    query(database_url(pg_server, full), "CREATE TABLE precious (id int)")
    try:
        yield (with_user(database_url(pg_server, empty), role, "secret-pw"),
               with_user(database_url(pg_server, full), role, "secret-pw"))
    finally:
        with admin.cursor() as cur:
            for name in (empty, full):
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            cur.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_a_scratch_url_whose_role_cannot_create_databases_is_used_only_when_empty(
        db_url, migrations_dir, run_script, limited_role):
    empty, full = limited_role
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": STATUS_OK})

    used, document = verify(run_script, directory, db_url, "--scratch-url", empty)
    refused, refusal = verify(run_script, directory, db_url, "--scratch-url", full)

    assert used.returncode == 0, used.stderr
    assert document["scratch"].startswith("the --scratch-url database") and set(statuses(document).values()) == {"ok"}
    assert refused.returncode == 3 and refusal["error"]["code"] == "scratch_not_empty"
    assert tables(full) == {"precious"}
    assert "secret-pw" not in used.stdout + used.stderr + refused.stdout + refused.stderr
    assert tables(db_url) == set()


def test_without_db_url_an_embedded_postgresql_is_started_for_the_run(migrations_dir, run_script):
    directory = migrations_dir({f"{A}.sql": USERS, f"{B}.sql": STATUS_OK})

    result, document = verify(run_script, directory, None)

    assert result.returncode == 0, result.stderr
    assert "embedded PostgreSQL" in document["scratch"] and set(statuses(document).values()) == {"ok"}


def test_the_example_ci_workflow_runs_verify_on_every_change_to_migrations():
    workflow = (ROOT / "examples" / "ci-migrations.yml").read_text(encoding="utf-8")

    assert '"migrations/**"' in workflow and "pull_request:" in workflow
    assert "services:" in workflow and "DB_URL:" in workflow
    assert "python scripts/verify_migrations.py --migrations-dir migrations" in workflow
