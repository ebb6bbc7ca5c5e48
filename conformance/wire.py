"""The line protocol between the harness and its processes (the worker, the concurrency child).

A process reads one JSON job on stdin and writes one JSON event per line on stdout,
each line marked with `PREFIX` so anything a back end prints is ignored. The parent
runs it as a `Supervised` process: events read on a thread with a deadline it moves, and
a death explained by `Supervised.death` (the signal, the deadline, or the exit status, with
faulthandler's "Fatal Python error" and the crashing stack or the last stderr lines).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .leaks import find_secret, redact

__all__ = ["PREFIX", "Supervised", "child_env", "emit", "keep_tail", "parse", "pump", "signal_name", "tail_text"]

PREFIX = "@@keyplane-conformance "


def emit(event: dict[str, Any]) -> None:
    """Write one event line (child side) and flush, so the parent sees it before any crash."""
    sys.stdout.write(PREFIX + json.dumps(event) + "\n")
    sys.stdout.flush()


def parse(line: str) -> dict[str, Any] | None:
    """The event on `line`, or None when the line is not ours."""
    if not line.startswith(PREFIX):
        return None
    event: dict[str, Any] = json.loads(line[len(PREFIX):])
    return event


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `env`, with our sys.path so the child imports what we can."""
    child = dict(os.environ)
    child.update(env)
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    extra = child.get("PYTHONPATH")
    child["PYTHONPATH"] = os.pathsep.join(paths + ([extra] if extra else []))
    child["PYTHONFAULTHANDLER"] = "1"
    return child


def pump(stream: Any, put: Callable[[str | None], None]) -> None:
    """Feed every line of `stream` to `put`, then None at end of file."""
    for raw in iter(stream.readline, b""):
        put(raw.decode("utf-8", "replace").rstrip("\n"))
    put(None)


def keep_tail(tail: list[str], line: str | None) -> None:
    if line is not None:
        tail.append(line)
        del tail[:-400]


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def tail_text(tail: list[str]) -> str:
    """What explains a death: faulthandler's "Fatal Python error" line and the top of the crashing
    thread's stack when there is one, else the last lines of stderr."""
    lines = [line.strip() for line in tail if line.strip()]
    fatal = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
    if fatal:
        start = fatal[-1]
        current = next((i for i in range(start, len(lines)) if lines[i].startswith(("Current thread", "Thread 0x"))),
                       None)
        keep = [lines[start]] + (lines[current: current + 5] if current is not None else [])
    else:
        keep = lines[-6:]
    return " | ".join(keep)[:800]


class Supervised:
    """``python -m MODULE`` fed one JSON job on stdin; its events read under a deadline the caller moves.

    `events()` yields each event until stdout closes, or stops with `hung` set when nothing
    arrives before `deadline` (a monotonic time; the caller moves it as steps begin);
    `finish()` kills a hung process, reaps it and returns its exit status; `death()` says
    why it stopped, with the end of its stderr (redacted, and reported to `leaks`, when it
    holds a secret).
    """

    def __init__(self, module: str, job: Mapping[str, Any], env: Mapping[str, str], limit: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=child_env(env))
        self.deadline = time.monotonic() + limit
        self.hung = False
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: list[str] = []
        threading.Thread(target=pump, args=(self.proc.stdout, self._lines.put), daemon=True).start()
        self._stderr = threading.Thread(target=pump, args=(self.proc.stderr, lambda s: keep_tail(self._tail, s)),
                                        daemon=True)
        self._stderr.start()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; its exit status says why

    def events(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
            except queue.Empty:
                self.hung = True
                return
            if line is None:
                return  # stdout closed: the process exited
            event = parse(line)
            if event is not None:
                yield event

    def finish(self) -> int:
        if self.hung:
            self.proc.kill()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._stderr.join(5)  # the last lines (a faulthandler traceback) arrive after the exit
        return rc

    def death(self, rc: int, limit: float, who: str, where: str, secrets: Sequence[str], leaks: list[str]) -> str:
        """Why the process stopped (`where`: " in <step>" or ""), plus the end of its stderr."""
        if self.hung:
            why = f"no answer within {limit:.0f} s (hung){where}; {who} killed"
        elif rc < 0:
            why = f"the {who} was killed by {signal_name(-rc)}{where}"
        else:
            why = f"the {who} exited with status {rc}{where}"
        text = tail_text(self._tail)
        if text and find_secret(text, secrets):
            leaks.append(f"stderr of a {who}: {redact(text, secrets)}")
            text = redact(text, secrets)
        return why + (f"; stderr: {text}" if text else "")
