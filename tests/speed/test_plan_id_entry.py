"""The plan id hashes each applied row as json.dumps([version, checksum]); it is now written with json's own string
encoder and no dumps call per row (plan hashes every applied row on each run). The text, and so every plan id,
stays the same for any version and checksum, however odd."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migration_core import planning
from migration_core.model import HistoryRow


def row(version: str, checksum: str) -> HistoryRow:
    return HistoryRow(1, version, "name", checksum, datetime(2026, 1, 1, tzinfo=timezone.utc), "up", "success", None)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
@example("20260101_000000_a", "0f" * 32)
@example('quote " and backslash \\', "\x00\x1f\x7f é € \u2028 𝄞")
@example("\ud800", "\udfff")  # lone surrogates: json escapes them too
def test_an_applied_row_hashes_as_the_json_it_always_did(version, checksum):
    assert planning.applied_entry(row(version, checksum)) == json.dumps([version, checksum])


def test_the_plan_id_of_many_applied_rows_is_the_one_json_dumps_gives():
    applied = [row(f"20260101_{n:06d}_t{n}", f"{n:064x}") for n in range(300)]
    steps = [["20270101_000000_next", "up", "ab" * 32]]

    expected = json.dumps({"applied": [[r.version, r.checksum] for r in applied], "command": "apply",
                           "steps": steps, "target": None}, sort_keys=True)
    assert planning.plan_id_of("apply", applied, steps, None) == hashlib.sha256(expected.encode()).hexdigest()[:12]
