"""The targets file parser and --shard are pure: text and environment in, targets out; errors never quote a line."""
import pytest

from migration_core.errors import UsageError
from migration_core.fleet.targets import Target, parse_shard, parse_targets, select_shard


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
