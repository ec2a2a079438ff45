"""Helpers of the agent tests: run the demo agent as a person (or a CI job) would, with or without a model."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

DEMO = ROOT / "examples" / "demo_agent.py"
DROPPED = ("DB_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE",
           "ANTHROPIC_CONFIG_DIR", "ANTHROPIC_MODEL", "MIGRATIONS_REQUIRE_PLAN_ID")


def run_agent(db_url: str, migrations: Path, *args: str, stdin: str = "", api_url: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run examples/demo_agent.py; with api_url, a model drives it through that Messages API."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED} | {"DB_URL": db_url}
    if api_url:
        env |= {"ANTHROPIC_API_KEY": "sk-ant-test-key", "ANTHROPIC_BASE_URL": api_url}
    return subprocess.run([sys.executable, str(DEMO), "--migrations-dir", str(migrations), *args],
                          capture_output=True, text=True, env=env, input=stdin, timeout=timeout)


def migration_text(up: str, down: str) -> str:
    return f"-- DIRECTION: up\n{up}\n\n-- DIRECTION: down\n{down}\n"


def run_agent_in_process(monkeypatch, capsys, db_url: str, migrations: Path, *args: str, api_url: str,
                         answers: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the demo agent's main() in this process (the anthropic SDK imports once for the whole module, which
    keeps the error scenarios fast); same arguments, environment and result as run_agent with a model. answers:
    what the person types at each question, then the end of input."""
    for name in DROPPED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_URL", db_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api_url)
    monkeypatch.setattr(sys, "argv", [str(DEMO), "--migrations-dir", str(migrations), *args])
    typed = iter(answers)

    def person(prompt: str = "") -> str:
        print(prompt)
        answer = next(typed, None)
        if answer is None:
            raise EOFError
        return answer
    monkeypatch.setattr("builtins.input", person)
    monkeypatch.syspath_prepend(str(DEMO.parent))
    import demo_agent
    demo_agent.secrets.cache_clear()
    capsys.readouterr()
    code = demo_agent.main()
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(sys.argv, code, captured.out, captured.err)
