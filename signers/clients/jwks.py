"""`JWKSClient`: an issuer's published JWKS, fetched, cached and refreshed by the rules of `http_cache`.

A `JWKSClient` *is* a `JWKS` (a subclass), so it goes wherever a KeySource is taken::

    keys = JWKSClient("https://issuer.example/.well-known/jwks.json", ttl=300)
    verify_passport(token, keys, revocations=RevocationListClient(...))

A token naming a ``kid`` the cached set lacks triggers one refresh (at most once per
`min_interval`), so a key the issuer rotated in is picked up at once while a flood of
made-up kids costs one request per interval. While the issuer is down the cached set keeps
serving until `hard_expiry`; then BackendUnavailable (a refusal, never an empty key set).
`AsyncJWKSClient` does the fetching with ``await`` and hands out a JWKS snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ConfigError, TokenError
from ..tokens.jwk import JWK, JWKS
from ..tokens.jws_parse import parse_jws
from .http_cache import CachedDocument
from .transport import AsyncFollower, Follower, follow_policy

__all__ = ["AsyncJWKSClient", "JWKSClient"]


def _parse_jwks(body: bytes) -> JWKS:
    keys = JWKS.from_dict(body)
    if len(keys) == 0:
        raise ConfigError("the JWKS has no usable signature key")
    return keys


class JWKSClient(JWKS):
    """A JWKS that follows `url`; see the module docstring. Thread-safe.

    `client` is an ``httpx.Client`` to use (proxies, TLS, transport); one is made otherwise;
    `clock` is monotonic seconds (tests give a controllable one).
    Lookups raise BackendUnavailable when no set could be fetched or it is past `hard_expiry`.
    """

    def __init__(self, url: str, *, ttl: float = 300.0, min_interval: float = 10.0,
                 hard_expiry: float | None = None, timeout: float = 5.0, client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(())
        self._follower = Follower(url, _parse_jwks, follow_policy(ttl, min_interval, hard_expiry, timeout), client, clock)
        self.document: CachedDocument[JWKS] = self._follower.document

    @property
    def url(self) -> str:
        return self.document.url

    def refresh(self, *, force: bool = False) -> None:
        """Fetch now when stale (or when `force` and the interval allows); errors are kept, not raised."""
        self._follower.refresh(force=force)

    def keys(self) -> JWKS:
        """The key set to trust now (refreshed when stale); BackendUnavailable when there is none."""
        return self._follower.current()

    # -- the JWKS interface, answered from the current set ------------------------------

    def get(self, kid: str) -> JWK | None:
        found = self.keys().get(kid)
        if found is None:
            self.refresh(force=True)  # maybe a key rotated in; at most once per min_interval
            found = self.document.current().get(kid)
        return found

    def by_thumbprint(self, key_id: str) -> list[JWK]:
        return self.keys().by_thumbprint(key_id)

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return self.keys().to_dict()

    def __iter__(self) -> Iterator[JWK]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, kid: object) -> bool:
        return isinstance(kid, str) and self.get(kid) is not None

    def close(self) -> None:
        self._follower.close()

    def __repr__(self) -> str:
        return f"JWKSClient({self.url!r}, fetches={self.document.fetches}, not_modified={self.document.not_modified})"


class AsyncJWKSClient(AsyncFollower[JWKS]):
    """`JWKSClient` for asyncio code: ``keys = await client.keys_for(token)`` then verify with `keys`."""

    def __init__(self, url: str, *, ttl: float = 300.0, min_interval: float = 10.0,
                 hard_expiry: float | None = None, timeout: float = 5.0, client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(url, _parse_jwks, follow_policy(ttl, min_interval, hard_expiry, timeout), client, clock)

    async def keys(self) -> JWKS:
        """The key set to trust now; BackendUnavailable when there is none."""
        return await self.current()

    async def keys_for(self, token: str | bytes) -> JWKS:
        """The key set, refreshed once (per interval) if `token` names a kid it lacks."""
        keys = await self.keys()
        try:
            kid = parse_jws(token).header.get("kid")
        except TokenError:
            return keys  # the verifier will say what is wrong with the token
        if isinstance(kid, str) and kid not in keys:
            await self.refresh(force=True)
            keys = self.document.current()
        return keys

