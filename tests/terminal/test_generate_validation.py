"""generate never loads the database driver, and checks --up/--down with the PostgreSQL parser: a typo is exit 2
naming file:line, and no file is written."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import SCRIPTS
from terminal_helpers import run


def test_generate_does_not_import_psycopg2(tmp_path):
    probe = ("import runpy, sys; sys.argv = ['generate_migration.py', '--migrations-dir', sys.argv[1], '--name', 'x',"
             " '--up', 'CREATE TABLE x (id int);']\n"
             "try:\n    runpy.run_path('generate_migration.py', run_name='__main__')\n"
             "except SystemExit as end:\n    assert end.code == 0, end.code\n"
             "assert 'psycopg2' not in sys.modules, 'psycopg2 was imported'")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "m")], cwd=SCRIPTS, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "m").glob("*_x.sql"))) == 1


def test_a_syntax_error_in_up_or_down_is_exit_2_with_file_and_line_and_nothing_is_written(tmp_path):
    for args, line in ((("--up", "ALTER TABLE users ADD COLUM x int;"), 3),
                       (("--up", "CREATE TABLE a (id int);", "--down", "DROP TABEL a;"), 6)):
        result = run("generate", "--migrations-dir", str(tmp_path / "m"), "--name", "typo", *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
        assert f"_typo.sql:{line}: SQL syntax error" in result.stderr
        assert list((tmp_path / "m").glob("*.sql")) == []

    as_json = run("generate", "--migrations-dir", str(tmp_path / "m"), "--name", "typo", "--json",
                  "--up", "SELEC 1;")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["error"]["code"] == "invalid_migration"
    assert list((tmp_path / "m").glob("*.sql")) == []
