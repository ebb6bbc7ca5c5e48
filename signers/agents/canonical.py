"""RFC 8785 (JCS) canonical JSON and the ``sha256:<hex>`` digests built on it.

Receipts and trust inputs are hashed over JCS so another implementation (any language
with a JCS library) reproduces the same digest; the `rfc8785` package does the
serialisation (floats, escapes and key order as the RFC says). Bytes are hashed as given.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from ..errors import ConfigError

__all__ = ["canonical", "digest"]


def canonical(value: Any) -> bytes:
    """The RFC 8785 serialisation of `value`; ConfigError when it is not JSON (NaN, sets, objects...)."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"value is not RFC 8785 serialisable: {str(e)[:120]}") from e


def digest(value: Any) -> str:
    """``sha256:<hex>`` of `value`: raw bytes as they are, anything else as RFC 8785 JSON."""
    data = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else canonical(value)
    return "sha256:" + hashlib.sha256(data).hexdigest()
