"""scripts/setup.sh: a second run skips what is installed, and no run prints setuptools' editable banner."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT


def _stamp_matches(venv: Path) -> bool:
    stamp = venv / ".keyplane-installed"
    if not stamp.is_file():
        return False
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return stamp.read_text().splitlines()[:1] == [f"{ROOT} {digest}"]


def test_a_second_run_installs_nothing() -> None:
    venv = Path(sys.prefix)
    if not _stamp_matches(venv):
        # Running the install here would modify the interpreter this test runs in.
        print(f"{venv} was not installed by this checkout's scripts/setup.sh (no matching stamp): not re-run here")
        pytest.skip("the running venv was not made by scripts/setup.sh for this pyproject.toml")
    started = time.monotonic()
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), ""], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "KEYPLANE_VENV": str(venv)}, cwd=ROOT)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("setup: keyplane already installed in "), result.stdout
    assert "Editable installation" not in result.stdout + result.stderr
    assert elapsed < 30  # pip never ran: it alone takes longer to resolve the project


def test_the_install_step_filters_the_banner_and_keeps_pip_failures() -> None:
    text = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'PYTHONWARNINGS="ignore:Editable installation"' in text
    assert "status=${PIPESTATUS[0]}" in text  # a failing pip is not hidden behind the grep filter
