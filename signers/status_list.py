"""IETF Token Status List (draft-ietf-oauth-status-list, revision 21 / the editors' copy of 2026).

A Status List is a byte array with `bits` (1, 2, 4 or 8) per token, packed from the least
significant bit, DEFLATE-compressed in the ZLIB format and base64url-encoded as ``lst``. The
issuer publishes it as a ``statuslist+jwt`` (claims ``sub`` = the list's URI, ``iat``,
``exp``, ``ttl``, ``status_list``) signed by a key in any back end; a token that can be
revoked this way carries ``status: {"status_list": {"idx": N, "uri": URI}}``.

A verifier holding only the issuer's JWKS and a fetched list checks a token offline with
`check_status`. Refused, as the draft's validation rules say: a list whose ``sub`` is not
the token's ``uri``, an expired list, an index out of range, a list signed by an unknown
key, a list that does not decompress (or decompresses to more than `MAX_LIST_BYTES`), and a
list older than one already seen for that URI (a replayed list could hide a revocation).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .clock import duration
from .errors import ConfigError, TokenExpired, TokenInvalid, TokenRevoked
from .jose import KeySource, sign_jwt, verify_jwt
from .signer import Signer

__all__ = [
    "INVALID",
    "MAX_LIST_BYTES",
    "STATUS_LIST_TYP",
    "SUSPENDED",
    "VALID",
    "StatusList",
    "StatusListCache",
    "VerifiedStatusList",
    "check_status",
    "issue_status_list",
    "status_claim",
    "verify_status_list",
]

STATUS_LIST_TYP = "statuslist+jwt"
VALID, INVALID, SUSPENDED = 0x00, 0x01, 0x02
MAX_LIST_BYTES = 16 * 1024 * 1024  # 128M one-bit entries: more is a decompression bomb, not a list
_BITS = (1, 2, 4, 8)


class StatusList:
    """A mutable list of `size` statuses of `bits` bits each, all VALID to begin with."""

    def __init__(self, size: int, bits: int = 1, data: bytes | None = None) -> None:
        if bits not in _BITS:
            raise ConfigError(f"status list bits must be one of {_BITS}, not {bits!r}")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_LIST_BYTES * 8 // bits:
            raise ConfigError("status list size must be a positive integer within the list limit")
        self.bits = bits
        length = (size * bits + 7) // 8
        self._data = bytearray(data if data is not None else bytes(length))
        if len(self._data) < length:
            raise ConfigError("status list data is shorter than its size")
        self.size = size

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise TokenInvalid(f"status list index {index!r} is out of range (size {self.size})")
        bit = index * self.bits
        return bit // 8, bit % 8

    def get(self, index: int) -> int:
        """The status at `index`; TokenInvalid when out of range (the draft: reject the token)."""
        byte, shift = self._locate(index)
        return (self._data[byte] >> shift) & ((1 << self.bits) - 1)

    def set(self, index: int, status: int) -> None:
        """Set the status at `index`; ConfigError for a value that does not fit in `bits`."""
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status < (1 << self.bits):
            raise ConfigError(f"status {status!r} does not fit in {self.bits} bit(s)")
        byte, shift = self._locate(index)
        mask = ((1 << self.bits) - 1) << shift
        self._data[byte] = (self._data[byte] & ~mask) | (status << shift)

    def to_json(self) -> dict[str, Any]:
        """``{"bits": ..., "lst": ...}``: ZLIB at the highest level, base64url without padding."""
        compressed = zlib.compress(bytes(self._data), 9)
        return {"bits": self.bits, "lst": base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")}

    @classmethod
    def from_json(cls, value: Any) -> StatusList:
        """Decode a ``status_list`` object; TokenInvalid for anything malformed or oversized."""
        if not isinstance(value, Mapping) or value.get("bits") not in _BITS or not isinstance(value.get("lst"), str):
            raise TokenInvalid("status_list must be an object with bits (1, 2, 4, 8) and lst (a string)")
        text = value["lst"]
        try:
            compressed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            inflater = zlib.decompressobj()
            data = inflater.decompress(compressed, MAX_LIST_BYTES + 1)
            if len(data) > MAX_LIST_BYTES or inflater.unconsumed_tail:
                raise TokenInvalid(f"status list decompresses to more than {MAX_LIST_BYTES} bytes")
            data += inflater.flush()
            if not inflater.eof:
                raise TokenInvalid("status list lst is truncated")
        except (binascii.Error, ValueError, zlib.error) as e:
            raise TokenInvalid(f"status list lst is not base64url ZLIB data: {type(e).__name__}") from e
        if not data:
            raise TokenInvalid("status list is empty")
        bits = int(value["bits"])
        return cls(len(data) * 8 // bits, bits, data)


def status_claim(index: int, uri: str) -> dict[str, Any]:
    """The ``status`` claim of a token at `index` in the list published at `uri`."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError("a status list index is a non-negative integer")
    if not isinstance(uri, str) or not uri:
        raise ConfigError("a status list URI is a non-empty string")
    return {"status_list": {"idx": index, "uri": uri}}


def issue_status_list(signer: Signer, statuses: StatusList, *, uri: str, ttl: float = 300.0,
                      lifetime: float = 3600.0, iss: str | None = None, now: float | None = None) -> str:
    """A signed ``statuslist+jwt`` for `statuses`, published at `uri` (its ``sub``).

    `ttl` tells verifiers how long to cache it; `lifetime` sets ``exp``. ConfigError for bad
    durations; the signer's own errors (BackendUnavailable, ...) propagate.
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": uri, "iat": issued, "exp": issued + int(duration(lifetime, "lifetime", allow_zero=False)),
                              "ttl": int(duration(ttl, "ttl", allow_zero=False)) or 1, "status_list": statuses.to_json()}
    if iss is not None:
        claims["iss"] = iss
    return sign_jwt(signer, claims, typ=STATUS_LIST_TYP)


@dataclass(frozen=True)
class VerifiedStatusList:
    """A status list token that verified: its list, URI, issue time and cache lifetime."""

    uri: str
    issued_at: float
    expires_at: float | None
    ttl: float | None
    statuses: StatusList


def verify_status_list(token: str | bytes, keys: KeySource, *, uri: str, issuer: str | None = None,
                       now: float | None = None) -> VerifiedStatusList:
    """Verify a ``statuslist+jwt`` for `uri` against the issuer's keys.

    Raises TokenInvalid (signature, typ, sub not `uri`, malformed list, no ``iat``) and
    TokenExpired (past ``exp``).
    """
    verified = verify_jwt(token, keys, typ=STATUS_LIST_TYP, subject=uri, issuer=issuer, require=("iat", "sub"),
                          now=now)
    claims = verified.claims
    ttl = claims.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0):
        raise TokenInvalid("status list ttl must be a positive number")
    return VerifiedStatusList(uri, float(claims["iat"]), float(claims["exp"]) if "exp" in claims else None,
                              float(ttl) if ttl is not None else None, StatusList.from_json(claims.get("status_list")))


def check_status(claims: Mapping[str, Any], lists: StatusListCache) -> int:
    """The status of a verified token's ``status`` claim; TokenRevoked unless VALID.

    Raises TokenInvalid for a token without a well-formed ``status.status_list`` and
    whatever `lists` raises when it cannot supply a fresh, verified list (fail closed).
    """
    status = claims.get("status")
    reference = status.get("status_list") if isinstance(status, Mapping) else None
    if not isinstance(reference, Mapping) or not isinstance(reference.get("uri"), str):
        raise TokenInvalid("token has no status.status_list {idx, uri} to check")
    index = reference.get("idx")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise TokenInvalid("status.status_list.idx must be a non-negative integer")
    value = lists.get(reference["uri"]).statuses.get(index)
    if value == INVALID:
        raise TokenRevoked(f"token status at {reference['uri']}#{index} is INVALID (revoked)")
    if value == SUSPENDED:
        raise TokenRevoked(f"token status at {reference['uri']}#{index} is SUSPENDED")
    if value != VALID:
        raise TokenRevoked(f"token status at {reference['uri']}#{index} is {value:#04x}, not VALID")
    return value


class StatusListCache:
    """Verified status lists by URI, refreshed when their ``ttl`` passes; thread-safe.

    `fetch(uri)` returns the status list token's text (HTTP GET, a file, ...). A list older
    than the one already held for that URI is refused (TokenInvalid: replay); an expired one
    is refused at every use (TokenExpired), never served from cache.
    """

    def __init__(self, keys: KeySource, fetch: Callable[[str], str | bytes], *, issuer: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._fetch = fetch
        self._issuer = issuer
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, tuple[VerifiedStatusList, float]] = {}

    def add(self, token: str | bytes, uri: str) -> VerifiedStatusList:
        """Verify and hold a list token (also how a pushed or fetched list enters the cache)."""
        verified = verify_status_list(token, self._keys, uri=uri, issuer=self._issuer, now=self._clock())
        with self._lock:
            current = self._held.get(uri)
            if current is not None and verified.issued_at < current[0].issued_at:
                raise TokenInvalid(f"status list for {uri} issued at {verified.issued_at:.0f} is older than the one "
                                   f"held ({current[0].issued_at:.0f}): refusing a replayed list")
            self._held[uri] = (verified, self._clock())
        return verified

    def get(self, uri: str) -> VerifiedStatusList:
        """A fresh, verified list for `uri`, fetching when none is held or its ttl has passed."""
        now = self._clock()
        with self._lock:
            held = self._held.get(uri)
        if held is not None:
            listed, fetched_at = held
            fresh = listed.ttl is None or fetched_at + listed.ttl > now
            if fresh and (listed.expires_at is None or listed.expires_at > now):
                return listed
        try:
            return self.add(self._fetch(uri), uri)
        except (TokenInvalid, TokenExpired, ConfigError):
            raise
        except Exception as e:  # a fetch that fails leaves no list to trust: refuse
            if held is not None and held[0].expires_at is not None and held[0].expires_at > now:
                return held[0]  # past its ttl but not its exp: the issuer said it is still valid
            raise TokenInvalid(f"no valid status list for {uri}: fetching it failed ({type(e).__name__})") from e
