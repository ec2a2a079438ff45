"""What a migrations directory may hold, as the scripts see it: the SQL that reaches the server is exactly the SQL a
reviewer saw (no control characters), and every entry named like a migration is one (no silently skipped
dangling links or directories).
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import history, migration, tables

FILE = "20260101_000000_a.sql"
LATER = "20260102_000000_b.sql"
GOOD = migration("CREATE TABLE a (id int);", "DROP TABLE a;")


# ---- control characters ----------------------------------------------------------------------------------

def test_a_nul_byte_makes_the_migration_invalid_instead_of_dropping_what_follows(db_url, migrations_dir,
                                                                                run_script):
    # Before: the driver sent the SQL up to the NUL; CREATE TABLE kept never ran, yet the migration was recorded.
    directory = migrations_dir()
    (directory / FILE).write_bytes(b"-- DIRECTION: up\nCREATE TABLE a (id int);\x00\nCREATE TABLE kept (id int);\n")

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_migration"
    assert error["message"].endswith(f"{FILE}:2: control character U+0000 (NUL) at column 25; a migration file may "
                                     "hold no control characters but tab and line breaks.")
    assert tables(db_url) == set() and history(db_url) == []


CONTROLS = {"bell": ("\x07", "U+0007 (BEL)"), "escape": ("\x1b", "U+001B (ESC)"), "delete": ("\x7f", "U+007F (DEL)")}


@pytest.mark.parametrize(("char", "named"), list(CONTROLS.values()), ids=list(CONTROLS))
def test_a_control_character_in_a_later_file_stops_apply_before_anything_runs(char, named, db_url, migrations_dir,
                                                                             run_script):
    directory = migrations_dir({FILE: GOOD, LATER: migration(f"CREATE TABLE b (id int);\nCOMMENT ON TABLE b IS "
                                                             f"'x{char}y';")})

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 2
    assert re.search(re.escape(f"{LATER}:3: control character {named} at column 25"), result.stderr), result.stderr
    assert tables(db_url) == set() and history(db_url) == []


def test_plan_reports_a_control_character_as_an_invalid_migration(db_url, migrations_dir, run_script):
    directory = migrations_dir({FILE: GOOD})
    (directory / LATER).write_bytes(b"-- DIRECTION: up\r\nSELECT 1;\r\nSELECT '\x0c';\r\n")

    result = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 2
    assert f"{LATER}:3: control character U+000C (FF) at column 9" in result.stderr
    assert tables(db_url) == set()


def test_tabs_and_crlf_line_breaks_are_fine(db_url, migrations_dir, run_script):
    directory = migrations_dir()
    (directory / FILE).write_bytes(b"-- DIRECTION: up\r\nCREATE TABLE a (\r\n\tid int\r\n);\r\n")

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert "a" in tables(db_url)


# ---- entries named like migrations -----------------------------------------------------------------------

def test_a_symbolic_link_to_a_migration_file_is_applied_like_the_file(db_url, migrations_dir, run_script, tmp_path):
    shared = tmp_path / "shared.sql"
    shared.write_text(GOOD)
    directory = migrations_dir()
    (directory / FILE).symlink_to(shared)

    result = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert history(db_url) == [(FILE[:-4], "up", "success")]
    assert "a" in tables(db_url)


def dangling_link(directory, name):
    (directory / name).symlink_to(directory / "moved_away.sql")
    return f"{name}: is a symbolic link to {directory / 'moved_away.sql'}, which does not exist."


def directory_entry(directory, name):
    (directory / name).mkdir()
    (directory / name / "inside.sql").write_text(GOOD)
    return f"{name}: is a directory, not a migration file."


@pytest.mark.parametrize("make", [dangling_link, directory_entry], ids=["dangling_symlink", "directory"])
@pytest.mark.parametrize("script", ["apply", "plan"])
def test_an_entry_named_like_a_migration_that_is_no_file_stops_everything(make, script, db_url, migrations_dir,
                                                                          run_script):
    directory = migrations_dir({FILE: GOOD})
    says = make(directory, LATER)

    result = run_script(script, "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 2
    assert says in result.stderr, result.stderr
    assert tables(db_url) == set() and history(db_url) == []
