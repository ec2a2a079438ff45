"""README is a front page: what it is, the two commands and how long the tests take, links that stay in the repo."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", ROOT / "SKILL.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "examples").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_no_page_links_outside_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    assert not re.findall(r"\b(?:https?|ftp)://\S+", text), "a link leaves the repository"
    for target in LINK.findall(text):
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{target} does not resolve inside the repository"


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_no_page_names_an_internal_issue_number(page: Path):
    text = page.read_text(encoding="utf-8")
    assert not re.findall(r"\bissues? #?\d+|\(#\d+\)|\bPR #?\d+", text, re.IGNORECASE)


def test_the_front_page_gives_the_two_commands_and_how_long_the_tests_take():
    two_commands = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in two_commands and "make test" in two_commands
    assert re.search(r"make test.*about \d+ minutes", two_commands)
    assert "## A 2-minute tour" in README and "## Quick start" in README


def test_the_front_page_links_every_reference_page():
    linked = set(LINK.findall(README))
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in linked, f"README does not link docs/{page.name}"
