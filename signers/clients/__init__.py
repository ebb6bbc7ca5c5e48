"""Verifier-side clients for what `keyplane serve` (or any issuer) publishes over HTTP.

- `JWKSClient` / `AsyncJWKSClient`: the issuer's keys (a KeySource);
- `RevocationListClient` / `AsyncRevocationListClient`: the signed revocation list (a RevocationCheck);
- `CRLClient` / `AsyncCRLClient`: the CA's CRL;
- `StatusListClient` / `AsyncStatusListClient`: IETF Token Status Lists.

All of them cache by Cache-Control and ETag, refresh at most once per interval when asked
out of turn, keep serving the last good document while the server is down until a hard
expiry, and then fail closed. They need httpx (``pip install 'keyplane[clients]'``).
After the first fetch, verification works offline::

    keys = JWKSClient("https://issuer/.well-known/jwks.json")
    revocations = RevocationListClient("https://issuer/revocations.jwt", keys, issuer="https://issuer")
    verify_passport(token, keys, revocations=revocations)
"""

from __future__ import annotations

from .http_cache import CachedDocument, CachePolicy
from .jwks import AsyncJWKSClient, JWKSClient
from .lists import (
    AsyncCRLClient,
    AsyncRevocationListClient,
    AsyncStatusListClient,
    CRLClient,
    RevocationListClient,
    StatusListClient,
)

__all__ = [
    "AsyncCRLClient",
    "AsyncJWKSClient",
    "AsyncRevocationListClient",
    "AsyncStatusListClient",
    "CRLClient",
    "CachePolicy",
    "CachedDocument",
    "JWKSClient",
    "RevocationListClient",
    "StatusListClient",
]
