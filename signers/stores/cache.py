"""`RevocationCache`: a verifier's in-process answers in front of a shared revocation store.

A verifier checks revocation on every request; asking PostgreSQL or Redis each time would
put the database on the hot path. The cache answers from memory and follows the store's
push channel (PostgreSQL NOTIFY, a Redis stream) so a revocation anywhere reaches it within
moments. Its promise is bounded staleness, and it fails closed:

- every answer it gives reflects all revocations up to at most `staleness_bound` seconds ago;
- if the push channel is lost it polls the store instead; if the store cannot be reached
  either, then past the bound every lookup raises BackendUnavailable (a refusal), never a
  stale "not revoked";
- entries are kept until the token they answer for expires (`expires_at`, else
  `default_ttl`) and at most `max_entries` of them (least recently used go first), so the
  cache holds what is being verified, not every revocation ever made.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import duration
from ..closing import Closing
from ..errors import BackendUnavailable, ConfigError, KeyplaneError
from ..revocation import Revocation

__all__ = ["CacheStats", "RevocationCache"]


@dataclass
class CacheStats:
    """Counters an operator can export (hits, misses, push losses, refusals for staleness)."""

    hits: int = 0
    misses: int = 0
    push_lost: int = 0
    polls: int = 0
    stale_refusals: int = 0
    mode: str = "push"


class RevocationCache(Closing):
    """Satisfies RevocationCheck (`is_revoked`, `get`); safe for many threads.

    `store` is a shared revocation store with `head()`, `changes_since(cursor)` and
    `wait_for_changes(cursor, timeout)` (PostgreSQL, Redis). Raises BackendUnavailable at
    construction when the store cannot be read, and from lookups once stale.
    """

    def __init__(self, store: Any, *, staleness_bound: float = 5.0, push_timeout: float = 1.0,
                 poll_interval: float = 0.5, default_ttl: float = 3600.0, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._bound = duration(staleness_bound, "staleness_bound", allow_zero=False)
        self._push_timeout = duration(push_timeout, "push_timeout", allow_zero=False)
        if self._push_timeout >= self._bound:
            raise ConfigError("push_timeout must be shorter than staleness_bound")
        self._poll_interval = duration(poll_interval, "poll_interval", allow_zero=False)
        self._ttl = duration(default_ttl, "default_ttl", allow_zero=False)
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[Revocation | None, float]] = OrderedDict()
        self.stats = CacheStats()
        started = clock()
        self._cursor: Any = store.head()
        self._synced_at = started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="keyplane-revocation-cache", daemon=True)
        self._thread.start()

    # -- the read side ---------------------------------------------------------------------

    def get(self, id: str, *, kind: str = "jti", expires_at: float | None = None) -> Revocation | None:
        """The revocation of (kind, id) or None; BackendUnavailable when the cache is stale."""
        now = self._clock()
        age = now - self._synced_at
        if age > self._bound:
            self.stats.stale_refusals += 1
            raise BackendUnavailable(f"revocation state is {age:.1f} s old, past the {self._bound:g} s bound: "
                                     "refusing rather than trusting it")
        key = (kind, id)
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[1] > now:
                self._entries.move_to_end(key)
                self.stats.hits += 1
                return found[0]
        self.stats.misses += 1
        record = self._store.get(id, kind=kind)  # BackendUnavailable propagates: fail closed
        keep_until = now + self._ttl
        if expires_at is not None:
            keep_until = min(keep_until, now + max(0.0, expires_at - time.time()))
        with self._lock:
            self._entries[key] = (record, keep_until)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return record

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return self.get(id, kind=kind) is not None

    @property
    def age(self) -> float:
        """Seconds since the cache was last known to hold every revocation."""
        return self._clock() - self._synced_at

    # -- following the store -----------------------------------------------------------------

    def _apply(self, changes: list[tuple[Any, Revocation]]) -> None:
        with self._lock:
            for cursor, record in changes:
                key = (record.kind, record.id)
                if key in self._entries:  # others are fetched from the store when first asked for
                    self._entries[key] = (record, self._entries[key][1])
                self._cursor = cursor

    def _follow(self) -> None:
        polls_since_push = 0
        while not self._stop.is_set():
            started = self._clock()
            try:
                if self.stats.mode == "push":
                    changes = self._store.wait_for_changes(self._cursor, self._push_timeout)
                else:
                    changes = self._store.changes_since(self._cursor)
                    self.stats.polls += 1
                    polls_since_push += 1
                self._apply(changes)
                self._synced_at = started  # complete as of the moment this call began
                if self.stats.mode == "poll":
                    if polls_since_push >= 4:  # the store answers again: try the push channel
                        self.stats.mode, polls_since_push = "push", 0
                    else:
                        self._stop.wait(self._poll_interval)
            except KeyplaneError:
                if self.stats.mode == "push":
                    self.stats.push_lost += 1
                self.stats.mode, polls_since_push = "poll", 0
                self._stop.wait(self._poll_interval)
            except Exception:  # a store bug must not kill the follower silently: stay stale, fail closed
                self.stats.mode = "poll"
                self._stop.wait(self._poll_interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._push_timeout + self._poll_interval + 5)
