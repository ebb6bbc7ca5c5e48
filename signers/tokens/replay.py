"""Replay caches: remember single-use token ids and challenge nonces until they expire.

`ReplayCache` is the contract (a Protocol): `consume(key, expires_at)` records `key` and
returns True the first time, False every later time, atomically across every thread and
process sharing the cache. A shared store (PostgreSQL ``INSERT ... ON CONFLICT DO
NOTHING``, Redis ``SET NX PX``) implements the same two methods for a fleet.

The default is `SQLiteReplayCache` at ``$KEYPLANE_REPLAY_CACHE``, or
``$XDG_STATE_HOME/keyplane/replay.sqlite`` (``~/.local/state/keyplane/replay.sqlite``):
durable, so a restarted verifier still refuses a token it has seen. Entries are kept until
their token's expiry (plus leeway) has passed, after which the token is refused as expired
anyway, so the cache stays as small as the set of live tokens.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..closing import Closing
from ..durable_sqlite import DurableSQLite, translate_sqlite
from ..errors import ConfigError
from ..translation import translated

__all__ = ["MemoryReplayCache", "ReplayCache", "SQLiteReplayCache", "default_replay_cache"]

_MAX_KEY = 2048
_SCHEMA = "CREATE TABLE IF NOT EXISTS replay (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"


@runtime_checkable
class ReplayCache(Protocol):
    """Single-use enforcement: the first `consume` of a key wins, every later one loses."""

    def consume(self, key: str, expires_at: float) -> bool:
        """Record `key` until `expires_at` (epoch seconds); True if it was not seen before."""
        ...


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise ConfigError(f"replay cache key must be a non-empty string of at most {_MAX_KEY} characters")


class MemoryReplayCache(Closing):
    """A process-local cache (tests, one-process services); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def consume(self, key: str, expires_at: float) -> bool:
        """True the first time `key` is seen (until `expires_at`); ConfigError for a bad key."""
        _check_key(key)
        current = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: e for k, e in self._seen.items() if e >= current}
            if key in self._seen and self._seen[key] >= current:
                return False
            self._seen[key] = float(expires_at)
            return True


class SQLiteReplayCache(DurableSQLite):
    """The default cache: a WAL-mode SQLite file, atomic across threads and processes."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        """Open (creating) the cache; StateCorrupt if the file is damaged, BackendUnavailable if unreachable."""
        super().__init__(path, _SCHEMA, "replay cache", timeout=timeout)

    def consume(self, key: str, expires_at: float) -> bool:
        """True the first time `key` is seen; StateCorrupt / BackendUnavailable when the file fails."""
        _check_key(key)
        current = time.time()
        with self._transaction() as db:
            db.execute("DELETE FROM replay WHERE key = ? AND expires_at < ?", (key, current))
            inserted = db.execute(
                "INSERT INTO replay (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, float(expires_at)),
            ).rowcount
        return inserted == 1

    def purge(self) -> int:
        """Drop entries whose token has expired; returns how many. StateCorrupt / BackendUnavailable on failure."""
        with self._lock, translated(translate_sqlite, self._what()):
            return self._conn().execute("DELETE FROM replay WHERE expires_at < ?", (time.time(),)).rowcount


_defaults: dict[Path, SQLiteReplayCache] = {}
_defaults_lock = threading.Lock()


def default_replay_cache() -> SQLiteReplayCache:
    """The process's default cache (see the module docstring for where it lives), opened once per path.

    Raises StateCorrupt / BackendUnavailable when the file cannot be opened.
    """
    configured = os.environ.get("KEYPLANE_REPLAY_CACHE")
    if configured:
        path = Path(configured)
    else:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(state) / "keyplane" / "replay.sqlite"
    with _defaults_lock:
        cache = _defaults.get(path)
        if cache is None:
            cache = _defaults[path] = SQLiteReplayCache(path)
        return cache
