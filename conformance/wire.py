"""The line protocol between the harness and its processes (the worker, the concurrency child).

A process reads one JSON job on stdin and writes one JSON event per line on stdout,
each line marked with `PREFIX` so anything a back end prints is ignored. The parent
reads with `pump` on a thread and explains a death with `signal_name` and `tail_text`
(faulthandler's "Fatal Python error" and the crashing stack, or the last stderr lines).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PREFIX", "child_env", "emit", "keep_tail", "parse", "pump", "signal_name", "tail_text"]

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
