"""plan never builds a run's or a rarer command's result, so it never creates their record classes (results.py,
loaded by model on first use); apply and the other commands still find every record through model as before."""
from __future__ import annotations

import subprocess
import sys

from conftest import SCRIPTS

PLAN_PATH = """
import sys
from pathlib import Path
import migration_utils
from migration_core import commands, output, schema_check
from migration_core.model import Plan, PlanResult
result = PlanResult(Plan([], [], [], [], [], []), Path("migrations"), "0123456789ab")
output.to_human("plan", result), output.to_json("plan", result, None), output.run_error(result)
assert "migration_core.results" not in sys.modules, "plan created the records it never builds"
from migration_core.model import RunResult, StepDone, GenerateResult
from migration_core import model, results
assert model.RunResult is results.RunResult and RunResult.__module__ == "migration_core.results"
print(StepDone.__name__, GenerateResult.__name__)
"""


def test_plan_renders_without_creating_the_records_it_never_builds_which_model_still_exports():
    done = subprocess.run([sys.executable, "-c", PLAN_PATH], cwd=SCRIPTS, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "StepDone GenerateResult\n"


def test_an_unknown_model_name_is_still_an_attribute_error():
    done = subprocess.run([sys.executable, "-c", "from migration_core import model; model.NoSuchRecord"],
                          cwd=SCRIPTS, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1 and "AttributeError: module 'migration_core.model' has no attribute 'NoSuchRecord'" \
        in done.stderr
