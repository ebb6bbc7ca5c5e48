"""Native async signing for Cloud KMS: the SDK's async client on grpc.aio, one per event loop.

A grpc.aio channel belongs to the event loop it was made in, so the store keeps one async
client per running loop (made on first use in that loop) and `aclose()` closes the current
loop's. Calls get the same retry policy as the blocking path (UNAVAILABLE / DEADLINE_EXCEEDED
within the store's timeout, a refused TLS certificate never retried), with asyncio.sleep
between attempts, and the same error translation.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from signers.errors import KeyplaneError
from signers.sdk import require

from .client import tls_verification_failed
from .errors import translated_error

__all__ = ["AsyncClients"]

_ATTEMPTS = 4


class AsyncClients:
    """The store's async clients, one per event loop; `factory()` builds one inside the running loop."""

    def __init__(self, factory: Callable[[], Any], timeout: float) -> None:
        self._factory = factory
        self._timeout = timeout
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def current(self) -> Any:
        """The running loop's client (made now if this loop has none); loops that closed are forgotten."""
        loop = asyncio.get_running_loop()
        for key, (other, _client) in list(self._clients.items()):
            if other.is_closed():
                del self._clients[key]
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            try:
                client = self._factory()
            except KeyplaneError:
                raise
            except Exception as e:
                raise translated_error(e, "connect to Cloud KMS") from e
            entry = self._clients[id(loop)] = (loop, client)
        return entry[1]

    async def call(self, what: str, method_name: str, request: Any) -> Any:
        """One idempotent async SDK call with the blocking path's retries and translation."""
        exc = require("google.api_core.exceptions", "gcp", "gcpkms")
        method = getattr(self.current(), method_name)
        deadline = time.monotonic() + self._timeout
        for attempt in range(1, _ATTEMPTS + 1):
            remaining = deadline - time.monotonic()
            try:
                return await method(request=request, retry=None, timeout=max(remaining, 0.001))
            except (exc.ServiceUnavailable, exc.DeadlineExceeded) as e:
                if tls_verification_failed(str(getattr(e, "message", None) or e)):
                    raise translated_error(e, what) from e
                pause = min(0.1 * 2 ** (attempt - 1), 1.0) * random.uniform(0.5, 1.0)
                if attempt == _ATTEMPTS or time.monotonic() + pause >= deadline:
                    raise translated_error(e, what) from e
                await asyncio.sleep(pause)  # back-off between retries of a transient failure
            except Exception as e:
                raise translated_error(e, what) from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the running loop's client (the others are closed from their own loops, or die with them)."""
        entry = self._clients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].transport.close()

    def forget(self) -> None:
        """Drop every client (on the store's close(); channels of finished loops are already gone)."""
        self._clients.clear()


