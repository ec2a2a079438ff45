"""The version mapping of docs/switching.md, case by case: each source version maps on its own, in order (pure)."""
from __future__ import annotations

import pytest

from migration_core.adoption.versions import map_version
from migration_core.errors import UsageError

CASES = [
    ("timestamp", "dbmate", "20240101120000", "20240101_120000"),
    ("unix_time", "golang-migrate", "1700000000", "20231114_221320"),
    ("sequence", "golang-migrate", "1", "20000101_000001"),
    ("padded_sequence", "goose", "86400", "20000102_000000"),
    ("flyway_major", "flyway", "1", "20000102_000000"),
    ("flyway_minor", "flyway", "1.1", "20000102_000100"),
    ("flyway_patch_and_zero", "flyway", "2.0.5", "20000103_000005"),
    ("flyway_timestamp", "flyway", "20240101120000", "20240101_120000"),
]


@pytest.mark.parametrize("tool, source, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_source_version_maps_as_documented(tool, source, expected):
    assert map_version(tool, source) == expected


@pytest.mark.parametrize("tool, source", [("goose", "123456789012"), ("flyway", "1.2.3.4"), ("flyway", "1.1440")],
                         ids=["twelve_digits", "four_flyway_parts", "minutes_past_a_day"])
def test_a_version_of_no_documented_form_is_a_version_collision(tool, source):
    with pytest.raises(UsageError, match="cannot be mapped") as raised:
        map_version(tool, source)
    assert raised.value.code == "version_collision"
