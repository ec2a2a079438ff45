"""Helpers of the experience tests: a fresh copy of the repository, as someone who just cloned it has it."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import ROOT, database_url

# What a fresh clone does not have: local state, caches, and the tests themselves.
NOT_IN_A_CLONE = shutil.ignore_patterns(".venv", ".pgdata", ".git", ".demo", ".demo-usage", ".hypothesis", ".env",
                                        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "tests",
                                        "bench")
SKILL_NAME = "database-migration-assistant"


def copy_of_repository(parent: Path, name: str = SKILL_NAME) -> Path:
    """Copy the repository's files into parent/name, the way a fresh clone has them, and return that folder."""
    target = parent / name
    shutil.copytree(ROOT, target, ignore=NOT_IN_A_CLONE, symlinks=True)
    return target


def clean_environment(**extra: str) -> dict[str, str]:
    """Return this process's environment without anything that points the tool at a database, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DB_URL", "DEMO_DB_URL", "KEEP", "YES", "NO_COLOR"} and not k.startswith("MIGRATIONS_")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def module_databases(pg_server: str) -> Iterator[Callable[[], str]]:
    """Yield a factory of fresh databases shared by one module's tests; drop them all at the end."""
    names: list[str] = []
    admin = psycopg2.connect(pg_server)
    admin.autocommit = True

    def create() -> str:
        name = "x_" + uuid.uuid4().hex[:12]
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return database_url(pg_server, name)
    try:
        yield create
    finally:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """Yield a private temporary folder, removed afterwards.

    Not pytest's tmp_path: pytest prunes old numbered folders of other pytest runs of the same user, and a copy
    of the repository must live as long as the servers and virtualenvs started in it.
    """
    folder = Path(tempfile.mkdtemp(prefix="experience-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def module_scratch_dir() -> Iterator[Path]:
    """Yield a private temporary folder shared by one module's tests, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="experience-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
