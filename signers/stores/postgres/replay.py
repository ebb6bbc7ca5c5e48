"""`PostgresReplayCache`: single-use ids consumed atomically across the fleet."""

from __future__ import annotations

from typing import Any

from ...clock import from_epoch
from ...errors import ConfigError
from .connection import pg_call

__all__ = ["PostgresReplayCache"]

_SWEEP_EVERY = 512  # consumptions between deletions of expired ids


class PostgresReplayCache:
    """`consume(key, expires_at)` is True exactly once per key until the key's expiry passes."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._since_sweep = 0

    def consume(self, key: str, expires_at: float) -> bool:
        """Mark `key` used until `expires_at` (epoch seconds); False if it was already used and not expired."""
        until = from_epoch(expires_at)
        if not isinstance(key, str) or not key or len(key) > 1024 or until is None:
            raise ConfigError("a replay-cache key is a non-empty string and its expiry a finite time")
        with pg_call(self._pool, "consuming a single-use id") as conn:
            row = conn.execute(
                "INSERT INTO keyplane_replay (key, expires_at) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                "SET expires_at = EXCLUDED.expires_at WHERE keyplane_replay.expires_at < now() RETURNING key",
                (key, until)).fetchone()
            self._since_sweep += 1
            if self._since_sweep >= _SWEEP_EVERY:
                self._since_sweep = 0
                conn.execute("DELETE FROM keyplane_replay WHERE expires_at < now()")
        return row is not None
