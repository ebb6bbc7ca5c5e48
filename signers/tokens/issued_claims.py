"""Claim helpers shared by the token kinds keyplane issues (passports, action tokens, proofs).

Times come from `signers.clock` (finite, in range), and every string claim has a bound: a
100k-character subject is a ConfigError at issuance and TokenInvalid at verification,
never a token too large to parse or an error message that echoes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..clock import duration, epoch, from_epoch
from ..errors import ConfigError, TokenInvalid
from ..random_pool import random_bytes

__all__ = [
    "MAX_CLAIM_LENGTH",
    "claim_time",
    "issued_string",
    "issued_strings",
    "new_jti",
    "registered_claims",
    "time_claims",
    "ttl_seconds",
    "verified_string",
]

MAX_CLAIM_LENGTH = 1024  # characters in a sub, name, stage, scope, action or jti
_VARIANT = "89ab"  # RFC 9562 variant 10xx: the top two bits of byte 8 pick the hex digit


def ttl_seconds(ttl: float | timedelta, what: str = "ttl") -> int:
    """`ttl` as whole seconds, at least one; ConfigError for NaN, infinities, negatives and zero."""
    seconds = int(duration(ttl, what))
    if seconds <= 0:
        raise ConfigError(f"{what} must be at least one second")
    return seconds


def time_claims(ttl: float | timedelta, now: datetime | float | None, jti: str | None) -> dict[str, Any]:
    """``iat``, ``nbf``, ``exp`` and ``jti`` for a token issued at `now`; ConfigError for bad input."""
    issued = int(epoch(now))
    if jti is not None:
        issued_string(jti, "jti")
    return {"iat": issued, "nbf": issued, "exp": issued + ttl_seconds(ttl), "jti": jti or new_jti()}


def registered_claims(kind: str, *, iss: str | None, sub: str, aud: str | list[str] | None,
                      ttl: float | timedelta, now: datetime | float | None, jti: str | None) -> dict[str, Any]:
    """The registered claims a `kind` token starts with, in the order keyplane writes them.

    ``iss`` (when given, a bounded string), ``sub``, ``aud`` (when given), then `time_claims`.
    Raises ConfigError as `issued_string` and `time_claims` do.
    """
    claims: dict[str, Any] = {}
    if iss is not None:
        claims["iss"] = issued_string(iss, f"{kind} iss")
    claims["sub"] = sub
    if aud is not None:
        claims["aud"] = aud
    claims.update(time_claims(ttl, now, jti))
    return claims


def new_jti() -> str:
    """A random version-4 UUID string (RFC 9562): 122 random bits, formatted like ``str(uuid.uuid4())``.

    Built from the bytes directly: `uuid.uuid4()` makes and formats a UUID object, which
    cost more than the rest of a passport's claims together; the bytes come from
    `random_pool` (one ``getrandom`` call per 256 identifiers, not one each).
    """
    raw = random_bytes(16)
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[raw[8] >> 6]}{h[17:20]}-{h[20:]}"


def issued_strings(*values: Any) -> bool:
    """True when every value is what `issued_string` accepts (one pass, no error built)."""
    return all(type(v) is str and 0 < len(v) <= MAX_CLAIM_LENGTH for v in values)


def issued_string(value: Any, what: str) -> str:
    """`value` if it is a non-empty string of at most MAX_CLAIM_LENGTH characters, else ConfigError."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty string")
    if len(value) > MAX_CLAIM_LENGTH:
        raise ConfigError(f"{what} is {len(value)} characters; at most {MAX_CLAIM_LENGTH} are allowed")
    return value


def verified_string(claims: dict[str, Any], name: str, what: str) -> str:
    """A verified claim that must be a non-empty, bounded string; TokenInvalid otherwise."""
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise TokenInvalid(f"{what} claim {name!r} must be a non-empty string of at most {MAX_CLAIM_LENGTH} characters")
    return value


def claim_time(value: Any) -> datetime:
    """A verified NumericDate as a datetime; TokenInvalid when it cannot be one (beyond year 9999)."""
    when = from_epoch(value) if not isinstance(value, bool) and isinstance(value, int | float) else None
    if when is None:
        raise TokenInvalid(f"time claim {str(value)[:40]} is out of range")
    return when
