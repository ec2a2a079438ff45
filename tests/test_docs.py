"""README.md and SKILL.md document every flag, exit code and error code the scripts have."""
import re

import pytest

from conftest import ROOT, SCRIPTS

# README is the front page; the reference lives in docs/, one page per topic: together they must cover everything.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
SKILL = (ROOT / "SKILL.md").read_text(encoding="utf-8")
SOURCES = "\n".join(p.read_text(encoding="utf-8") for p in (SCRIPTS / "migration_core").rglob("*.py")) + \
    (SCRIPTS / "migration_tools.py").read_text(encoding="utf-8")


def error_codes_in_source() -> set[str]:
    """Every JSON error code the code can produce: code="..." arguments and class attributes."""
    return set(re.findall(r'\bcode\s*=\s*"([a-z_]+)"', SOURCES)) - {"error", "refused", "config_error"} | \
        set(re.findall(r'tool_error\(name, "([a-z_]+)"', SOURCES))


def flags_of(script: str) -> set[str]:
    return set(re.findall(r'"(--[a-z-]+)"', (SCRIPTS / script).read_text(encoding="utf-8")))


def test_error_codes_are_found_in_the_source():
    assert {"drift_detected", "plan_changed", "lock_timeout", "connection_lost", "auth_failed"} <= \
        error_codes_in_source()


@pytest.mark.parametrize("code", sorted(error_codes_in_source()))
def test_every_error_code_is_documented_in_readme_and_skill(code):
    assert f"`{code}`" in README
    assert f"`{code}`" in SKILL


@pytest.mark.parametrize("script", ["plan_migrations.py", "apply_migrations.py", "rollback_migrations.py",
                                    "generate_migration.py", "migration_utils.py", "lint_migrations.py",
                                    "verify_migrations.py"])
def test_every_flag_is_documented_in_readme(script):
    for flag in flags_of(script):
        assert f"`{flag}" in README or f" {flag}" in README, f"{flag} of {script} is not in README.md"


@pytest.mark.parametrize("exit_code", ["0", "1", "2", "3", "4"])
def test_every_exit_code_is_in_the_readme_table(exit_code):
    assert re.search(rf"^\| {exit_code} \|", README, re.MULTILINE)


def test_skill_front_matter_is_valid():
    match = re.match(r"^---\n(.*?)\n---\n", SKILL, re.DOTALL)
    assert match, "SKILL.md must start with YAML front matter"
    fields = dict(line.split(":", 1) for line in match.group(1).splitlines())
    assert fields["name"].strip() == "database-migration-assistant"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", fields["name"].strip()) and len(fields["name"].strip()) <= 64
    description = fields["description"].strip()
    assert 0 < len(description) < 1024


def test_readme_gives_the_two_commands_and_ci_runs_its_test_command():
    assert "make demo" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1] == "make test"
