"""Find the state engine for a URI's scheme through the ``keyplane.stores`` entry points."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..uri import parse_uri
from .base import StateBackend

__all__ = ["STORE_GROUP", "open_state"]

STORE_GROUP = "keyplane.stores"
_ALIASES = {"postgres": "postgresql", "rediss": "redis"}


def _engine(scheme: str) -> Any:
    from importlib.metadata import entry_points  # lazy: keeps `import signers` free of importlib.metadata

    for ep in entry_points(group=STORE_GROUP):
        if ep.name == scheme:
            try:
                return ep.load()
            except ImportError as e:
                raise ConfigError(f"the {scheme}: state store could not load: {e}") from e
    known = sorted(ep.name for ep in entry_points(group=STORE_GROUP))
    raise ConfigError(f"no state store for scheme {scheme!r}; installed: {known}")


def open_state(uri: str) -> StateBackend:
    """The StateBackend for `uri` (sqlite:, postgresql:, redis:, or a plugin's scheme).

    Raises ConfigError for a malformed URI or unknown scheme, AuthenticationFailed for
    rejected credentials, BackendUnavailable when the engine cannot be reached in time.
    """
    scheme = parse_uri(uri).scheme
    backend = _engine(_ALIASES.get(scheme, scheme)).from_uri(uri)
    if not isinstance(backend, StateBackend):
        raise ConfigError(f"the {scheme}: state store plugin did not return a StateBackend")
    return backend
