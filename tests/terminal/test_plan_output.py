"""plan reads at a glance at scale: the first pending migrations, then "and N more" (--verbose: each), repeated
findings once with their count; every invalid file in one run; a long schema difference shown before and after in
full, wrapped."""
from __future__ import annotations

import json

from terminal_helpers import migration_files, module_db, query, run  # noqa: F401  (module_db: a fixture)


def test_plan_shows_the_first_ten_pending_and_counts_the_rest_unless_verbose(module_db, tmp_path):
    versions = migration_files(tmp_path / "m", 40, prefix="pl")
    args = ("--migrations-dir", str(tmp_path / "m"), "--history-schema", "planout")

    short = run("plan", *args, db_url=module_db)
    assert short.returncode == 0, short.stderr
    pending = [line for line in short.stdout.splitlines() if line.startswith("  pending ")]
    assert [line.split()[1] for line in pending] == versions[:10]
    assert f"  ... and 30 more pending, reversible, without findings of their own: {versions[10]} to {versions[-1]}" \
           " (--verbose lists each)" in short.stdout
    # Every down drops a table: one grouped finding with its hint, not forty.
    assert short.stdout.count("rollback_drops_data") == 1 and short.stdout.count("hint:") == 1
    assert "×40" in short.stdout
    assert len(short.stdout.splitlines()) < 25

    verbose = run("plan", *args, "--verbose", db_url=module_db)
    assert [line.split()[1] for line in verbose.stdout.splitlines() if line.startswith("  pending ")] == versions
    assert "more pending" not in verbose.stdout
    as_json = json.loads(run("plan", *args, "--json", db_url=module_db).stdout)
    assert [p["version"] for p in as_json["pending"]] == versions  # JSON always lists everything


def test_every_invalid_file_is_reported_in_one_run(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20260101_000000_empty.sql").write_text("-- DIRECTION: up\n")
    (directory / "20260102_000000_nomarker.sql").write_text("SELECT 1;\n")
    (directory / "2026_badname.sql").write_text("-- DIRECTION: up\nSELECT 1;\n")
    (directory / "20260103_000000_fine.sql").write_text("-- DIRECTION: up\nSELECT 1;\n")

    human = run("plan", "--migrations-dir", str(directory), db_url="postgresql://nobody@127.0.0.1:1/none")
    assert human.returncode == 2 and human.stdout == ""
    lines = human.stderr.splitlines()
    assert lines[0] == "error: 3 migration files are invalid:"
    assert [line.split(":")[0].split("/")[-1] for line in lines[1:4]] == [
        "20260101_000000_empty.sql", "20260102_000000_nomarker.sql", "2026_badname.sql"]
    assert lines[4].startswith("Hint: ")

    document = json.loads(run("apply", "--migrations-dir", str(directory), "--json",
                              db_url="postgresql://nobody@127.0.0.1:1/none").stdout)
    assert document["error"]["code"] == "invalid_migration"
    assert len(document["error"]["files"]) == 3 and all(f["message"] and f["hint"] for f in document["error"]["files"])


def test_a_long_view_definition_that_drifted_is_shown_before_and_after_in_full(module_db, tmp_path):
    directory = tmp_path / "v"
    directory.mkdir()
    columns = ", ".join(f"{n} AS column_number_{n}" for n in range(30))
    (directory / "20260101_000000_view.sql").write_text(
        f"-- DIRECTION: up\nCREATE VIEW wide_view AS SELECT {columns};\n-- DIRECTION: down\nDROP VIEW wide_view;\n")
    args = ("--migrations-dir", str(directory), "--history-schema", "viewdrift")
    assert run("apply", *args, db_url=module_db).returncode == 0
    query(module_db, f"CREATE OR REPLACE VIEW wide_view AS SELECT {columns.replace('29 AS', '2929 AS')}")

    plan = run("plan", *args, db_url=module_db)
    assert plan.returncode == 3
    lines = plan.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  SCHEMA   view wide_view"))
    assert lines[start + 1].lstrip().startswith("before:")
    after = next(i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("after:"))
    before_text = " ".join(line.strip() for line in lines[start + 1:after]).removeprefix("before:")
    after_text = " ".join(line.strip() for line in lines[after:after + 20] if not line.startswith(("Live", "Plan")))
    assert "29 AS column_number_29" in before_text and "2929 AS column_number_29" in after_text
    assert max(len(line) for line in lines[start + 1:after]) <= 100
    query(module_db, "DROP VIEW wide_view")
