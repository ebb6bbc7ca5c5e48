"""Concurrent `sign_async` calls sent as one Transit ``batch_input`` request.

64 concurrent `sign_async` calls, each one HTTP round trip on a worker thread, ran at about
1.1x sequential signing here: the client work (requests, urllib3, JSON) holds the GIL, and
the server shares the cores. Transit signs a batch in one request, so the calls a loop
makes within one tick (``asyncio.gather`` of many signatures, a server answering many
requests) are collected and sent together: one request, one worker thread, one JSON
document for all of them.

Each caller still gets its own result: its signature, or its own item's typed error (a
Transit per-item ``error``); an error of the request as a whole (server unreachable,
token refused, key replaced) is raised to every caller of that batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from signers.errors import KeyplaneError
from signers.workers import WorkerPool, run_blocking

if TYPE_CHECKING:
    import asyncio

__all__ = ["Coalescer"]

Batch = Callable[[list[bytes]], list["bytes | KeyplaneError"]]


class Coalescer:
    """Collects the messages submitted in one event-loop tick and signs them with one `batch` call.

    `batch` runs on `pool` (never the loop's default executor) and returns, per message in
    order, its signature or its KeyplaneError; an exception it raises goes to every caller
    of that batch. The first call of a tick schedules the send with ``call_soon``, so every
    call already scheduled for that tick (the tasks of one ``gather``) joins it.
    """

    def __init__(self, batch: Batch, pool: Callable[[], WorkerPool]) -> None:
        self._batch = batch
        self._pool = pool
        self._pending: tuple[asyncio.AbstractEventLoop, list[tuple[bytes, asyncio.Future[bytes]]]] | None = None
        self._sending: set[asyncio.Task[None]] = set()  # strong references until each batch is answered

    async def submit(self, message: bytes) -> bytes:
        """`message`'s signature from the next batch; raises its item's error or the batch's."""
        import asyncio  # stdlib; async callers only

        loop = asyncio.get_running_loop()
        pending = self._pending
        if pending is None or pending[0] is not loop:
            pending = self._pending = (loop, [])
            loop.call_soon(self._flush, pending)
        future: asyncio.Future[bytes] = loop.create_future()
        pending[1].append((message, future))
        return await future

    def _flush(self, pending: tuple[asyncio.AbstractEventLoop, list[tuple[bytes, asyncio.Future[bytes]]]]) -> None:
        if self._pending is pending:
            self._pending = None
        loop, items = pending
        task = loop.create_task(self._send(items))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, items: list[tuple[bytes, asyncio.Future[bytes]]]) -> None:
        import asyncio  # stdlib; async callers only

        live = [(message, future) for message, future in items if not future.done()]  # a cancelled caller is dropped
        if not live:
            return
        try:
            results: list[Any] = await run_blocking(self._batch, [m for m, _ in live], pool=self._pool())
        except asyncio.CancelledError:
            for _, future in live:
                future.cancel()
            raise
        except Exception as e:  # the batch as a whole failed: every caller of it gets the error
            results = [e] * len(live)
        for (_, future), result in zip(live, results, strict=True):
            if future.done():
                continue
            if isinstance(result, bytes):
                future.set_result(result)
            else:
                future.set_exception(result)
