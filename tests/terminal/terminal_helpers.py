"""Helpers of the terminal-output tests: one database per module (import module_db into the test module), and the
scripts run through pipes or on a pseudo-terminal."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SCRIPTS, fresh_database, query  # noqa: F401  (query: re-exported to the tests)


@pytest.fixture(scope="module")
def module_db(pg_server: str) -> Iterator[str]:
    """Yield a database shared by the tests of one module (each test uses its own history schema or resets it)."""
    with fresh_database(pg_server, "term_") as url:
        yield url


def script_path(name: str) -> Path:
    return SCRIPTS / ("generate_migration.py" if name == "generate" else f"{name}_migrations.py")


def clean_env(db_url: str | None, env: dict[str, str] | None = None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k not in ("DB_URL", "NO_COLOR", "MIGRATIONS_REQUIRE_PLAN_ID")}
    if db_url:
        full["DB_URL"] = db_url
    full.update(env or {})
    return full


def run(name: str, *args: str, db_url: str | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a script with stdout and stderr on pipes (not a terminal)."""
    return subprocess.run([sys.executable, str(script_path(name)), *args], capture_output=True, text=True,
                          env=clean_env(db_url, env), cwd=cwd, timeout=60)


def run_in_pty(name: str, *args: str, db_url: str | None = None, env: dict[str, str] | None = None,
               cwd: Path | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run a script with stdout and stderr on one pseudo-terminal; return its exit code and everything it wrote."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, str(script_path(name)), *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, cwd=cwd,
                            env=clean_env(db_url, {"PYTHONIOENCODING": "utf-8", "TERM": "xterm", **(env or {})}))
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def migration_files(directory: Path, count: int, prefix: str = "t", start: int = 1) -> list[str]:
    """Write `count` small reversible migrations; return their versions."""
    directory.mkdir(parents=True, exist_ok=True)
    versions = []
    for n in range(start, start + count):
        version = f"2026{(n - 1) // 28 + 1:02d}{(n - 1) % 28 + 1:02d}_000000_{prefix}{n}"
        (directory / f"{version}.sql").write_text(
            f"-- DIRECTION: up\nCREATE TABLE {prefix}{n} (id int);\n-- DIRECTION: down\nDROP TABLE {prefix}{n};\n")
        versions.append(version)
    return versions


