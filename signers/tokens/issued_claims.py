"""Claim helpers shared by the token kinds keyplane issues (passports, action tokens, proofs).

Times come from `signers.clock` (finite, in range), and every string claim has a bound: a
100k-character subject is a ConfigError at issuance and TokenInvalid at verification,
never a token too large to parse or an error message that echoes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from ..clock import duration, epoch, from_epoch
from ..errors import ConfigError, TokenInvalid

__all__ = ["MAX_CLAIM_LENGTH", "claim_time", "issued_string", "time_claims", "ttl_seconds", "verified_string"]

MAX_CLAIM_LENGTH = 1024  # characters in a sub, name, stage, scope, action or jti


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
    return {"iat": issued, "nbf": issued, "exp": issued + ttl_seconds(ttl), "jti": jti or str(uuid.uuid4())}


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
