"""The risk corpus: realistic migrations in tests/data/risk/ and the findings each must produce (issue 5).

expected.json maps each file to the sorted rule ids of its findings that are not silenced.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration_core import parsing
from migration_core.risk import RULES_BY_ID, lint

CORPUS = Path(__file__).resolve().parent.parent / "data" / "risk"
EXPECTED: dict[str, list[str]] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def test_the_corpus_holds_at_least_40_valid_migrations_and_names_each_in_expected_json():
    files = parsing.list_migration_files(CORPUS)

    assert len(files) >= 40
    assert sorted(EXPECTED) == [path.name for path in files]


def test_the_corpus_exercises_every_rule_that_fires_on_postgresql_18_and_has_clean_migrations_too():
    found = {rule for rules in EXPECTED.values() for rule in rules}

    # ADD VALUE fails in a transaction only before 12: test_risk_rules and test_lint cover it on 11.
    assert found == set(RULES_BY_ID) - {"adding_enum_value_in_transaction"}
    assert sum(1 for rules in EXPECTED.values() if not rules) >= 10


@pytest.fixture(scope="module")
def corpus_findings() -> dict[str, list[str]]:
    result = lint(CORPUS)
    return {m.path.name: sorted(f.rule for f in m.findings if not f.silenced) for m in result.migrations}


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_each_corpus_migration_yields_exactly_its_expected_findings(file_name, corpus_findings):
    assert corpus_findings[file_name] == EXPECTED[file_name]


def test_silenced_corpus_findings_keep_their_reason():
    result = lint(CORPUS)
    silenced = {(m.path.name, f.rule): f.ignored_reason for m in result.migrations for f in m.findings if f.silenced}

    assert silenced == {
        ("20240210_090000_index_tiny_settings_table.sql", "adding_index_non_concurrently"):
            "settings holds a dozen rows",
        ("20240219_090000_orders_archived_flag_silenced.sql", "update_without_where"):
            "orders was emptied by 20240206 and is read-only until deploy",
    }
