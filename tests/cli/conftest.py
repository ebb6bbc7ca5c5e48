"""CLI test helpers: run ``keyplane`` as a user does (a real process), and a store with keys in it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def keyplane(tmp_path: Path, file_store_uri: str) -> Run:
    """`keyplane(*args, stdin=..., env=...)`: the CLI in a child process, in `tmp_path`, with the store password set."""

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "signers.cli", *args], input=stdin, capture_output=True,
                              text=True, cwd=tmp_path, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})

    return run


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
