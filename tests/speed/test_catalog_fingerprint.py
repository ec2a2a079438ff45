"""The catalog fingerprint that lets plan skip the full snapshot: every DDL changes it, while VACUUM, ANALYZE and
data changes do not; whenever it stays the same the snapshot is the same too; and snapshot tables made by earlier
versions, or writable but not owned, keep working."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from conftest import database_url, query
from migration_core import snapshot
from migration_core.snapshot import catalog_fingerprint, queries_code, take_snapshot
from migration_core.snapshot_store import load_last_summary, record_current_snapshot

BASE = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, mood mood DEFAULT 'happy', score integer);
CREATE TABLE orders (id int, user_id int);
CREATE INDEX idx_users_email ON users (email);
CREATE VIEW happy AS SELECT id FROM users WHERE mood = 'happy';
CREATE SEQUENCE tickets;
CREATE TABLE events (id serial PRIMARY KEY, note text);
CREATE FUNCTION f(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n + 1';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
INSERT INTO users (email, score) SELECT 'u' || i, i FROM generate_series(1, 200) i;
"""
# Each changes the schema as the snapshot describes it (or a catalog row it reads): the fingerprint must change.
DDL = [
    "ALTER TABLE users ALTER COLUMN score SET DEFAULT 1",
    "ALTER TABLE users ALTER COLUMN score SET DEFAULT 2",
    "ALTER TABLE users ALTER COLUMN score DROP DEFAULT",
    "ALTER TABLE users ALTER COLUMN score SET NOT NULL",
    "ALTER TABLE users ALTER COLUMN score TYPE bigint",
    "ALTER TABLE users RENAME COLUMN score TO points",
    "ALTER TABLE users ADD COLUMN status text",
    "ALTER TABLE users DROP COLUMN status",
    "ALTER TABLE users SET (fillfactor = 80)",
    "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '')",
    "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)",
    "CREATE INDEX idx_users_mood ON users (mood)",
    "ALTER INDEX idx_users_mood RENAME TO idx_users_mood2",
    "DROP INDEX idx_users_mood2",
    "CREATE OR REPLACE FUNCTION f(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n + 2'",
    "ALTER FUNCTION f(integer) SET search_path = public",
    "ALTER TYPE mood ADD VALUE 'calm'",
    "ALTER TYPE mood RENAME VALUE 'calm' TO 'serene'",
    "ALTER DOMAIN positive ADD CONSTRAINT positive_small CHECK (VALUE < 1000)",
    "CREATE OR REPLACE VIEW happy AS SELECT id, email FROM users WHERE mood = 'happy'",
    "CREATE TRIGGER users_touch BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION touch()",
    "ALTER TABLE users DISABLE TRIGGER users_touch",
    "ALTER SEQUENCE tickets INCREMENT BY 5",
    "ALTER SEQUENCE tickets OWNED BY orders.id",
    "CREATE SCHEMA app",
    "CREATE TEXT SEARCH DICTIONARY app.d (TEMPLATE = simple)",
    "ALTER TABLE users ADD COLUMN dictionary regdictionary DEFAULT 'app.d'",
    "ALTER TEXT SEARCH DICTIONARY app.d RENAME TO e",  # the default now prints 'app.e'::regdictionary
    "ALTER TABLE orders SET SCHEMA app",
    "CREATE TABLE app.audit (at timestamptz) PARTITION BY RANGE (at)",
    "CREATE TABLE app.audit_2026 PARTITION OF app.audit FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "GRANT SELECT ON users TO PUBLIC",  # privileges are not in the snapshot: a harmless full check
    "DROP VIEW happy",
    "DROP TABLE app.orders",
]
# What only touches data or statistics: the fingerprint stays, so plan keeps its one-query check.
NOT_DDL = [
    "INSERT INTO events (note) SELECT 'n' || i FROM generate_series(1, 500) i",
    "UPDATE events SET note = note || '!'",
    "DELETE FROM events WHERE mod(id, 2) = 0",
    "SELECT nextval('events_id_seq')",
    "ANALYZE",
    "ANALYZE events",
    "VACUUM events",
    "VACUUM ANALYZE",
    "VACUUM (FREEZE) events",
    "VACUUM",
]


@pytest.fixture(scope="module")
def url(pg_server: str) -> Iterator[str]:
    """One database for the module, with a schema of every kind the snapshot describes."""
    name = "t_" + uuid.uuid4().hex[:12]
    query(pg_server, f'CREATE DATABASE "{name}"')
    url = database_url(pg_server, name)
    query(url, BASE)
    yield url
    query(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def conn(url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(url)
    yield connection
    connection.close()


def state(conn) -> tuple[str, dict]:
    """Return the live fingerprint and snapshot, read in one transaction as plan reads them."""
    try:
        return catalog_fingerprint(conn), take_snapshot(conn)
    finally:
        conn.rollback()


def test_every_schema_change_changes_the_fingerprint(url, conn):
    fingerprint, _ = state(conn)
    for statement in DDL:
        query(url, statement)
        changed, _ = state(conn)
        assert changed != fingerprint, statement
        fingerprint = changed


def test_renaming_a_text_search_dictionary_that_a_default_and_a_view_name_changes_snapshot_and_fingerprint(url, conn):
    query(url, "CREATE SCHEMA dicts; CREATE TEXT SEARCH DICTIONARY dicts.d (TEMPLATE = simple);"
               "CREATE TABLE dicts.t (d regdictionary DEFAULT 'dicts.d');"
               "CREATE VIEW dicts.v AS SELECT 'dicts.d'::regdictionary AS d")
    fingerprint, before = state(conn)
    query(url, "ALTER TEXT SEARCH DICTIONARY dicts.d RENAME TO e")
    changed, after = state(conn)
    assert after != before  # the default and the view print the new name
    assert changed != fingerprint  # so plan may not call the schema clean from the fingerprint alone


def test_a_change_of_the_fingerprint_query_changes_the_stored_fingerprints_meaning(monkeypatch):
    code = queries_code()
    monkeypatch.setattr(snapshot, "SELECT_FINGERPRINT", snapshot.SELECT_FINGERPRINT.replace("pg_ts_dict", "pg_am"))
    assert queries_code() != code  # a fingerprint recorded over other catalogs is never trusted


def test_vacuum_analyze_and_data_changes_leave_the_fingerprint_and_the_snapshot_as_they_were(url, conn):
    fingerprint, snapshot = state(conn)
    for statement in NOT_DDL:
        query(url, statement)
        assert state(conn) == (fingerprint, snapshot), statement


def test_a_comment_changes_neither_the_snapshot_nor_the_fingerprint_as_comments_are_not_compared(url, conn):
    before = state(conn)
    query(url, "COMMENT ON TABLE users IS 'people'; COMMENT ON COLUMN users.email IS 'login'")
    assert state(conn) == before


def test_a_rolled_back_change_leaves_the_fingerprint_as_it_was(url, conn):
    before = state(conn)
    other = psycopg2.connect(url)
    try:
        with other.cursor() as cur:
            cur.execute("ALTER TABLE users ADD COLUMN later text; CREATE INDEX idx_later ON users (later)")
        other.rollback()
    finally:
        other.close()
    assert state(conn) == before


def test_the_snapshot_is_recorded_with_its_fingerprint_and_an_unreviewed_one_without(url, conn):
    record_current_snapshot(conn, ["v1"])
    conn.commit()
    summary = load_last_summary(conn)
    assert summary.fingerprint == state(conn)[0] and summary.applied_versions == ["v1"]
    record_current_snapshot(conn, ["v1"], unreviewed=True)
    conn.commit()
    assert load_last_summary(conn).fingerprint is None  # an unreviewed reference always takes the full check


OLD_TABLE = """
CREATE TABLE schema_migrations_snapshots (id SERIAL PRIMARY KEY, taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_versions TEXT[] NOT NULL, schema_hash TEXT NOT NULL, snapshot JSONB NOT NULL);
"""


def test_a_snapshot_table_of_an_earlier_version_gets_the_column_when_the_tool_next_records(db_url):
    query(db_url, OLD_TABLE)
    conn = psycopg2.connect(db_url)
    try:
        assert load_last_summary(conn) is None  # no row yet, and no error without the column
        record_current_snapshot(conn, ["v1"])
        conn.commit()
        assert load_last_summary(conn).fingerprint is not None
    finally:
        conn.close()


def test_a_role_that_may_write_the_old_table_but_not_alter_it_records_without_a_fingerprint(db_url):
    role = "writer_" + uuid.uuid4().hex[:8]
    query(db_url, OLD_TABLE + f"CREATE ROLE {role}; GRANT SELECT, INSERT ON schema_migrations_snapshots TO {role};"
                              f"GRANT USAGE ON SEQUENCE schema_migrations_snapshots_id_seq TO {role};")
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SET ROLE {role}")
        record_current_snapshot(conn, ["v1"])
        conn.commit()
        summary = load_last_summary(conn)
        assert summary.applied_versions == ["v1"] and summary.fingerprint is None
    finally:
        conn.close()
        query(db_url, f"DROP OWNED BY {role}; DROP ROLE {role}")
    columns = query(db_url, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'schema_migrations_snapshots'::regclass"
                            " AND attname = 'catalog_fingerprint'")
    assert columns == [(0,)]
