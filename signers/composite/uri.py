"""The ``composite:`` key URI: a variant and the URIs (or keyplane.toml names) of its two halves.

    composite:MLDSA65-Ed25519-SHA512?mldsa=<key URI or name>&classical=<key URI or name>

Each half's URI is percent-encoded as a query value (``?`` ``&`` ``;`` ``=`` inside it escaped),
so any back end's URI nests unchanged; `composite_uri` writes one. A store URI has no variant
and names the two stores: ``composite:?mldsa=<store URI>&classical=<store URI>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from signers.errors import ConfigError
from signers.uri import parse_uri

from .variants import CompositeAlgorithm

__all__ = ["SCHEME", "CompositeURI", "composite_uri", "parse_composite_uri"]

SCHEME = "composite"
_HALVES = ("mldsa", "classical")


@dataclass(frozen=True)
class CompositeURI:
    variant: CompositeAlgorithm | None  # None for a store URI
    mldsa: str
    classical: str


def composite_uri(variant: CompositeAlgorithm | str | None, mldsa: str, classical: str) -> str:
    """Format a composite key URI (or, with `variant` None, a store URI); secrets are never in the halves."""
    path = CompositeAlgorithm.parse(variant).value if variant is not None else ""
    halves = "&".join(f"{name}={quote(value, safe=':/@')}" for name, value in zip(_HALVES, (mldsa, classical),
                                                                                       strict=True))
    return f"{SCHEME}:{path}?{halves}"


def parse_composite_uri(text: str) -> CompositeURI:
    """ConfigError for anything but ``composite:[VARIANT]?mldsa=...&classical=...``."""
    uri = parse_uri(text)
    if uri.scheme != SCHEME:
        raise ConfigError(f"not a composite: URI (scheme {uri.scheme!r})")
    unknown = set(uri.query) - set(_HALVES)
    if unknown:
        raise ConfigError(f"composite: URI has unknown attribute(s) {sorted(unknown)}; it takes mldsa= and classical=")
    missing = [h for h in _HALVES if not uri.query.get(h)]
    if missing:
        raise ConfigError(f"composite: URI lacks {' and '.join(f'{m}=' for m in missing)} (the halves' URIs or names)")
    if uri.authority is not None:
        raise ConfigError("composite: URI takes no authority; write composite:VARIANT?mldsa=...&classical=...")
    variant = CompositeAlgorithm.parse(uri.path) if uri.path else None
    return CompositeURI(variant, uri.query["mldsa"], uri.query["classical"])
