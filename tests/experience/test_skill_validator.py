"""The skill passes the Agent Skills reference validator and tells an agent how to use it where it is installed."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from repo_copy import SKILL_NAME, clean_environment, copy_of_repository

SKILL = (ROOT / "SKILL.md").read_text(encoding="utf-8")
SCRIPT_CALL = re.compile(r"scripts/(plan|apply|rollback|generate|lint|verify)_migrations?\.py")


def validate(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run the reference validator (`agentskills validate`, from skills-ref) on folder."""
    agentskills = Path(sys.executable).with_name("agentskills")
    assert agentskills.exists(), "skills-ref is not installed: .venv/bin/python -m pip install -r requirements-dev.txt"
    return subprocess.run([str(agentskills), "validate", str(folder)], capture_output=True, text=True,
                          env=clean_environment(), timeout=60)


@pytest.fixture(scope="module")
def installed_skill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a copy of the bundle in a skills folder, under the skill's name, as an agent host installs it."""
    return copy_of_repository(tmp_path_factory.mktemp("skills"))


def test_the_reference_validator_accepts_the_skill_in_a_folder_named_like_it(installed_skill: Path):
    done = validate(installed_skill)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Valid skill: {installed_skill}" in done.stdout


def test_the_reference_validator_refuses_the_skill_under_another_folder_name(installed_skill: Path, tmp_path: Path):
    elsewhere = tmp_path / "migration-assistant-main"
    elsewhere.mkdir()
    (elsewhere / "SKILL.md").write_text((installed_skill / "SKILL.md").read_text(encoding="utf-8"), encoding="utf-8")
    done = validate(elsewhere)
    assert done.returncode == 1
    assert f"must match skill name '{SKILL_NAME}'" in done.stderr


def test_the_skill_states_what_it_needs_to_run():
    front_matter = SKILL.split("\n---\n", 1)[0]
    compatibility = re.search(r"^compatibility: (.+)$", front_matter, re.MULTILINE)
    assert compatibility, "SKILL.md needs a compatibility field"
    for need in ("Python 3.11", "psycopg2", "pglast", "PostgreSQL", "network"):
        assert need in compatibility.group(1)


def test_every_script_call_in_the_skill_is_by_the_skill_folders_path_with_the_users_migrations():
    calls = [line for line in SKILL.replace("\n   ", " ").splitlines() if SCRIPT_CALL.search(line)
             and '"$PY"' in line]
    assert len(calls) >= 6, calls
    for line in calls:
        assert re.search(r'"\$PY" "\$SKILL/scripts/\w+\.py" --migrations-dir "\$M"', line), line


def test_the_skill_tells_agents_to_require_the_plan_id_and_never_to_use_its_own_migrations():
    assert "export MIGRATIONS_REQUIRE_PLAN_ID=1" in SKILL
    assert "the folder that holds this SKILL.md" in SKILL
    assert re.search(r"never run the scripts without it", SKILL, re.IGNORECASE)
    assert 'never "$SKILL/migrations"' in SKILL
