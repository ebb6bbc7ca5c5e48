"""State engines for the fleet tests: one fixture per engine, and a parametrized `state`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signers.stores import StateBackend, open_state

ENGINES = ["sqlite", "postgresql", "redis"]
SHARED = ["postgresql", "redis"]


def state_uri(request: pytest.FixtureRequest, engine: str, tmp_path: Path) -> str:
    if engine == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_uri" if engine == "postgresql" else "redis_uri"))


@pytest.fixture(params=ENGINES)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    with open_state(state_uri(request, request.param, tmp_path)) as backend:
        yield backend


@pytest.fixture(params=SHARED)
def shared_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    with open_state(state_uri(request, request.param, tmp_path)) as backend:
        yield backend
