"""Signed revocation lists: the offline form of a revocation store.

A list is a JWT (``typ: revocation-list+jwt``) issued by a Signer, listing the revoked ids,
with its own ``exp`` and a monotonic list ``number``. A verifier without access to the
store loads it against the issuer's JWKS, pinned to the issuer, and:

- a tampered list is TokenInvalid, a list of another issuer is TokenInvalid;
- a stale list is TokenExpired, at load and at every later use (a long-running verifier
  cannot keep answering from a list that has expired since);
- an older, still-valid list (which may lack a newer revocation) is refused when its
  number is below `min_number`, or below the newest number a `ListNumberTracker` has seen
  for that issuer (rollback protection).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..clock import DEFAULT_LEEWAY, MAX_EPOCH, duration, epoch, from_epoch, iso, utc
from ..errors import ConfigError, TokenExpired, TokenInvalid
from .jwk import KeySource
from .jws_sign import sign_jwt
from .jws_verify import verify_jwt
from .revocation import Revocation, RevocationStore
from .token_types import REVOCATION_LIST_TYP

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["REVOCATION_LIST_TYP", "ListNumberTracker", "RevocationList", "issue_revocation_list"]


def issue_revocation_list(
    signer: Signer,
    revocations: RevocationStore | Iterable[Revocation],
    *,
    issuer: str,
    ttl: float | timedelta = 3600,
    kinds: Iterable[str] | None = None,
    now: datetime | None = None,
    audience: str | None = None,
    number: int | None = None,
) -> str:
    """A signed JWT listing revoked ids; it expires after `ttl` so verifiers must refresh it.

    Claims: ``iss``, ``iat``, ``nbf``, ``exp``, ``jti``, ``number`` and ``revoked``, a list
    of ``{"id", "kind", "reason", "revoked_at"}`` (revoked_at as a NumericDate). `number`
    defaults to the store's next list number (`next_list_number()`, shared by everyone
    using the store); for a plain iterable of revocations it must be given.
    Raises ConfigError for a bad ttl, issuer or number, and what the Signer raises.
    """
    seconds = duration(ttl, "revocation list ttl", allow_zero=False)
    if not isinstance(issuer, str) or not issuer:
        raise ConfigError("revocation list issuer must be a non-empty string")
    if number is None:
        next_number = getattr(revocations, "next_list_number", None)
        if next_number is None:
            raise ConfigError("give number= (a list number higher than any list issued before) for a plain list")
        number = int(next_number())
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= 2**53 - 1:
        raise ConfigError("revocation list number must be a positive integer")
    wanted = None if kinds is None else set(kinds)
    entries: Iterable[Revocation] = revocations.list() if isinstance(revocations, RevocationStore) else revocations
    listed = [
        {"id": r.id, "kind": r.kind, "reason": r.reason, "revoked_at": int(r.revoked_at.timestamp())}
        for r in entries
        if wanted is None or r.kind in wanted
    ]
    issued = int(utc(now, "now").timestamp())
    claims: dict[str, Any] = {"iss": issuer, "iat": issued, "nbf": issued, "exp": issued + int(seconds)}
    if audience is not None:
        claims["aud"] = audience
    claims.update({"jti": str(uuid.uuid4()), "number": number, "revoked": listed})
    return sign_jwt(signer, claims, typ=REVOCATION_LIST_TYP)


class ListNumberTracker:
    """The newest list number seen per issuer, so a verifier never goes back to an older list.

    Process-local and thread-safe; keep one per verifier for as long as it runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._newest: dict[str, int] = {}

    def newest(self, issuer: str) -> int | None:
        """The highest number accepted from `issuer`, or None."""
        with self._lock:
            return self._newest.get(issuer)

    def accept(self, issuer: str, number: int) -> None:
        """Record `number`; TokenInvalid if a higher one from `issuer` was seen before."""
        with self._lock:
            seen = self._newest.get(issuer)
            if seen is not None and number < seen:
                raise TokenInvalid(f"revocation list {number} is older than list {seen} already seen from this issuer")
            self._newest[issuer] = number


class RevocationList:
    """A verified, read-only revocation list loaded from a signed JWT (offline checking).

    Satisfies `RevocationCheck`, so it can be passed wherever ``revocations=`` is taken;
    every lookup first checks that the list has not expired (TokenExpired).
    """

    def __init__(
        self,
        issuer: str,
        issued_at: datetime,
        expires_at: datetime,
        entries: Iterable[Revocation],
        *,
        number: int | None = None,
        leeway: float = DEFAULT_LEEWAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.number = number
        self._leeway = duration(leeway, "leeway")
        self._clock = clock
        self._entries = {(r.kind, r.id): r for r in entries}

    @classmethod
    def load(
        cls,
        token: str | bytes,
        keys: KeySource,
        *,
        issuer: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        leeway: float = DEFAULT_LEEWAY,
        now: datetime | float | None = None,
        max_size: int = 16 * 1024 * 1024,
        min_number: int | None = None,
        tracker: ListNumberTracker | None = None,
        clock: Callable[[], float] | None = None,
    ) -> RevocationList:
        """Verify a signed list against the issuer's `keys`, pinned to `issuer` (required).

        `min_number` refuses older lists; `tracker` refuses lists older than the newest it
        has seen from this issuer and records this one. Later lookups check expiry against
        `clock` (default: the fixed `now` if given, else the current time).
        Raises ConfigError without `issuer` or with bad options, TokenExpired when stale,
        TokenInvalid when tampered, of another issuer, malformed or too old.
        """
        if issuer is None:
            raise ConfigError("give issuer= (the list's iss): any issuer in the key set would be accepted otherwise")
        verified = verify_jwt(
            token,
            keys,
            typ=REVOCATION_LIST_TYP,
            issuer=issuer,
            audience=audience,
            require=("exp", "iat", "iss", "revoked"),
            leeway=leeway,
            now=now,
            max_size=max_size,
        )
        claims = verified.claims
        number = claims.get("number")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
            raise TokenInvalid("revocation list claim 'number' must be a positive integer")
        if min_number is not None and (number is None or number < min_number):
            raise TokenInvalid(f"revocation list {number} is older than the required list {min_number}")
        if tracker is not None:
            if number is None:
                raise TokenInvalid("revocation list has no number, so its age cannot be tracked")
            tracker.accept(claims["iss"], number)
        listed = claims["revoked"]
        if not isinstance(listed, list):
            raise TokenInvalid("revocation list claim 'revoked' is not a list")
        entries = [_entry(item) for item in listed]
        issued_at, expires_at = from_epoch(claims["iat"]), from_epoch(claims["exp"])
        if issued_at is None or expires_at is None:
            raise TokenInvalid("revocation list iat or exp is out of range")
        if clock is None:
            fixed = None if now is None else epoch(now)
            clock = time.time if fixed is None else (lambda: fixed)
        return cls(claims["iss"], issued_at, expires_at, entries, number=number, leeway=leeway, clock=clock)

    def _check_fresh(self) -> None:
        current = self._clock()
        if current > self.expires_at.timestamp() + self._leeway:
            raise TokenExpired(f"revocation list expired at {self.expires_at.isoformat()} (now {iso(current)})")

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        """True when listed; TokenExpired once the list has expired."""
        self._check_fresh()
        return (kind, id) in self._entries

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        """The listed revocation, or None; TokenExpired once the list has expired."""
        self._check_fresh()
        return self._entries.get((kind, id))

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        """The listed revocations (of `kind`); TokenExpired once the list has expired."""
        self._check_fresh()
        return iter([r for r in self._entries.values() if kind is None or r.kind == kind])

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (f"RevocationList(issuer={self.issuer!r}, number={self.number}, entries={len(self)}, "
                f"expires_at={self.expires_at.isoformat()})")


def _entry(item: Any) -> Revocation:
    if not isinstance(item, dict):
        raise TokenInvalid("revocation list entry is not an object")
    fields = [item.get(name) for name in ("id", "kind", "reason")]
    when = item.get("revoked_at")
    if not all(isinstance(f, str) and f for f in fields):
        raise TokenInvalid("revocation list entry is malformed")
    ident, kind, reason = (str(f) for f in fields)
    if isinstance(when, bool) or not isinstance(when, int | float) or not abs(when) <= MAX_EPOCH:
        raise TokenInvalid("revocation list entry time is malformed")
    revoked_at = from_epoch(when)
    if revoked_at is None:
        raise TokenInvalid("revocation list entry time is out of range")
    return Revocation(ident, kind, reason, revoked_at)
