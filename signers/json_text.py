"""A JSON object given as text or already parsed: one parser and one pair of refusals for every importer.

JWKs, key sets and documents arrive as JSON text from files, flags and the network, or as
mappings from callers that parsed them already; either way what follows wants a mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["json_object"]


def json_object(value: Mapping[str, Any] | str | bytes, what: str) -> Mapping[str, Any]:
    """`value` as a mapping, parsing it first when it is JSON text; `what` names it in the refusal.

    Raises ConfigError ("<what> is not JSON", "<what> must be a JSON object"): never a bare
    ValueError or RecursionError, whatever the text holds.
    """
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"{what} is not JSON") from e
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a JSON object")
    return value
