"""``keyplane ca ...``: placeholder until its issue lands."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Adds no command yet."""
