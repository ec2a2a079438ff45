"""README's Quick start, copy-pasted line by line into a fresh copy of the repository, works against a real server."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, history, tables
from repo_copy import clean_environment, copy_of_repository
from repo_copy import module_databases, scratch_dir  # noqa: F401 (fixtures)

PLACEHOLDER = re.compile(r"<[^<>]*plan id[^<>]*>")
ASSIGNMENT = re.compile(r"^(export\s+)?[A-Za-z_][A-Za-z0-9_]*=")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_lines() -> list[str]:
    """Return the command lines of the shell blocks under README's "Quick start" heading, continuations joined."""
    section = README.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", section, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line.strip())
    return lines


def with_test_database(line: str, db_url: str) -> str:
    """Return the line with the example DB_URL value replaced by the test database's URL."""
    return re.sub(r'DB_URL="[^"]*"', f'DB_URL="{db_url}"', line)


def with_json(line: str) -> str:
    """Return the script call of the line with --json added right after the script (before any comment)."""
    return re.sub(r"(\.py)(\s|$)", r"\1 --json\2", line, count=1)


def test_the_quick_start_runs_the_venvs_interpreter_after_creating_it():
    lines = quick_start_lines()
    venv_line = next(i for i, line in enumerate(lines) if "-m venv .venv" in line)
    later = lines[venv_line + 1:]
    assert any(line.startswith(".venv/bin/python scripts/") for line in later)
    assert not [line for line in later if re.match(r"(python3?|pip3?)\s", line)], "plain python after the venv"
    assert "--migrations-dir" in " ".join(later), "the Quick start must point at the user's migrations folder"


def test_readme_says_to_clone_into_the_folder_named_like_the_skill():
    assert "folder named `database-migration-assistant`" in README


def test_the_quick_start_works_line_by_line_in_a_fresh_copy(scratch_dir: Path, module_databases):  # noqa: F811
    db_url = module_databases()
    repo = copy_of_repository(scratch_dir)
    env = clean_environment()
    state: list[str] = []  # assignments and exports of earlier lines: the shell session the person typed into
    last_dry_run = ""
    for line in quick_start_lines():
        line = with_test_database(line, db_url)
        if PLACEHOLDER.search(line):
            preview = run_line(with_json(last_dry_run), state, repo, env)
            assert preview.returncode == 0, preview.stdout + preview.stderr
            line = PLACEHOLDER.sub(json.loads(preview.stdout)["plan_id"], line)
        done = run_line(line, state, repo, env)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{line}\n{output}"
        assert "Traceback" not in output, f"{line}\n{output}"
        if ASSIGNMENT.match(line):
            state.append(line)
        if "--dry-run" in line:
            last_dry_run = line
    # The migration was generated into the project's folder, applied, then rolled back: the database is as it was,
    # plus the history that says so.
    project = sorted((scratch_dir / "my-app" / "migrations").glob("*_create_notes.sql"))
    assert len(project) == 1 and not list((repo / "migrations").glob("*create_notes*"))
    assert tables(db_url) == {"schema_migrations"}  # and the snapshot table, which tables() leaves out
    assert [(direction, status) for _, direction, status in history(db_url)] == [("up", "success"),
                                                                                ("down", "success")]


def run_line(line: str, state: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one README line in bash after the assignments of the lines before it, in the copy of the repository."""
    script = "\n".join([*state, line])
    try:
        return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README line did not finish in 300 s: {line}")
