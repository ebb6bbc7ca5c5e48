"""A demo part that fails halfway (after the demo made its keys): the demo must still clean up."""

from __future__ import annotations

from typing import Any

from signers.errors import ConfigError


def run(ctx: Any) -> None:
    assert (ctx.directory / "keys").is_dir()
    raise ConfigError("made to fail")
