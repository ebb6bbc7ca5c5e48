"""Native async signing for Cloud KMS: the SDK's async client on grpc.aio, one per event loop.

A grpc.aio channel belongs to the event loop it was made in, so the store keeps one async
client per running loop (made on first use in that loop) and `aclose()` closes the current
loop's. Calls get the same retry policy as the blocking path (UNAVAILABLE / DEADLINE_EXCEEDED
within the store's timeout, a refused TLS certificate never retried), with asyncio.sleep
between attempts, and the same error translation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from backends.per_loop import PerLoop
from backends.translation import translated
from signers.sdk import require

from .errors import translate, translated_error
from .retry import ATTEMPTS, retry_pause

__all__ = ["AsyncClients"]


class AsyncClients(PerLoop[Any]):
    """The store's async clients, one per event loop; `factory()` builds one inside the running loop."""

    def __init__(self, factory: Callable[[], Any], timeout: float) -> None:
        super().__init__(partial(_connected, factory))
        self._timeout = timeout

    async def call(self, what: str, method_name: str, request: Any) -> Any:
        """One idempotent async SDK call with the blocking path's retries and translation."""
        exc = require("google.api_core.exceptions", "gcp", "gcpkms")
        method = getattr(self.current(), method_name)
        deadline = time.monotonic() + self._timeout
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await method(request=request, retry=None, timeout=max(deadline - time.monotonic(), 0.001))
            except (exc.ServiceUnavailable, exc.DeadlineExceeded) as e:
                await asyncio.sleep(retry_pause(e, what, attempt, deadline))  # back-off between retries
            except Exception as e:
                raise translated_error(e, what) from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the running loop's client (the others are closed from their own loops, or die with them)."""
        client = self.pop_current()
        if client is not None:
            await client.transport.close()


def _connected(factory: Callable[[], Any]) -> Any:
    """`factory()`, its SDK errors translated (as the blocking client's construction is)."""
    with translated(translate, "connect to Cloud KMS"):
        return factory()
