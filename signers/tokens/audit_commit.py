"""Group commit for the audit logs: concurrent appenders share one durable write.

An fsync (JSONL) or a ``synchronous=FULL`` commit (SQLite) costs far more than building a
record, and one log has one writer at a time, so appends from many threads used to queue
up for one fsync each. With `CommitQueue` an appender joins a queue; whoever finds no write
in progress becomes the *leader*: it takes every queued append, chains them after the head
in queue order, writes them with one durable write, and then wakes the others. Those that
arrived while it wrote wait for the next leader (one of them). So:

- an append returns only after the write holding its record was made durable;
- the chain stays one linear chain: one leader at a time assigns the sequence numbers;
- a failed durable write is raised to every appender of that batch (each its own copy of
  the typed error), none of them is acknowledged; a crash mid-batch loses only appends
  that had not returned;
- a record that cannot be built (not JSON, a checkpoint whose seal failed) fails alone and
  takes no sequence number, so the others chain on without a gap.

`submit_async` is the same queue for code on an event loop: the append is queued from the
loop, and the durable write runs on keyplane's I/O pool, one pool hop per *batch* rather
than one per append (a thread hop for every request costs an HTTP service more CPU than
the signature it audits). The coroutine returns once the write holding its record is
durable, exactly as `submit` does; a batch's waiters are woken by one callback per loop.

`record_json` is RFC 8785 for the values a record holds (strings, safe integers, booleans,
null, lists and objects with ASCII keys), where ``json.dumps`` with sorted keys produces
exactly the JCS bytes, and the `canonical_json` package path for anything else.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..workers import io_executor
from .canonical import canonical_json

if TYPE_CHECKING:
    import asyncio

__all__ = ["Batch", "CommitQueue", "Pending", "record_json", "stored_json"]

_SAFE = 2**53 - 1
_DEPTH = 32
_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_STORED_ASCII = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _plain(value: Any, depth: int = 0) -> bool:
    """True when ``json.dumps(sort_keys=True, ensure_ascii=False)`` of `value` is its RFC 8785 form."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return -_SAFE <= value <= _SAFE
    if depth >= _DEPTH:
        return False
    if kind is dict:  # ASCII keys: code-point order is JCS's UTF-16 order
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            if type(item) is not str and not _plain(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    return False  # floats (ECMAScript formatting), tuples, subclasses...: the full implementation


def record_json(value: Any) -> bytes:
    """`value` as RFC 8785 UTF-8 bytes (same bytes as `canonical_json`); ConfigError when it is not serialisable."""
    if _plain(value):
        try:
            return _SORTED(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the full implementation refuse it
            pass
    return canonical_json(value)


def stored_json(record: Mapping[str, Any], *, ensure_ascii: bool) -> str:
    """A record as stored: sorted keys, no spaces (ASCII-only for SQLite, as before)."""
    return (_STORED_ASCII if ensure_ascii else _SORTED)(record)


class Pending:
    """One queued append: its input, then its record or its error."""

    __slots__ = ("done", "error", "fields", "future", "record", "seal")

    def __init__(self, fields: Mapping[str, Any], seal: Any, future: asyncio.Future[Any] | None = None) -> None:
        self.fields = fields
        self.seal = seal
        self.record: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.future = future  # set for an append queued from an event loop (`submit_async`)


Batch = list[Pending]


class CommitQueue:
    """The leader/follower queue in front of one log's durable write.

    `write` receives a batch in arrival order; it sets `record` on every item it wrote (or
    `error` on an item it could not build) and raises when the durable write fails, which
    then becomes the error of every item without one. It is never called twice at once.
    """

    def __init__(self, write: Callable[[Batch], None]) -> None:
        self._write = write
        self._cond = threading.Condition(threading.Lock())
        self._queue: Batch = []
        self._writing = False

    def submit(self, fields: Mapping[str, Any], seal: Any = None) -> Any:
        """The item's record once it is durable; raises the item's (or its batch's) error."""
        item = Pending(fields, seal)
        with self._cond:
            self._queue.append(item)
            while self._writing and not item.done:
                self._cond.wait()
            if not item.done:  # nobody is writing and this item is still queued: lead
                self._writing = True
                batch, self._queue = self._queue, []
        if not item.done:
            self._lead(batch)
        if item.error is not None:
            raise _own_copy(item.error)
        return item.record

    async def submit_async(self, fields: Mapping[str, Any], seal: Any = None) -> Any:
        """`submit` from an event loop: never blocks the loop; the write runs on keyplane's I/O pool.

        The first append to find no write in progress starts one drain on the pool; appends
        queued meanwhile ride in the same or the next batch. Raises what `submit` raises.
        """
        import asyncio  # stdlib; loaded only by async callers

        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = Pending(fields, seal, future)
        with self._cond:
            self._queue.append(item)
            start = not self._writing
            if start:
                self._writing = True
        if start:
            self._start_drain()
        await asyncio.shield(future)  # a cancelled request does not cancel a write other appends share
        if item.error is not None:
            raise _own_copy(item.error)
        return item.record

    def _start_drain(self) -> None:
        try:
            io_executor().submit(self._drain)
        except RuntimeError:  # the pool is shut down (interpreter exit): a thread of its own, still off the loop
            threading.Thread(target=self._drain, name="keyplane-audit-drain", daemon=True).start()

    def _drain(self) -> None:
        """One batch on a pool thread (the caller set `_writing`); `_lead` starts the next if needed."""
        with self._cond:
            batch, self._queue = self._queue, []
        self._lead(batch)

    def _lead(self, batch: Batch) -> None:
        try:
            self._write(batch)
        except BaseException as e:
            for pending in batch:
                if pending.error is None:
                    pending.error = e
                    pending.record = None  # built but not durable: not acknowledged
        finally:
            with self._cond:
                for pending in batch:
                    pending.done = True
                self._writing = False
                self._cond.notify_all()
                # queued appends that are all on event loops have no thread to lead: drain for them
                drain = bool(self._queue) and all(p.future is not None for p in self._queue)
                if drain:
                    self._writing = True
            _wake(batch)
            if drain:
                self._start_drain()


def _wake(batch: Batch) -> None:
    """Resolve the batch's event-loop appends: one thread-safe callback per loop, not one per append."""
    by_loop: dict[Any, list[Any]] = {}
    for pending in batch:
        if pending.future is not None:
            by_loop.setdefault(pending.future.get_loop(), []).append(pending.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, futures)


def _resolve(futures: list[Any]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def _own_copy(error: BaseException) -> BaseException:
    """A copy per waiter, so threads raising one batch's error do not share one traceback."""
    try:
        clone = copy.copy(error)
    except Exception:  # an exception class that cannot be copied: raise the shared one
        return error
    clone.__cause__ = error.__cause__
    return clone
