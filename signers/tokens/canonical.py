"""Canonical JSON for hashing: RFC 8785 (JCS), through the maintained `rfc8785` package.

A hash another implementation must reproduce (an action token's ``params_hash``, an audit
record's ``record_hash``) has to come from one agreed serialisation. JCS fixes member order
(UTF-16 code units), number formatting (ECMAScript) and the integer range (at most 2**53 - 1
in magnitude, so every JavaScript or Go verifier reads the same number).
"""

from __future__ import annotations

from typing import Any

import rfc8785

from ..errors import ConfigError

__all__ = ["canonical_json"]


def canonical_json(value: Any) -> bytes:
    """`value` serialised per RFC 8785 as UTF-8 bytes.

    Raises ConfigError for what JCS cannot represent: NaN or infinite floats, integers
    beyond +/-(2**53 - 1) (hash those as strings), non-string object keys and other types.
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as e:
        raise ConfigError(f"value is not RFC 8785 serialisable: {type(e).__name__}: {str(e)[:120]}") from e
