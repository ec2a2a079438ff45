"""Line numbers stay right in large files now that they are counted in one pass over a section: findings and
syntax errors thousands of statements down, and statements whose text spans several lines."""
from __future__ import annotations

import json
import random
from pathlib import Path

from migration_core.statements import LineCounter, parse_statements

ROWS = 5000  # each INSERT spans two lines (a newline inside its string)


def seed_file(tail: str) -> str:
    rows = "".join(f"INSERT INTO seed_data (id, name) VALUES ({i}, 'first\nsecond');\n" for i in range(ROWS))
    return ("-- MIGRATION: seed\n-- DIRECTION: up\nCREATE TABLE seed_data (id int, name text);\n" + rows + tail +
            "-- DIRECTION: down\nDROP TABLE seed_data;\n")


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_a_finding_after_thousands_of_multi_line_statements_names_its_line(migrations_dir, run_script):
    text = seed_file("CREATE INDEX idx_seed ON users (name);\n")
    directory = migrations_dir({"20240101_000000_seed.sql": text})
    result = run_script("lint", "--migrations-dir", str(directory), "--json")
    assert result.returncode == 3, result.stderr
    findings = {f["rule"]: f["line"] for f in json.loads(result.stdout)["migrations"][0]["findings"]}
    assert findings["adding_index_non_concurrently"] == line_of(text, "CREATE INDEX") == 2 * ROWS + 4
    assert findings["rollback_drops_data"] == line_of(text, "DROP TABLE")


def test_a_syntax_error_after_thousands_of_statements_names_its_line(migrations_dir, run_script):
    text = seed_file("CREATE TABEL oops (id int);\n")
    directory = migrations_dir({"20240101_000000_seed.sql": text})
    result = run_script("lint", "--migrations-dir", str(directory))
    assert result.returncode == 2
    assert f"20240101_000000_seed.sql:{line_of(text, 'CREATE TABEL')}: SQL syntax error" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_line_counter_agrees_with_counting_from_the_start_in_any_order():
    rng = random.Random(7)
    text = "".join(rng.choice(["a", "b", "\n", " "]) for _ in range(20_000))
    counter = LineCounter(text, 5)
    offsets = sorted(rng.randrange(len(text)) for _ in range(500)) + [rng.randrange(len(text)) for _ in range(200)]
    for offset in offsets:
        assert counter.line_at(offset) == 5 + text.count("\n", 0, offset)


def test_each_statement_of_a_section_gets_the_line_of_its_first_token():
    sql = "\n-- a comment\nSELECT 1;\n\n  SELECT\n2;   SELECT 3;\n/* x\ny */ SELECT 4;\n"
    statements = parse_statements(sql, 10, Path("m.sql"))
    assert [(s.sql.split()[-1], s.line) for s in statements] == [("1", 12), ("2", 14), ("3", 15), ("4", 17)]
