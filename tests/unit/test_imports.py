"""The pure layers stay pure: parsing, planning and output never import psycopg2 (issue 2, "Layout")."""
from __future__ import annotations

import subprocess
import sys

from conftest import SCRIPTS

PURE_IMPORT = ("import migration_core.parsing, migration_core.planning, migration_core.output, sys; "
               "assert 'psycopg2' not in sys.modules, 'psycopg2 was imported'")


def test_parsing_planning_and_output_import_without_psycopg2():
    result = subprocess.run([sys.executable, "-c", PURE_IMPORT], cwd=SCRIPTS, capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
