"""State stores by URI: revocations, audit logs, replay caches and the agent registry shared by a fleet.

One URI picks the engine, exactly like key stores::

    sqlite:///var/lib/keyplane/state.db           (today's SQLite stores; one machine)
    postgresql://keyplane@db.internal/keyplane?password-source=env:PGPASSWORD&sslmode=verify-full
    redis://cache.internal:6379/0?password-source=file:/run/secrets/redis

`open_state(uri)` returns a `StateBackend` (found through the entry-point group
``keyplane.stores``, so a third-party engine plugs in like a key back end); its
`revocations()`, `audit_log(name)` and `replay_cache()` return stores that keep the
contracts of `signers.revocation` and `signers.audit`; `agent_registry(verify)` the agents'
transition histories, append-only by compare-and-set (`signers.stores.agent_registry`).
Credentials come from ``*-source`` secrets only. Every operation has a timeout and surfaces BackendUnavailable
with the cause; damaged or too-new state is a typed, non-retryable refusal.
"""

from __future__ import annotations

from .base import StateBackend, StoreFeatures
from .registry import STORE_GROUP, open_state

__all__ = ["STORE_GROUP", "StateBackend", "StoreFeatures", "open_state"]
