"""The registered-claim checks of a JWT (RFC 7519 4.1): time, issuer, subject, audience, jti.

Times go through `signers.clock`, so a NaN or infinite `leeway` or `now` is a ConfigError
(it would otherwise switch expiry off: ``exp + nan`` compares False with everything), and a
claim that is not a NumericDate in range (10**400, a string, a bool) is TokenInvalid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..clock import DEFAULT_LEEWAY, MAX_EPOCH, duration, epoch, iso
from ..errors import TokenExpired, TokenInvalid, TokenRevoked

if TYPE_CHECKING:
    from .revocation import RevocationCheck

__all__ = ["check_claims", "check_not_revoked", "numeric_date", "short"]

_STRING_CLAIMS = ("iss", "sub", "jti")


def check_claims(
    claims: Mapping[str, Any],
    *,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    subject: str | None = None,
    require: Iterable[str] = ("exp",),
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
) -> None:
    """The registered-claim checks of `verify_jwt`, on already-verified claims.

    Raises TokenExpired (``exp`` passed, ``nbf`` not reached, with `leeway`), TokenInvalid
    (missing required claim, ``iat`` in the future, a claim of the wrong type or out of
    range, issuer / subject / audience mismatch) and ConfigError (non-finite or negative
    `leeway`, a bad `now`).
    """
    skew = duration(leeway, "leeway")
    current = epoch(now)
    for name in require:
        if name not in claims:
            raise TokenInvalid(f"required claim {name!r} is missing")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise TokenInvalid(f"claim {name!r} must be a string")
    exp, nbf, iat = (numeric_date(claims, n) for n in ("exp", "nbf", "iat"))
    if exp is not None and current > exp + skew:
        raise TokenExpired(f"token expired at {iso(exp)} (now {iso(current)})")
    if nbf is not None and current + skew < nbf:
        raise TokenExpired(f"token not valid before {iso(nbf)} (now {iso(current)})")
    if iat is not None and iat > current + skew:
        raise TokenInvalid(f"token issued in the future ({iso(iat)})")
    if issuer is not None:
        accepted = {issuer} if isinstance(issuer, str) else set(issuer)
        if claims.get("iss") not in accepted:
            raise TokenInvalid(f"issuer mismatch: token iss is {short(claims.get('iss'))}")
    if subject is not None and claims.get("sub") != subject:
        raise TokenInvalid(f"subject mismatch: token sub is {short(claims.get('sub'))}")
    _check_audience(claims, audience)


def _check_audience(claims: Mapping[str, Any], audience: str | Iterable[str] | None) -> None:
    if "aud" not in claims:
        if audience is not None:
            raise TokenInvalid("audience mismatch: the token names no audience")
        return
    aud = claims["aud"]
    token_aud = [aud] if isinstance(aud, str) else aud
    if not isinstance(token_aud, list) or not all(isinstance(a, str) for a in token_aud):
        raise TokenInvalid("claim 'aud' must be a string or a list of strings")
    if audience is None:
        raise TokenInvalid("audience mismatch: the token is for an audience, but the verifier named none")
    wanted = {audience} if isinstance(audience, str) else set(audience)
    if not wanted.intersection(token_aud):
        raise TokenInvalid(f"audience mismatch: token aud is {short(aud)}")


def check_not_revoked(claims: Mapping[str, Any], revocations: RevocationCheck) -> None:
    """TokenRevoked if the claims' ``jti`` is revoked; TokenInvalid if there is no ``jti`` to check.

    Whatever the store raises propagates (StateCorrupt, BackendUnavailable, TokenExpired
    for a stale signed list): a revocation check that cannot answer is a refusal.
    """
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenInvalid("token has no jti, so its revocation cannot be checked")
    record = revocations.get(jti, kind="jti")
    if record is not None:
        raise TokenRevoked(f"token {jti[:80]!r} is revoked ({record.reason[:80]}, at {record.revoked_at.isoformat()})")


def numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as seconds since the epoch, None when absent; TokenInvalid unless a NumericDate in range."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"claim {name!r} is not a NumericDate")
    if isinstance(value, int) and abs(value) > MAX_EPOCH:  # before float(): 10**400 would overflow
        raise TokenInvalid(f"claim {name!r} is not a NumericDate: out of range")
    seconds = float(value)
    if not math.isfinite(seconds) or abs(seconds) > MAX_EPOCH:
        raise TokenInvalid(f"claim {name!r} is not a NumericDate: out of range")
    return seconds


def short(value: Any) -> str:
    """A repr of a claim for an error message, cut to 80 characters."""
    text = repr(value) if not isinstance(value, str) or len(value) < 200 else repr(value[:80])
    return text if len(text) <= 80 else text[:77] + "..."
