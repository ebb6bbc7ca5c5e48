"""Clients for what an issuer publishes besides its keys: revocation lists, CRLs and status lists.

Each follows one URL with the caching rules of `http_cache` (Cache-Control, ETag, a
minimum interval between requests, a hard expiry while the server is down) and checks
what it fetched before trusting it: the signed revocation list against the issuer's keys
and newest list number (`RevocationList.load` with a `ListNumberTracker`), the CRL against
the CA certificate, the status list as `StatusListCache` does. A document that fails its
check never replaces the good one; an expired one is refused at every use (fail closed).

- `RevocationListClient` satisfies `RevocationCheck`: pass it as ``revocations=``;
- `CRLClient.is_revoked(serial)` and `.crl()` (for `signers.x509.verify_chain(crl=...)`);
- `StatusListClient` is a `StatusListCache` whose fetch is an HTTP GET with ETag;
- `AsyncRevocationListClient`, `AsyncCRLClient`, `AsyncStatusListClient` fetch with ``await``.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cryptography import x509

from ..errors import ConfigError, TokenExpired, TokenInvalid
from ..status_list import StatusListCache, check_status
from ..tokens.jwk import KeySource
from ..tokens.revocation import Revocation
from ..tokens.revocation_list import ListNumberTracker, RevocationList
from .http_cache import MAX_DOCUMENT, Fetched
from .transport import AsyncFollower, Follower, Following, follow_policy, httpx_module

__all__ = [
    "AsyncCRLClient",
    "AsyncRevocationListClient",
    "AsyncStatusListClient",
    "CRLClient",
    "RevocationListClient",
    "StatusListClient",
]

T = TypeVar("T")


# -- signed revocation lists ------------------------------------------------------------------


def _revocation_parser(keys: KeySource, issuer: str, tracker: ListNumberTracker) -> Callable[[bytes], RevocationList]:
    if not isinstance(issuer, str) or not issuer:
        raise ConfigError("give issuer= (the list's iss): any issuer in the key set would be accepted otherwise")

    def parse(body: bytes) -> RevocationList:
        return RevocationList.load(body, keys, issuer=issuer, tracker=tracker)

    return parse


class _RevocationListSource(Following[RevocationList]):
    """The constructor both revocation list clients share."""

    def __init__(self, url: str, keys: KeySource, *, issuer: str, ttl: float = 60.0, min_interval: float = 5.0,
                 hard_expiry: float | None = None, timeout: float = 5.0, client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tracker = ListNumberTracker()
        super().__init__(url, _revocation_parser(keys, issuer, self.tracker),
                         follow_policy(ttl, min_interval, hard_expiry, timeout), client, clock)


class RevocationListClient(_RevocationListSource, Follower[RevocationList]):
    """The issuer's signed revocation list at `url`, verified with `keys` and pinned to `issuer`.

    Satisfies `RevocationCheck`. Lookups raise TokenExpired once the held list's own ``exp``
    has passed (a stale list never answers "not revoked"), BackendUnavailable when no list
    was ever fetched or it is past `hard_expiry`.
    """

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return self.current().is_revoked(id, kind=kind)

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        return self.current().get(id, kind=kind)


class AsyncRevocationListClient(_RevocationListSource, AsyncFollower[RevocationList]):
    """`RevocationListClient` for asyncio: ``revocations = await client.current()`` (a RevocationList)."""


# -- CRLs ------------------------------------------------------------------------------------------


def _crl_parser(issuer_certificate: x509.Certificate) -> Callable[[bytes], x509.CertificateRevocationList]:
    if not isinstance(issuer_certificate, x509.Certificate):
        raise ConfigError("issuer_certificate must be the CA's x509.Certificate")

    def parse(body: bytes) -> x509.CertificateRevocationList:
        try:
            crl = x509.load_der_x509_crl(body)
        except ValueError as e:
            raise TokenInvalid("the CRL is not DER") from e
        if crl.issuer != issuer_certificate.subject:
            raise TokenInvalid("the CRL is issued by another CA")
        try:
            valid = crl.is_signature_valid(issuer_certificate.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError, NotImplementedError) as e:
            raise TokenInvalid(f"the CRL signature cannot be checked: {e}") from e
        if not valid:
            raise TokenInvalid("the CRL signature does not verify with the CA certificate")
        _check_crl_fresh(crl)
        return crl

    return parse


def _check_crl_fresh(crl: x509.CertificateRevocationList) -> None:
    next_update = crl.next_update_utc
    if next_update is not None and next_update < datetime.datetime.now(datetime.UTC):
        raise TokenExpired(f"the CRL's nextUpdate {next_update.isoformat()} has passed")


class _CRLSource(Following[x509.CertificateRevocationList]):
    """The constructor both CRL clients share."""

    def __init__(self, url: str, issuer_certificate: x509.Certificate, *, ttl: float = 300.0,
                 min_interval: float = 10.0, hard_expiry: float | None = None, timeout: float = 5.0,
                 client: Any = None) -> None:
        super().__init__(url, _crl_parser(issuer_certificate), follow_policy(ttl, min_interval, hard_expiry, timeout),
                         client)


class CRLClient(_CRLSource, Follower[x509.CertificateRevocationList]):
    """The CA's CRL at `url` (DER), checked against `issuer_certificate`; refused past its nextUpdate."""

    def crl(self) -> x509.CertificateRevocationList:
        """The current CRL; TokenExpired past its nextUpdate, BackendUnavailable when there is none."""
        crl = self.current()
        _check_crl_fresh(crl)
        return crl

    def is_revoked(self, serial: int | x509.Certificate) -> bool:
        number = serial.serial_number if isinstance(serial, x509.Certificate) else serial
        return self.crl().get_revoked_certificate_by_serial_number(number) is not None


class AsyncCRLClient(_CRLSource, AsyncFollower[x509.CertificateRevocationList]):
    """`CRLClient` for asyncio: ``crl = await client.current()``."""


# -- Token Status Lists ----------------------------------------------------------------------------


class _ConditionalGet:
    """GET a status list URI with If-None-Match, answering a 304 from the last body."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.held: dict[str, tuple[str, bytes]] = {}

    def headers(self, uri: str) -> dict[str, str]:
        held = self.held.get(uri)
        return {"accept": "application/statuslist+jwt", **({"if-none-match": held[0]} if held else {})}

    def answer(self, uri: str, response: Fetched) -> bytes:
        if response.status == 304 and uri in self.held:
            return self.held[uri][1]
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status}")
        if len(response.body) > MAX_DOCUMENT:
            raise ConnectionError("status list larger than the document limit")
        etag = response.headers.get("etag")
        if etag:
            self.held[uri] = (etag, response.body)
        return response.body


def _headers(response: Any) -> Mapping[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


class StatusListClient(StatusListCache):
    """A `StatusListCache` fetching each list URI over HTTP (with ETag); ``check(claims)`` checks a token."""

    def __init__(self, keys: KeySource, *, issuer: str | None = None, timeout: float = 5.0, client: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._http = client if client is not None else httpx_module().Client(trust_env=False)
        self._conditional = _ConditionalGet(timeout)
        super().__init__(keys, self._get, issuer=issuer, clock=clock)

    def _get(self, uri: str) -> bytes:
        response = self._http.get(uri, headers=self._conditional.headers(uri), timeout=self._conditional.timeout)
        return self._conditional.answer(uri, Fetched(response.status_code, _headers(response), response.content))

    def check(self, claims: Mapping[str, Any]) -> int:
        """`check_status` of a verified token's claims (TokenRevoked unless VALID)."""
        return check_status(claims, self)


class AsyncStatusListClient:
    """Status lists fetched with ``await``: ``await client.check(claims)``."""

    def __init__(self, keys: KeySource, *, issuer: str | None = None, timeout: float = 5.0, client: Any = None) -> None:
        self._http = client if client is not None else httpx_module().AsyncClient(trust_env=False)
        self._conditional = _ConditionalGet(timeout)
        self._bodies: dict[str, bytes] = {}
        self.cache = StatusListCache(keys, self._held, issuer=issuer)

    def _held(self, uri: str) -> bytes:
        body = self._bodies.get(uri)
        if body is None:
            raise ConnectionError("not fetched")
        return body

    async def refresh(self, uri: str) -> None:
        response = await self._http.get(uri, headers=self._conditional.headers(uri), timeout=self._conditional.timeout)
        self._bodies[uri] = self._conditional.answer(uri, Fetched(response.status_code, _headers(response),
                                                                   response.content))

    async def check(self, claims: Mapping[str, Any]) -> int:
        """Fetch the token's list (ETag) and check its status; TokenRevoked unless VALID."""
        status = claims.get("status")
        reference = status.get("status_list") if isinstance(status, Mapping) else None
        if isinstance(reference, Mapping) and isinstance(reference.get("uri"), str):
            with contextlib.suppress(Exception):
                await self.refresh(reference["uri"])
        return check_status(claims, self.cache)

    async def aclose(self) -> None:
        await self._http.aclose()
