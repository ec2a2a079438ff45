"""Risk that knows the database (issue 10), as subprocesses on a real PostgreSQL: a table created earlier in the run
is new and empty, a small live table is low risk and says why, a large one is refused with its size and the lock,
the SQL inside DO blocks is judged, and lint --db judges the pending files as the next apply would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import psycopg2
import pytest
from conftest import SCRIPTS, database_url, history, migration, query

# The design's own example, as it shows it: a table, then a plain index on it in the next file.
USERS = "20260208_120000_create_users_table"
USERS_INDEX = "20260208_121500_add_index_on_users_email"
DESIGN = {
    f"{USERS}.sql": "-- MIGRATION: create_users_table\n" + migration(
        "CREATE TABLE users (\n    id BIGSERIAL PRIMARY KEY,\n    email TEXT NOT NULL UNIQUE,\n"
        "    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()\n);", "DROP TABLE IF EXISTS users;"),
    f"{USERS_INDEX}.sql": "-- MIGRATION: add_index_on_users_email\n" + migration(
        "CREATE INDEX idx_users_email ON users(email);", "DROP INDEX IF EXISTS idx_users_email;"),
}
# A fresh install whose later files index, constrain, SET NOT NULL and rewrite tables created by earlier files.
FRESH_INSTALL = {
    "20260301_000000_create_accounts.sql": migration("CREATE TABLE accounts (id bigint PRIMARY KEY, slug text);",
                                                     "DROP TABLE accounts;"),
    "20260302_000000_create_orders.sql": migration(
        "CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint, total integer, status text);",
        "DROP TABLE orders;"),
    "20260303_000000_index_orders.sql": migration("CREATE INDEX orders_account_idx ON orders (account_id);\n"
                                                  "CREATE UNIQUE INDEX accounts_slug_idx ON accounts (slug);",
                                                  "DROP INDEX orders_account_idx;\nDROP INDEX accounts_slug_idx;"),
    "20260304_000000_constrain_orders.sql": migration(
        "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);\n"
        "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);\n"
        "ALTER TABLE accounts ADD CONSTRAINT accounts_slug_unique UNIQUE (slug);",
        "ALTER TABLE orders DROP CONSTRAINT orders_account_fk;\n"
        "ALTER TABLE orders DROP CONSTRAINT orders_total_positive;\n"
        "ALTER TABLE accounts DROP CONSTRAINT accounts_slug_unique;"),
    "20260305_000000_orders_not_null.sql": migration(
        "ALTER TABLE orders ALTER COLUMN status SET NOT NULL;\nALTER TABLE orders ALTER COLUMN total TYPE bigint;\n"
        "ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();",
        "ALTER TABLE orders DROP COLUMN public_id;\nALTER TABLE orders ALTER COLUMN status DROP NOT NULL;"),
}
SETTINGS = "20260401_000000_create_settings"
BIG = "20260401_000000_create_orders"
INDEX_SETTINGS = {"20260402_000000_index_settings.sql": migration("CREATE INDEX settings_key_idx ON settings (key);",
                                                                  "DROP INDEX settings_key_idx;")}
INDEX_ORDERS = "20260402_000000_index_orders_placed_at"
BIG_ROWS = 300_000


def run_json(run_script, *args: str, db_url: str):
    result = run_script(*args, "--json", db_url=db_url)
    return result, json.loads(result.stdout)


def apply_with_rows(run_script, migrations_dir, db_url: str, version: str, table_sql: str, fill: str,
                    analyze: bool) -> object:
    """Apply one migration creating a table (its down drops it), fill it outside the migrations, and return the
    directory."""
    table = table_sql.split()[2]
    directory = migrations_dir({f"{version}.sql": migration(table_sql, f"DROP TABLE {table};")})
    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert result.returncode == 0, result.stderr
    query(db_url, fill)
    if analyze:
        query(db_url, "ANALYZE")
    return directory


@pytest.fixture
def settings_dir(run_script, migrations_dir, db_url):
    """A settings table of 50 rows, applied and never analysed; the index on it is pending."""
    directory = apply_with_rows(run_script, migrations_dir, db_url, SETTINGS,
                                "CREATE TABLE settings (key text, value text);",
                                "INSERT INTO settings SELECT 'k' || g, 'v' FROM generate_series(1, 50) g", False)
    for name, text in INDEX_SETTINGS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


BIG_FILE = {f"{BIG}.sql": migration("CREATE TABLE orders (id bigint PRIMARY KEY, total integer, "
                                     "placed_at timestamptz);", "DROP TABLE orders;")}


@pytest.fixture(scope="module")
def big_orders_template(pg_server, tmp_path_factory):
    """Return the name of a template database: orders applied by the tool, filled with 300,000 rows, analysed.

    Built once for the module: each test copies it (CREATE DATABASE ... TEMPLATE), which is much faster.
    """
    name = "tpl_" + uuid.uuid4().hex[:12]
    admin_execute(pg_server, f'CREATE DATABASE "{name}"')
    url = database_url(pg_server, name)
    directory = tmp_path_factory.mktemp("big")
    for file_name, text in BIG_FILE.items():
        (directory / file_name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": url}
    done = subprocess.run([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--migrations-dir", str(directory)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    query(url, f"INSERT INTO orders SELECT g, mod(g, 1000), now() FROM generate_series(1, {BIG_ROWS}) g")
    query(url, "ANALYZE orders")
    yield name
    admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def big_db_url(pg_server, big_orders_template):
    """Yield a fresh database holding the applied, filled and analysed orders table of the template."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin_execute(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{big_orders_template}"')
    yield database_url(pg_server, name)
    admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def big_orders_dir(migrations_dir):
    """The migrations directory of big_db_url: orders applied; no migration pending yet."""
    return migrations_dir(BIG_FILE)


def admin_execute(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def add(directory, version: str, text: str) -> None:
    (directory / f"{version}.sql").write_text(text, encoding="utf-8")


def index_exists(db_url: str, name: str) -> bool:
    return bool(query(db_url, "SELECT 1 FROM pg_indexes WHERE indexname = %s", (name,)))


# ---- the run: tables created earlier in it are new ------------------------------------------------------------

def test_the_designs_two_migrations_apply_with_default_flags_on_an_empty_database(db_url, migrations_dir,
                                                                                     run_script):
    directory = migrations_dir(DESIGN)

    plan, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert plan.returncode == 0, plan.stdout
    assert [(p["version"], p["risk"]) for p in doc["pending"]] == [(USERS, None), (USERS_INDEX, None)]
    assert applied.returncode == 0, applied.stderr
    assert history(db_url) == [(USERS, "up", "success"), (USERS_INDEX, "up", "success")]
    assert index_exists(db_url, "idx_users_email")


def test_a_fresh_install_that_indexes_constrains_and_alters_tables_created_earlier_applies(db_url, migrations_dir,
                                                                                           run_script):
    directory = migrations_dir(FRESH_INSTALL)

    plan, doc = run_json(run_script, "plan", "--migrations-dir", str(directory), db_url=db_url)
    applied, result = run_json(run_script, "apply", "--migrations-dir", str(directory), db_url=db_url)

    assert plan.returncode == 0, plan.stdout
    assert [p["risk"] for p in doc["pending"]] == [None] * 5
    assert [f["rule"] for p in doc["pending"] for f in p["findings"] if f["direction"] == "up"] == []
    assert applied.returncode == 0, applied.stdout
    assert result["applied"] == sorted(name[:-4] for name in FRESH_INSTALL)
    assert query(db_url, "SELECT conname FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype IN "
                         "('f', 'c') ORDER BY 1") == [("orders_account_fk",), ("orders_total_positive",)]
    assert query(db_url, "SELECT is_nullable, data_type FROM information_schema.columns WHERE table_name = 'orders' "
                         "AND column_name IN ('status', 'total') ORDER BY column_name") == [
        ("NO", "text"), ("YES", "bigint")]


def test_lint_offline_keeps_the_static_judgement_and_lint_db_judges_the_pending_run(db_url, migrations_dir,
                                                                                   run_script):
    directory = migrations_dir(DESIGN)

    offline = run_script("lint", "--migrations-dir", str(directory), "--json")
    live = run_script("lint", "--migrations-dir", str(directory), "--db", "--json", db_url=db_url)

    assert offline.returncode == 3, offline.stdout
    assert [m["risk"] for m in json.loads(offline.stdout)["migrations"]] == [None, "high"]
    assert live.returncode == 0, live.stdout
    document = json.loads(live.stdout)
    assert document["live"] is True and [m["risk"] for m in document["migrations"]] == [None, None]
    assert history(db_url) == []  # lint --db reads, and creates nothing


# ---- live sizes: small tables, large tables ---------------------------------------------------------------------

def test_an_index_on_a_50_row_table_applies_and_its_finding_is_low_and_says_why(db_url, settings_dir, run_script):
    plan, doc = run_json(run_script, "plan", "--migrations-dir", str(settings_dir), db_url=db_url)
    human = run_script("plan", "--migrations-dir", str(settings_dir), db_url=db_url)
    applied = run_script("apply", "--migrations-dir", str(settings_dir), db_url=db_url)

    assert plan.returncode == 0, plan.stdout
    (pending,) = doc["pending"]
    (finding,) = [f for f in pending["findings"] if f["direction"] == "up"]
    assert (finding["rule"], finding["severity"], finding["lowered_from"], finding["table"]) == (
        "adding_index_non_concurrently", "low", "high", "settings")
    assert 50 <= finding["size"]["rows"] < 1000 and "never analysed" in finding["size"]["basis"]
    assert "below the small-table threshold (10,000 rows)" in finding["message"]
    assert "settings: ~" in human.stdout and "risk LOW" in human.stdout
    assert applied.returncode == 0, applied.stderr
    assert index_exists(db_url, "settings_key_idx")


def test_small_table_rows_zero_judges_the_50_row_table_as_large_and_refuses(db_url, settings_dir, run_script):
    result, doc = run_json(run_script, "apply", "--small-table-rows", "0", "--migrations-dir", str(settings_dir),
                           db_url=db_url)

    assert result.returncode == 3, result.stdout
    assert doc["error"]["code"] == "risk_too_high"
    assert [(f["rule"], f["severity"], f["table"]) for f in doc["error"]["findings"]] == [
        ("adding_index_non_concurrently", "high", "settings")]
    assert not index_exists(db_url, "settings_key_idx")


def test_an_index_on_a_300000_row_table_is_refused_and_the_json_states_its_size_and_the_lock(
        big_db_url, big_orders_dir, run_script):
    add(big_orders_dir, INDEX_ORDERS, migration("CREATE INDEX orders_placed_at_idx ON orders (placed_at);",
                                                "DROP INDEX orders_placed_at_idx;"))

    result, doc = run_json(run_script, "apply", "--migrations-dir", str(big_orders_dir), db_url=big_db_url)

    assert result.returncode == 3, result.stdout
    assert doc["ok"] is False and doc["applied"] == [] and doc["error"]["code"] == "risk_too_high"
    (finding,) = doc["error"]["findings"]
    assert {k: finding[k] for k in ("version", "rule", "severity", "line", "table", "lock")} == {
        "version": INDEX_ORDERS, "rule": "adding_index_non_concurrently", "severity": "high", "line": 2,
        "table": "orders", "lock": "SHARE (writes wait)"}
    assert finding["size"]["rows"] == BIG_ROWS and finding["size"]["basis"] == "statistics"
    assert finding["size"]["bytes"] > 10 * 2**20 and finding["size"]["text"].startswith("orders: ~300k rows, ")
    assert "orders: ~300k rows" in finding["message"] and "holding SHARE (writes wait)" in finding["message"]
    assert "orders: ~300k rows" in doc["error"]["message"]
    assert history(big_db_url) == [(BIG, "up", "success")]
    assert not index_exists(big_db_url, "orders_placed_at_idx")


def test_a_do_block_altering_a_column_type_on_the_large_table_is_found(big_db_url, big_orders_dir, run_script):
    add(big_orders_dir, "20260403_000000_widen_total", migration(
        "DO $$\nBEGIN\n    ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n"
        "    EXECUTE 'ANALYZE ' || 'orders';\nEND\n$$;"))

    plan, doc = run_json(run_script, "plan", "--migrations-dir", str(big_orders_dir), db_url=big_db_url)
    applied, refused = run_json(run_script, "apply", "--migrations-dir", str(big_orders_dir), db_url=big_db_url)

    assert plan.returncode == 0, plan.stdout
    (pending,) = doc["pending"]
    assert [(f["rule"], f["severity"], f["line"], f["table"]) for f in pending["findings"]] == [
        ("changing_column_type", "high", 4, "orders"), ("dynamic_sql_not_analysed", "low", 5, None)]
    assert "orders: ~300k rows" in pending["findings"][0]["message"]
    assert applied.returncode == 3 and refused["error"]["code"] == "risk_too_high"
    assert query(big_db_url, "SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' AND "
                         "column_name = 'total'") == [("integer",)]


def test_many_refused_findings_read_as_one_grouped_line_and_verbose_lists_each(big_db_url, big_orders_dir,
                                                                               run_script):
    for n in range(1, 7):
        add(big_orders_dir, f"2026040{n}_000000_index_{n}", migration(f"CREATE INDEX orders_i{n} ON orders (total);"))

    grouped = run_script("apply", "--migrations-dir", str(big_orders_dir), db_url=big_db_url)
    verbose = run_script("apply", "--verbose", "--migrations-dir", str(big_orders_dir), db_url=big_db_url)
    plan = run_script("plan", "--migrations-dir", str(big_orders_dir), db_url=big_db_url)

    assert grouped.returncode == verbose.returncode == 3
    assert "adding_index_non_concurrently ×6 (high)" in grouped.stderr and "and 2 more" in grouped.stderr
    assert verbose.stderr.count("adding_index_non_concurrently (high)") == 6
    assert "adding_index_non_concurrently ×6 — writes wait while the index is built" in plan.stdout
    assert plan.stdout.count("adding_index_non_concurrently") == 1
    assert history(big_db_url) == [(BIG, "up", "success")]


def test_a_rollback_dry_run_states_the_live_size_of_the_table_it_drops(big_db_url, big_orders_dir, run_script):
    result, doc = run_json(run_script, "rollback", "--dry-run", "--migrations-dir", str(big_orders_dir),
                           db_url=big_db_url)

    assert result.returncode == 0, result.stdout
    (step,) = doc["steps"]
    (finding,) = step["findings"]
    assert (finding["rule"], finding["direction"], finding["table"]) == ("rollback_drops_data", "down", "orders")
    assert finding["size"]["rows"] == BIG_ROWS and finding["severity"] == "medium"
    assert query(big_db_url, "SELECT count(*) FROM orders") == [(BIG_ROWS,)]


def test_the_size_read_never_waits_behind_a_table_lock(big_db_url, big_orders_dir, run_script):
    add(big_orders_dir, INDEX_ORDERS, migration("CREATE INDEX orders_placed_at_idx ON orders (placed_at);"))
    locker = psycopg2.connect(big_db_url)
    try:
        with locker.cursor() as cur:
            cur.execute("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result, doc = run_json(run_script, "plan", "--no-schema-check", "--migrations-dir", str(big_orders_dir),
                               db_url=big_db_url)
        elapsed = time.monotonic() - started
    finally:
        locker.close()

    assert result.returncode == 0, result.stdout
    assert elapsed < 4, f"plan took {elapsed:.1f}s behind the lock"  # the read's lock_timeout is 5 s
    (finding,) = [f for f in doc["pending"][0]["findings"] if f["direction"] == "up"]
    assert finding["severity"] == "high" and finding["size"]["rows"] == BIG_ROWS
    assert "not read: the table is locked" in finding["size"]["basis"]
