"""The targets file parser, --shard and the --targets-query checks are pure: text and environment in, targets out;
errors never quote a line. One test runs a refused --targets-query against a real database."""
import pytest

from migration_core.errors import UsageError
from conftest import query, tables
from migration_core.fleet.targets import (Target, check_query_names, check_targets_query, parse_shard, parse_targets,
                                          select_shard, targets_from_query)


def test_names_urls_comments_and_variables_from_the_environment_are_read():
    text = ("# fleet\n\n"
            "eu-1 postgresql://app:${PW}@db1:5432/app   # first\n"
            "  postgresql://app:p#ss@db2/app\n")
    targets = parse_targets(text, {"PW": "s3cr et"})
    assert targets == [Target("eu-1", "postgresql://app:s3cr et@db1:5432/app"),
                       Target("db2/app", "postgresql://app:p#ss@db2/app")]


def test_a_socket_url_without_a_name_is_named_by_its_host_and_database():
    assert parse_targets("postgresql://u@/tenant_1?host=/run/pg\n", {})[0].name == "/run/pg/tenant_1"


@pytest.mark.parametrize("text, message", [
    ("a postgresql://h/db\na postgresql://h/db2\n", "the target name 'a' appears twice"),
    ("a postgresql://u:${PW}@h/db\n", "t:1: ${PW} is not set in the environment."),
    ("bad/../name? postgresql://h/db\n", "t:1: a NAME is letters"),
    ("a postgresql://u:pw%00x@h/db\n", "t:1: the URL contains %00"),
])
def test_bad_files_name_the_place_and_never_the_text(text, message):
    with pytest.raises(UsageError) as caught:
        parse_targets(text, {}, "t")
    assert caught.value.code == "bad_targets" and message in caught.value.message
    assert "pw@" not in caught.value.message


def test_shards_cover_every_target_exactly_once_in_a_stable_order():
    targets = [Target(f"t{i}", f"postgresql://h/db{i}") for i in range(10)]
    shards = [select_shard(targets, i, 3) for i in (1, 2, 3)]
    assert sorted(t.name for shard in shards for t in shard) == sorted(t.name for t in targets)
    assert [t.name for t in shards[0]] == ["t0", "t3", "t6", "t9"]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "1/0", "a/b", "1-3"):
        with pytest.raises(UsageError):
            parse_shard(bad)


@pytest.mark.parametrize("sql", [
    "SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%' ORDER BY datname",
    "WITH t AS (SELECT datname FROM pg_database) SELECT datname FROM t",
    "SELECT 'a' UNION ALL SELECT 'b';",
])
def test_one_select_is_a_targets_query(sql):
    check_targets_query(sql)  # no error


@pytest.mark.parametrize("sql, message", [
    ("COMMIT; CREATE TABLE x(); SELECT 'db'", "expected exactly one SELECT statement, found 3 statements."),
    ("SELECT 'a'; SELECT 'b'", "expected exactly one SELECT statement, found 2 statements."),
    ("", "expected exactly one SELECT statement, found 0 statements."),
    ("CREATE TABLE x()", "expected a SELECT statement, found CreateStmt."),
    ("WITH gone AS (DELETE FROM t RETURNING 'db') SELECT * FROM gone", "a WITH query of the SELECT inserts"),
    ("WITH n AS (INSERT INTO t VALUES ('db') RETURNING 1) SELECT 'db'", "a WITH query of the SELECT inserts"),
    ("SELECT 'db' INTO copied", "SELECT ... INTO creates a table"),
    ("SELEC 'db'", "the query does not parse"),
])
def test_anything_but_one_plain_select_is_refused_as_bad_targets(sql, message):
    with pytest.raises(UsageError) as caught:
        check_targets_query(sql)
    assert caught.value.code == "bad_targets" and message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_refused_query_is_refused_before_connecting():
    with pytest.raises(UsageError) as caught:  # port 1: a connection attempt would fail differently
        targets_from_query("postgresql://nobody@127.0.0.1:1/db", "COMMIT; SELECT 'db'")
    assert caught.value.code == "bad_targets"


@pytest.mark.parametrize("names, message", [
    (["tenant_1", "tenant\x1b[31m"], "--targets-query row 2: a database name used as a target name is letters"),
    (["bad\nname"], "--targets-query row 1: a database name"),
    (["tenant_1", None], "the query must return database names (text, not null)."),
])
def test_database_names_from_the_query_pass_the_targets_files_name_check(names, message):
    check_query_names(["tenant_1", "eu-1.db:5"])  # names the file accepts pass
    with pytest.raises(UsageError) as caught:
        check_query_names(names)
    assert caught.value.code == "bad_targets" and message in caught.value.message
    assert "\x1b" not in caught.value.message


def test_a_multi_statement_targets_query_exits_2_and_leaves_the_database_unchanged(db_url, run_script,
                                                                                    migrations_dir):
    sql = "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; CREATE TABLE escaped (); SELECT 'db'"
    before = query(db_url, "SELECT count(*) FROM pg_class")
    result = run_script("plan", "--targets-query", sql, "--migrations-dir", str(migrations_dir({})), db_url=db_url)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --targets-query: expected exactly one SELECT statement, found 4 ")
    assert "escaped" not in tables(db_url) and query(db_url, "SELECT count(*) FROM pg_class") == before
