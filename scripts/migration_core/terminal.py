"""The terminal: whether a stream is one, colour and symbols there only, and the live progress of a run.

Colour and symbols appear only on a TTY, and never with NO_COLOR (any non-empty value) or --no-color; pipes and
files get plain text. The live counter of apply and rollback is one line on stderr, rewritten in place while a run
goes on and erased before anything else is printed and when the run ends. Imports: stdlib, model, output.
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, TextIO

from . import output
from .model import StepEvent, StepFailed

COLOURS = {"ok": "32", "fail": "31;1", "warn": "33", "dim": "2", "bold": "1"}
SYMBOLS = {"ok": "✓", "fail": "✗", "warn": "!"}
REDRAW_S = 0.2      # the live line's elapsed time ticks at this pace
ERASE = "\r\x1b[2K"


def is_tty(stream: Any) -> bool:
    """Return whether the stream is a terminal (False for pipes, files and closed streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def colour_allowed(no_color: bool = False) -> bool:
    """Return False when NO_COLOR (any non-empty value) or --no-color asks for plain text, or TERM is dumb."""
    return not no_color and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class Style:
    """Paints text for one stream: ANSI colours and symbols on a TTY that allows colour, plain text elsewhere."""

    def __init__(self, stream: Any, no_color: bool = False) -> None:
        tty = is_tty(stream)
        self.colour = tty and colour_allowed(no_color)
        encoding = (getattr(stream, "encoding", "") or "").lower().replace("-", "")
        self.symbols = tty and encoding == "utf8"

    def paint(self, text: str, role: str) -> str:
        return f"\x1b[{COLOURS[role]}m{text}\x1b[0m" if self.colour else text

    def mark(self, role: str) -> str:
        """Return the symbol of a role followed by a space, on a terminal; nothing elsewhere."""
        return self.paint(SYMBOLS[role], role) + " " if self.symbols else ""


# The words of the human output that call for attention, at the start of their line (after any [n/N]).
ALARMS = re.compile(r"^(\s*(?:\[[ \d]+/\d+\] )?)(FAILED|DRIFT|MISSING|INVALID|SCHEMA\??|OUT OF ORDER)(?=\s)",
                    re.MULTILINE)


def highlight(text: str, style: Style) -> str:
    """Paint the alarm words of a command's human output (FAILED, DRIFT, ...) red, on a terminal that allows it."""
    if not style.colour:
        return text
    return ALARMS.sub(lambda m: m.group(1) + style.paint(m.group(2), "fail"), text)


class RunProgress:
    """What apply and rollback print as they go: one line per finished migration on stdout ([n/N], its time),
    notes on stderr, and on a terminal a live counter with the elapsed time on stderr.

    Called with a StepEvent or a note (a string), as running.execute_steps does; close() erases the live line.
    """

    def __init__(self, out: TextIO, err: TextIO, no_color: bool = False,
                 write: Any = lambda text, stream: print(text, file=stream, flush=True)) -> None:
        self.out, self.err, self.write = out, err, write
        self.style = Style(out, no_color)
        self.live = is_tty(err)
        self.started = time.monotonic()
        self.current: StepEvent | None = None
        self.shown = False
        self.lock = threading.Lock()
        self.ticker: threading.Thread | None = None
        self.stopped = threading.Event()

    def __call__(self, item: StepEvent | str) -> None:
        with self.lock:
            self.erase()
            if isinstance(item, StepEvent):
                self.event(item)
            else:
                self.write(item, self.err)
            self.draw()

    def event(self, event: StepEvent) -> None:
        if event.outcome is None:
            if event.index == 1:  # the run's clock starts with its first migration
                self.started = time.monotonic()
                self.start_ticker()
            self.current = event
            return
        self.current = None  # drawn again when the next migration starts
        if not isinstance(event.outcome, StepFailed):  # the failure is the final output's to tell
            self.write(output.step_line(event, self.style), self.out)

    def start_ticker(self) -> None:
        if not self.live or self.ticker is not None:
            return

        def tick() -> None:
            while not self.stopped.wait(REDRAW_S):
                with self.lock:
                    self.draw()
        self.ticker = threading.Thread(target=tick, name="progress", daemon=True)
        self.ticker.start()

    def draw(self) -> None:
        """Write the live line (stderr, a terminal only): the migration running, n/N, the elapsed time."""
        if not self.live or self.current is None or self.stopped.is_set():
            return
        event = self.current
        verb = "applying" if event.step.direction == "up" else "rolling back"
        line = f"{verb} [{event.index}/{event.total}] {event.step.version}  {time.monotonic() - self.started:.1f} s"
        try:
            self.err.write(ERASE + line[: terminal_width(self.err) - 1])
            self.err.flush()
            self.shown = True
        except (OSError, ValueError):
            self.live = False

    def erase(self) -> None:
        if self.shown:
            try:
                self.err.write(ERASE)
                self.err.flush()
            except (OSError, ValueError):
                pass
            self.shown = False

    def close(self) -> None:
        """Stop the ticker and erase the live line, so the final output starts on a clean line."""
        self.stopped.set()
        with self.lock:
            self.erase()
            self.current = None


def terminal_width(stream: Any, default: int = 100) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (AttributeError, ValueError, OSError):
        return default


_open: list[RunProgress] = []


def run_progress(out: TextIO, err: TextIO, no_color: bool, write: Any) -> RunProgress:
    """Return a RunProgress that finish() will close."""
    progress = RunProgress(out, err, no_color, write)
    _open.append(progress)
    return progress


def finish() -> None:
    """Close every live progress line (before the final output and on errors)."""
    while _open:
        _open.pop().close()
