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

`record_json` is RFC 8785 for the values a record holds (strings, safe integers, booleans,
null, lists and objects with ASCII keys), where ``json.dumps`` with sorted keys produces
exactly the JCS bytes, and the `canonical_json` package path for anything else.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .canonical import canonical_json

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

    __slots__ = ("done", "error", "fields", "record", "seal")

    def __init__(self, fields: Mapping[str, Any], seal: Any) -> None:
        self.fields = fields
        self.seal = seal
        self.record: Any = None
        self.error: BaseException | None = None
        self.done = False


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


def _own_copy(error: BaseException) -> BaseException:
    """A copy per waiter, so threads raising one batch's error do not share one traceback."""
    try:
        clone = copy.copy(error)
    except Exception:  # an exception class that cannot be copied: raise the shared one
        return error
    clone.__cause__ = error.__cause__
    return clone
