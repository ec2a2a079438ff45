"""Schema snapshots on a real PostgreSQL: out-of-band changes detected and described, stable bytes, tool tables
left out, no false drift across apply/rollback cycles, and the snapshot table round trip (issue 4)."""
from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from conftest import migration, query
from migration_core import db
from migration_core.schema_diff import diff_snapshots
from migration_core.snapshot import canonical_json, snapshot_hash, take_snapshot
from migration_core.snapshot_store import (
    detect_schema_drift,
    ensure_snapshot_table,
    load_last_snapshot,
    record_current_snapshot,
    record_snapshot,
)

USERS = "CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);"
# One of each kind of object the snapshot describes, spread over two schemas.
RICH_SCHEMA = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('happy', 'sad');
CREATE DOMAIN positive AS integer DEFAULT 1 CHECK (VALUE > 0);
CREATE TYPE address AS (city text, zip text COLLATE "C");
CREATE TYPE float_range AS RANGE (subtype = float8);
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    mood app.mood DEFAULT 'happy',
    score positive,
    doubled bigint GENERATED ALWAYS AS (id * 2) STORED,
    created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00',
    CONSTRAINT users_email_check CHECK (email <> '')
) WITH (fillfactor = 90);
CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint REFERENCES users (id) ON DELETE CASCADE,
                     placed date NOT NULL) ;
CREATE INDEX idx_orders_user ON orders (user_id) WHERE user_id IS NOT NULL;
CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE UNLOGGED TABLE app.cache (k text, v jsonb);
CREATE SEQUENCE app.tickets INCREMENT 5 START 100;
CREATE VIEW active_users AS SELECT id, email FROM users WHERE mood = 'happy';
CREATE MATERIALIZED VIEW order_counts AS SELECT user_id, count(*) AS n FROM orders GROUP BY user_id;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.placed := now(); RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION add_one(n integer) RETURNS integer LANGUAGE sql IMMUTABLE RETURN n + 1;
CREATE PROCEDURE app.noop() LANGUAGE sql AS 'SELECT 1';
"""


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(db_url)
    connection.autocommit = True
    yield connection
    connection.close()


def run(conn, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


def described(before: dict, after: dict) -> list[str]:
    return [change.describe() for change in diff_snapshots(before, after)]


OUT_OF_BAND = [
    ("column added", USERS, "ALTER TABLE users ADD COLUMN status text",
     ["table users: column status added (text, nullable)"]),
    ("type changed", USERS, "ALTER TABLE users ALTER COLUMN id TYPE bigint",
     ["table users: column id type changed (integer -> bigint)"]),
    ("index dropped", USERS + "CREATE INDEX idx_users_email ON users (lower(email));", "DROP INDEX idx_users_email",
     ["index idx_users_email removed"]),
    ("constraint added", USERS, "ALTER TABLE users ADD CONSTRAINT users_email_not_empty CHECK (email <> '')",
     ["table users: constraint users_email_not_empty added (CHECK ((email <> ''::text)))"]),
    ("function body changed", "CREATE FUNCTION f(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n + 1';",
     "CREATE OR REPLACE FUNCTION f(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n + 2'",
     ["function f(integer): body changed"]),
    ("enum value added", "CREATE TYPE mood AS ENUM ('happy', 'ok');", "ALTER TYPE mood ADD VALUE 'sad' BEFORE 'ok'",
     ["type mood: value 'sad' added (after 'happy')"]),
    ("nullability dropped", USERS, "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
     ["table users: column email nullability changed (not null -> nullable)"]),
    ("default set", USERS, "ALTER TABLE users ALTER COLUMN email SET DEFAULT 'x'",
     ["table users: column email default changed (none -> 'x'::text)"]),
    ("table created", "", "CREATE TABLE audit (id int, note text)", ["table audit added (2 columns)"]),
    ("trigger disabled",
     USERS + "CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';"
             "CREATE TRIGGER users_t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION t();",
     "ALTER TABLE users DISABLE TRIGGER users_t",
     ["table users: trigger users_t status changed (enabled -> disabled)"]),
]


@pytest.mark.parametrize("setup, change, expected", [case[1:] for case in OUT_OF_BAND],
                         ids=[case[0] for case in OUT_OF_BAND])
def test_an_out_of_band_change_is_detected_and_described(conn, setup, change, expected):
    if setup:
        run(conn, setup)
    before = take_snapshot(conn)

    run(conn, change)

    assert described(before, take_snapshot(conn)) == expected


def test_a_changed_view_definition_is_detected_and_shown(conn):
    run(conn, USERS + "CREATE VIEW v AS SELECT id FROM users;")
    before = take_snapshot(conn)

    run(conn, "CREATE OR REPLACE VIEW v AS SELECT id FROM users WHERE id > 0")

    (line,) = described(before, take_snapshot(conn))
    # PostgreSQL 15 writes users.id where 16 and later write id: the shape, not the server's spelling, is tested.
    assert line.startswith("view v: definition changed (SELECT ") and " -> SELECT " in line
    assert line.endswith(" > 0);)")


def test_snapshots_are_byte_identical_across_runs_and_session_settings(conn, db_url):
    run(conn, RICH_SCHEMA)
    first = canonical_json(take_snapshot(conn))
    other = psycopg2.connect(db_url, options="-c search_path=app -c TimeZone=Asia/Tokyo -c DateStyle=SQL,DMY "
                                             "-c extra_float_digits=3")
    try:
        second = canonical_json(take_snapshot(other))
    finally:
        other.close()

    assert second == first
    assert canonical_json(take_snapshot(conn)) == first
    assert snapshot_hash(take_snapshot(conn)) == snapshot_hash(take_snapshot(conn))


def test_a_rich_schema_is_described_object_by_object(conn):
    run(conn, RICH_SCHEMA)

    snapshot = take_snapshot(conn)

    assert set(snapshot["schemas"]) == {"app", "public"}
    assert set(snapshot["tables"]) == {"public.users", "public.orders", "public.events", "public.events_2026",
                                       "app.cache"}
    users = snapshot["tables"]["public.users"]
    assert users["column_order"] == ["id", "email", "mood", "score", "doubled", "created_at"]
    assert users["columns"]["id"]["identity"] == "always"
    assert users["columns"]["doubled"]["generated"] == "(id * 2) STORED"
    assert users["columns"]["created_at"]["default"] == "'2026-01-01 00:00:00+00'::timestamp with time zone"
    assert users["constraints"] == {"users_pkey": "PRIMARY KEY (id)", "users_email_key": "UNIQUE (email)",
                                    "users_email_check": "CHECK ((email <> ''::text))"}
    assert users["options"] == ["fillfactor=90"]
    assert snapshot["tables"]["app.cache"]["unlogged"] is True
    assert snapshot["tables"]["public.events_2026"]["inherits"] == ["public.events"]
    assert set(snapshot["indexes"]) == {"public.idx_orders_user"}   # constraint indexes are the constraints
    assert snapshot["types"]["app.mood"] == {"kind": "enum", "labels": ["happy", "sad"]}
    assert snapshot["types"]["public.positive"]["constraints"] == {"positive_check": "CHECK ((VALUE > 0))"}
    assert snapshot["types"]["public.address"]["attributes"]["zip"]["collation"] == '"C"'
    assert snapshot["types"]["public.float_range"] == {"kind": "range", "subtype": "double precision"}
    assert snapshot["views"]["public.order_counts"]["kind"] == "materialized view"
    assert set(snapshot["functions"]) == {"public.touch()", "public.add_one(integer)", "app.noop()"}
    assert snapshot["sequences"]["app.tickets"]["increment"] == 5
    assert snapshot["tables"]["public.orders"]["triggers"]["orders_touch"]["status"] == "enabled"


def test_data_and_sequence_values_are_not_schema(conn):
    run(conn, RICH_SCHEMA)
    before = take_snapshot(conn)

    run(conn, "INSERT INTO users (email) VALUES ('a@example.com'); SELECT nextval('app.tickets');"
              "REFRESH MATERIALIZED VIEW order_counts; ANALYZE users;")

    assert described(before, take_snapshot(conn)) == []


def test_the_tools_own_tables_are_left_out(conn):
    empty = take_snapshot(conn)

    db.ensure_schema_table(conn)
    ensure_snapshot_table(conn)
    record_snapshot(conn, ["v1"], empty)

    assert take_snapshot(conn) == empty
    assert empty["tables"] == {} and empty["indexes"] == {} and empty["sequences"] == {}


def test_objects_an_extension_owns_are_described_by_the_extension(conn):
    before = take_snapshot(conn)

    run(conn, "CREATE EXTENSION hstore")

    after = take_snapshot(conn)
    assert described(before, after) == [f"extension hstore added (version {after['extensions']['hstore']['version']})"]


def test_a_snapshot_inside_a_transaction_sees_it_and_leaves_it_and_the_session_as_they_were(db_url):
    connection = psycopg2.connect(db_url)
    try:
        with connection.cursor() as cur:
            cur.execute("SET search_path TO public, pg_catalog; SET TimeZone TO 'Asia/Tokyo'")
            connection.commit()
            cur.execute("CREATE TABLE pending_change (id int)")

            snapshot = take_snapshot(connection)

            cur.execute("SELECT current_setting('search_path'), current_setting('TimeZone')")
            assert cur.fetchone() == ("public, pg_catalog", "Asia/Tokyo")
            connection.commit()
        assert "public.pending_change" in snapshot["tables"]
        assert "pending_change" in {r[0] for r in query(db_url, "SELECT tablename FROM pg_tables")}
    finally:
        connection.close()


def test_plans_read_only_connection_can_take_a_snapshot_and_find_no_record(conn, db_url):
    run(conn, RICH_SCHEMA)
    read_only = db.connect(db_url, read_only=True)
    try:
        assert take_snapshot(read_only) == take_snapshot(conn)
        assert load_last_snapshot(read_only) is None
    finally:
        read_only.close()


def test_a_recorded_snapshot_loads_back_equal_and_the_newest_wins(conn):
    assert load_last_snapshot(conn) is None  # no table yet: nothing recorded, nothing created
    assert query_table_exists(conn) is False
    run(conn, USERS)
    first = take_snapshot(conn)
    ensure_snapshot_table(conn)
    record_snapshot(conn, ["20260101_000000_a"], first)
    run(conn, "ALTER TABLE users ADD COLUMN status text")
    second = take_snapshot(conn)

    record_snapshot(conn, ["20260101_000000_a", "20260102_000000_b"], second)

    assert load_last_snapshot(conn) == second
    with conn.cursor() as cur:
        cur.execute("SELECT applied_versions, schema_hash FROM schema_migrations_snapshots ORDER BY id")
        assert cur.fetchall() == [(["20260101_000000_a"], snapshot_hash(first)),
                                  (["20260101_000000_a", "20260102_000000_b"], snapshot_hash(second))]


def test_drift_is_what_changed_since_the_snapshot_recorded_with_the_last_migration(db_url):
    connection = psycopg2.connect(db_url)
    try:
        assert detect_schema_drift(connection) is None  # nothing recorded yet: nothing to compare with
        with connection.cursor() as cur:
            cur.execute(USERS)  # a migration's SQL, its snapshot recorded in the same transaction
            record_current_snapshot(connection, ["20260101_000000_a"])
        connection.commit()
        assert detect_schema_drift(connection) == []
        with connection.cursor() as cur:
            cur.execute("CREATE INDEX idx_hotfix ON users (email)")  # by hand, out of band
        connection.commit()

        assert [c.describe() for c in detect_schema_drift(connection)] == \
            ["index idx_hotfix added (on users USING btree (email))"]
    finally:
        connection.close()


def query_table_exists(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations_snapshots') IS NOT NULL")
        return cur.fetchone()[0]


def test_no_false_drift_after_apply_rollback_and_reapply_cycles(conn, db_url, migrations_dir, run_script):
    directory = migrations_dir({
        "20260101_000000_rich.sql": migration(RICH_SCHEMA, "DROP SCHEMA app CASCADE; DROP TABLE events, orders, "
                                              "users CASCADE; DROP TYPE address, float_range; DROP DOMAIN positive;"
                                              "DROP FUNCTION touch(), add_one(integer);"),
        "20260102_000000_more.sql": migration("ALTER TABLE users ADD COLUMN nickname text;"
                                              "CREATE INDEX idx_users_nickname ON users (nickname);",
                                              "ALTER TABLE users DROP COLUMN nickname;")})
    apply = ("apply", "--allow-risk", "--migrations-dir", str(directory))  # the fixtures add indexes plainly
    rollback = ("rollback", "--migrations-dir", str(directory))
    assert run_script(*apply, db_url=db_url).returncode == 0
    applied = take_snapshot(conn)

    for rollbacks in (1, 2, 1, 2):
        for _ in range(rollbacks):
            assert run_script(*rollback, db_url=db_url).returncode == 0
        assert run_script(*apply, db_url=db_url).returncode == 0
        assert described(applied, take_snapshot(conn)) == []

    assert canonical_json(take_snapshot(conn)) == canonical_json(applied)
