"""Shared test set-up: the session-wide service fixtures live in tests/fixtures/.

Each fixture module starts one real service (SoftHSM2 token, OpenBao dev server, moto
server, Azure / GCP emulators) once per test session and tears it down at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.files",
    "tests.fixtures.softhsm",
    "tests.fixtures.openbao",
    "tests.fixtures.moto",
    "tests.fixtures.azure",
    "tests.fixtures.gcp",
    "tests.fixtures.state_servers",
]

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"  # vendored: see tests/vectors/README.md
REPORTS = ROOT / "docs" / "conformance-reports"  # the test run regenerates the published reports


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS}: the checkout is incomplete")
    return VECTORS


@pytest.fixture(scope="session")
def reports_dir() -> Path:
    REPORTS.mkdir(exist_ok=True)
    return REPORTS


# Lines tests want shown after the run (vector counts, report locations): appended via
# the `summary_lines` fixture, printed by pytest_terminal_summary even without -s.
_SUMMARY: list[str] = []


@pytest.fixture(scope="session")
def summary_lines() -> list[str]:
    return _SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SUMMARY:
        terminalreporter.section("keyplane summary")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
