"""``keyplane conformance run ...`` (placeholder until the harness lands)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Adds no command yet."""
