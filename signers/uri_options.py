"""One helper for what every back end checks in its URI: scheme, known attributes, typed values.

A back end declares the attributes it understands once and reads them typed::

    parsed, options = checked_uri(uri, schemes={"awskms"}, query={"region", "read-timeout"})
    timeout = options.number("read-timeout", 15.0, minimum=0.001, maximum=3600)

An unknown attribute (a typo), a wrong scheme or a bad number is a ConfigError naming the
attribute, never a ValueError, and never echoing the value of a secret-bearing attribute.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .uri import SECRET_ATTRIBUTES, KeyURI, parse_uri

__all__ = ["UriOptions", "check_create_options", "checked_uri"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class UriOptions:
    """The attributes of one URI (query, then RFC 7512 path attributes), read with types."""

    scheme: str
    values: Mapping[str, str]

    def text(self, name: str, default: str | None = None) -> str | None:
        """The attribute's text, or `default` when absent; ConfigError when present but empty."""
        if name not in self.values:
            return default
        value = self.values[name]
        if value == "":
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} is empty")
        return value

    def number(self, name: str, default: float, *, minimum: float | None = None,
               maximum: float | None = None) -> float:
        """A finite number within [minimum, maximum]; ConfigError naming the attribute otherwise."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} must be a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} must be a finite number")
        return self._bounded(name, value, minimum, maximum)

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """A decimal integer within [minimum, maximum]; ConfigError naming the attribute otherwise."""
        raw = self.text(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 19:
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} must be a whole number")
        return int(self._bounded(name, int(raw), minimum, maximum))

    def flag(self, name: str, default: bool = False) -> bool:
        """true/false (also 1/0, yes/no, on/off); ConfigError for anything else."""
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{self.scheme}: URI attribute {name!r} must be true or false")

    def choice(self, name: str, allowed: Collection[str], default: str | None = None) -> str | None:
        """One of `allowed`; ConfigError listing them otherwise."""
        raw = self.text(name)
        if raw is None:
            return default
        if raw not in allowed:
            shown = "***" if name in SECRET_ATTRIBUTES else repr(raw[:40])
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} is {shown}; expected one of {sorted(allowed)}")
        return raw

    def _bounded(self, name: str, value: float, minimum: float | None, maximum: float | None) -> float:
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} must be at least {minimum:g}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self.scheme}: URI attribute {name!r} must be at most {maximum:g}")
        return value


def checked_uri(
    uri: str | KeyURI,
    *,
    schemes: Collection[str],
    query: Collection[str] = (),
    path_attributes: Collection[str] = (),
) -> tuple[KeyURI, UriOptions]:
    """Parse `uri` and check its scheme and attribute names against what the back end knows.

    Raises ConfigError for another scheme, an unknown query or path attribute (naming it and
    listing the known ones), or anything `parse_uri` refuses.
    """
    parsed = uri if isinstance(uri, KeyURI) else parse_uri(uri)
    if parsed.scheme not in schemes:
        raise ConfigError(f"not a {' / '.join(sorted(s + ':' for s in schemes))} URI (scheme {parsed.scheme!r})")
    scheme = parsed.scheme
    unknown = sorted(set(parsed.query) - set(query))
    if unknown:
        raise ConfigError(f"{scheme}: URI has unknown attribute(s) {unknown}; known: {sorted(query)}")
    unknown_path = sorted(set(parsed.attributes) - set(path_attributes))
    if unknown_path:
        raise ConfigError(f"{scheme}: URI has unknown path attribute(s) {unknown_path}; known: {sorted(path_attributes)}")
    values = {**parsed.attributes, **parsed.query}
    return parsed, UriOptions(scheme, values)


def check_create_options(opts: Mapping[str, object], known: Collection[str], backend: str) -> None:
    """ConfigError naming any `create_key` keyword option the back end does not understand."""
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise ConfigError(f"{backend} back end: unknown create option(s) {unknown}; known: {sorted(known)}")
