"""Run this project's own scripts against each target, one subprocess each, and read their JSON documents.

Why subprocesses and not threads: each script installs signal handlers and keeps per-process configuration (the
history schema, DB_URL), so several runs in one process would trample each other. The target's URL goes to the
child in its environment only (DB_URL), never on a command line where `ps` shows it; the child redacts it in
everything it prints.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from .stop import STOP_FILE_ENV
from .targets import Target

SCRIPTS = Path(__file__).resolve().parent.parent.parent
SCRIPT_FILES = {"plan": "plan_migrations.py", "apply": "apply_migrations.py", "rollback": "rollback_migrations.py"}
CHILD_TIMEOUT_S = 7 * 86_400            # a bound, never an endless wait: the runs' own timeouts come first
T = TypeVar("T")


@dataclass(frozen=True)
class ChildOutcome:
    """How one script run on one target ended: its exit code, its JSON document, how long it took."""

    exit_code: int
    document: dict[str, Any]
    duration_ms: float

    @property
    def error(self) -> dict[str, Any] | None:
        return self.document.get("error") if self.exit_code else None


def run_child(command: str, words: list[str], target: Target, stop_file: Path | None = None) -> ChildOutcome:
    """Run `<command>_migrations.py --json WORDS` with DB_URL=target.url; return its outcome."""
    env = {key: value for key, value in os.environ.items() if key not in ("DB_URL", STOP_FILE_ENV)}
    env["DB_URL"] = target.url
    if stop_file is not None:
        env[STOP_FILE_ENV] = str(stop_file)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(SCRIPTS / SCRIPT_FILES[command]), *words, "--json"],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return ChildOutcome(1, no_document(f"could not run {SCRIPT_FILES[command]}: {type(err).__name__}"),
                            elapsed_ms(started))
    code = done.returncode if done.returncode >= 0 else 1  # killed by a signal: a failure like any other
    return ChildOutcome(code, read_document(done.stdout, done.stderr, done.returncode, command), elapsed_ms(started))


def read_document(stdout: str, stderr: str, exit_code: int, command: str) -> dict[str, Any]:
    """Return the child's JSON document, or an error document when it printed none (a crash, a kill)."""
    try:
        document = json.loads(stdout)
        if isinstance(document, dict):
            return document
    except ValueError:
        pass
    last = (stderr.strip().splitlines() or [""])[-1][:300]
    return no_document(f"{SCRIPT_FILES[command]} exited {exit_code} without a JSON document"
                       + (f": {last}" if last else "."))


def no_document(message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": "unexpected_error", "message": message,
                                   "hint": "Run the script on that target alone to see what happened."}}


def elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


class ProgressLine:
    """The live line on a TTY: `[37/50 targets] 2 running, 0 failed, 1m12s`; silent anywhere else."""

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.stream = total, stream
        self.finished = self.running = self.failed = 0
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> ProgressLine:
        if self.stream is not None:
            self.thread = threading.Thread(target=self.tick, name="fleet-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(2)
            self.stream.write("\r\033[K")  # type: ignore[union-attr]
            self.stream.flush()  # type: ignore[union-attr]

    def tick(self) -> None:
        while not self.stop.wait(0.5):
            self.stream.write("\r\033[K" + self.line())  # type: ignore[union-attr]
            self.stream.flush()  # type: ignore[union-attr]

    def line(self) -> str:
        seconds = int(time.monotonic() - self.started)
        took = f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
        return f"[{self.finished}/{self.total} targets] {self.running} running, {self.failed} failed, {took}"

    def begin(self) -> None:
        with self.lock:
            self.running += 1

    def end(self, failed: bool) -> None:
        with self.lock:
            self.running -= 1
            self.finished += 1
            self.failed += failed


def run_each(items: Iterable[T], work: Callable[[T], Any], parallel: int, progress: ProgressLine,
             failed: Callable[[Any], bool], keep_going: Callable[[], bool] = lambda: True) -> dict[int, Any]:
    """Run work(item) for the items in order, at most `parallel` at a time; return {index: outcome}.

    A new item starts only while keep_going() holds (checked after each finish): the rollout stops starting
    targets at the first failure, while those already running end on their own.
    """
    outcomes: dict[int, Any] = {}
    queue = list(enumerate(items))
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="fleet") as pool:
        running: dict[Future[Any], int] = {}

        def start(index: int, item: T) -> None:
            progress.begin()
            running[pool.submit(work, item)] = index

        while queue or running:
            while queue and len(running) < parallel and keep_going():
                start(*queue.pop(0))
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                outcomes[index] = future.result()
                progress.end(failed(outcomes[index]))
    return outcomes
