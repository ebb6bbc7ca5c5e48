"""Small input/output helpers shared by the command modules."""

from __future__ import annotations

import base64
import binascii
import os
import sys
from pathlib import Path

from ..errors import ConfigError

__all__ = ["default_store", "read_input", "read_signature"]


def read_input(path: str | None) -> bytes:
    """The message: a file, or standard input for ``-`` / nothing."""
    if path in (None, "-"):
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e


def read_signature(value: str) -> bytes:
    """A signature given as a file path (raw bytes or base64 text) or as base64 text inline."""
    candidate = Path(value)
    if candidate.is_file():
        data = candidate.read_bytes()
        try:
            return base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            return data
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError("--signature must be a file or base64 text") from e


def default_store(given: str | None) -> str:
    store = given or os.environ.get("KEYPLANE_STORE")
    if not store:
        raise ConfigError("no store given: use --store URI (or a store name from keyplane.toml) or set KEYPLANE_STORE")
    return store
