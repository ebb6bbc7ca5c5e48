"""Fetching a `CachedDocument` over HTTP with httpx, sync and async, never raising for a network fault.

A network error or a body over the size limit is recorded on the document (the cached copy
keeps serving until its hard expiry); only `CachedDocument.current` decides to refuse.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..sdk import require
from .http_cache import MAX_DOCUMENT, CachedDocument, CachePolicy, Fetched

__all__ = ["AsyncFollower", "Follower", "Following", "async_refresh", "follow_policy", "httpx_module", "sync_refresh"]

T = TypeVar("T")


def httpx_module() -> Any:
    """httpx, or ConfigError naming the extra (the clients need ``keyplane[clients]``)."""
    return require("httpx", "clients", "HTTP client")


def follow_policy(ttl: float, min_interval: float, hard_expiry: float | None, timeout: float) -> CachePolicy:
    """The clients' CachePolicy: without a `hard_expiry`, a copy serves a day (or `ttl`, if longer) while down."""
    return CachePolicy(ttl=ttl, min_interval=min_interval,
                       hard_expiry=hard_expiry if hard_expiry is not None else max(24 * 3600.0, ttl), timeout=timeout)


def _declared(response: Any) -> int:
    """The Content-Length the server announced (0 when absent or not a number: the read is bounded anyway)."""
    value = response.headers.get("content-length") or "0"
    return int(value) if value.isdigit() and len(value) < 20 else 0


class _Body:
    """One response's body, read chunk by chunk: refused (recorded on the document) past MAX_DOCUMENT."""

    def __init__(self, document: CachedDocument[Any], response: Any) -> None:
        self.document, self.response = document, response
        self.chunks: list[bytes] = []
        self.size = 0

    def _refused(self, size: int) -> bool:
        if size > MAX_DOCUMENT:
            self.document.failed("response larger than the document limit")
            return True
        return False

    def announced_too_large(self) -> bool:
        """True (the document told) when the announced Content-Length is over the limit."""
        return self._refused(_declared(self.response))

    def too_large_with(self, chunk: bytes) -> bool:
        """Add `chunk`; True (the document told) once the body is over the limit."""
        self.size += len(chunk)
        self.chunks.append(chunk)
        return self._refused(self.size)

    def accept(self) -> None:
        """Hand the whole answer to the document."""
        response = self.response
        self.document.accept(Fetched(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                     b"".join(self.chunks)))


def sync_refresh(client: Any, document: CachedDocument[T]) -> None:
    """GET the document with its validators and apply the answer (errors recorded, not raised)."""
    httpx = httpx_module()
    document.begin()
    try:
        with client.stream("GET", document.url, headers=document.request_headers(),
                           timeout=document.policy.timeout) as response:
            body = _Body(document, response)
            if body.announced_too_large():
                return
            for chunk in response.iter_bytes():
                if body.too_large_with(chunk):
                    return
            body.accept()
    except httpx.HTTPError as e:
        document.failed(f"{type(e).__name__}")


async def async_refresh(client: Any, document: CachedDocument[T]) -> None:
    """The async form of `sync_refresh`."""
    httpx = httpx_module()
    document.begin()
    try:
        async with client.stream("GET", document.url, headers=document.request_headers(),
                                 timeout=document.policy.timeout) as response:
            body = _Body(document, response)
            if body.announced_too_large():
                return
            async for chunk in response.aiter_bytes():
                if body.too_large_with(chunk):
                    return
            body.accept()
    except httpx.HTTPError as e:
        document.failed(f"{type(e).__name__}")


class Following(Generic[T]):
    """What both followers hold: the document, the httpx client (closed only when made here), one refresh lock."""

    _client_class = "Client"
    _lock_class: Callable[[], Any] = threading.Lock

    def __init__(self, url: str, parse: Callable[[bytes], T], policy: CachePolicy, client: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.document: CachedDocument[T] = CachedDocument(url, parse, policy, clock)
        self._client = client if client is not None else getattr(httpx_module(), self._client_class)(trust_env=False)
        self._owns_client = client is None
        self._refreshing = self._lock_class()


class Follower(Following[T]):
    """A `CachedDocument` refreshed over a sync httpx client."""

    def refresh(self, *, force: bool = False) -> None:
        with self._refreshing:
            if self.document.due(force=force):
                sync_refresh(self._client, self.document)

    def current(self) -> T:
        if self.document.stale():
            self.refresh()
        return self.document.current()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class AsyncFollower(Following[T]):
    """A `CachedDocument` refreshed over an async httpx client."""

    _client_class = "AsyncClient"
    _lock_class = asyncio.Lock

    async def refresh(self, *, force: bool = False) -> None:
        async with self._refreshing:
            if self.document.due(force=force):
                await async_refresh(self._client, self.document)

    async def current(self) -> T:
        if self.document.stale():
            await self.refresh()
        return self.document.current()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
