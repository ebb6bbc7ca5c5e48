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

__all__ = ["AsyncFollower", "Follower", "async_refresh", "httpx_module", "sync_refresh"]

T = TypeVar("T")


def httpx_module() -> Any:
    """httpx, or ConfigError naming the extra (the clients need ``keyplane[clients]``)."""
    return require("httpx", "clients", "HTTP client")


def _declared(response: Any) -> int:
    """The Content-Length the server announced (0 when absent or not a number: the read is bounded anyway)."""
    value = response.headers.get("content-length") or "0"
    return int(value) if value.isdigit() and len(value) < 20 else 0


def sync_refresh(client: Any, document: CachedDocument[T]) -> None:
    """GET the document with its validators and apply the answer (errors recorded, not raised)."""
    httpx = httpx_module()
    document.begin()
    try:
        with client.stream("GET", document.url, headers=document.request_headers(),
                           timeout=document.policy.timeout) as response:
            if _declared(response) > MAX_DOCUMENT:
                document.failed("response larger than the document limit")
                return
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT:
                    document.failed("response larger than the document limit")
                    return
                chunks.append(chunk)
            document.accept(Fetched(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                    b"".join(chunks)))
    except httpx.HTTPError as e:
        document.failed(f"{type(e).__name__}")


async def async_refresh(client: Any, document: CachedDocument[T]) -> None:
    """The async form of `sync_refresh`."""
    httpx = httpx_module()
    document.begin()
    try:
        async with client.stream("GET", document.url, headers=document.request_headers(),
                                 timeout=document.policy.timeout) as response:
            if _declared(response) > MAX_DOCUMENT:
                document.failed("response larger than the document limit")
                return
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT:
                    document.failed("response larger than the document limit")
                    return
                chunks.append(chunk)
            document.accept(Fetched(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                    b"".join(chunks)))
    except httpx.HTTPError as e:
        document.failed(f"{type(e).__name__}")


class Follower(Generic[T]):
    """A `CachedDocument` refreshed over a sync httpx client."""

    def __init__(self, url: str, parse: Callable[[bytes], T], policy: CachePolicy, client: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.document: CachedDocument[T] = CachedDocument(url, parse, policy, clock)
        self._client = client if client is not None else httpx_module().Client(trust_env=False)
        self._owns_client = client is None
        self._refreshing = threading.Lock()

    def refresh(self, *, force: bool = False) -> None:
        with self._refreshing:
            doc = self.document
            if (force and doc.may_force()) or (not force and doc.stale() and doc.may_retry()):
                sync_refresh(self._client, doc)

    def current(self) -> T:
        if self.document.stale():
            self.refresh()
        return self.document.current()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class AsyncFollower(Generic[T]):
    """A `CachedDocument` refreshed over an async httpx client."""

    def __init__(self, url: str, parse: Callable[[bytes], T], policy: CachePolicy, client: Any,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.document: CachedDocument[T] = CachedDocument(url, parse, policy, clock)
        self._client = client if client is not None else httpx_module().AsyncClient(trust_env=False)
        self._owns_client = client is None
        self._refreshing = asyncio.Lock()

    async def refresh(self, *, force: bool = False) -> None:
        async with self._refreshing:
            doc = self.document
            if (force and doc.may_force()) or (not force and doc.stale() and doc.may_retry()):
                await async_refresh(self._client, doc)

    async def current(self) -> T:
        if self.document.stale():
            await self.refresh()
        return self.document.current()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
