"""Fetching a `CachedDocument` over HTTP with httpx, sync and async, never raising for a network fault.

A network error or a body over the size limit is recorded on the document (the cached copy
keeps serving until its hard expiry); only `CachedDocument.current` decides to refuse.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..sdk import require
from .http_cache import MAX_DOCUMENT, CachedDocument, Fetched

__all__ = ["async_refresh", "httpx_module", "sync_refresh"]

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
