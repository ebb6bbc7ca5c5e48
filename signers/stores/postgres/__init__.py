"""PostgreSQL state (psycopg 3 with its connection pool): revocations, audit logs, replay cache, agents.

Revocations are rows keyed by ``(kind, id)`` (``ON CONFLICT DO NOTHING``: the first record
wins) with a ``seq`` that orders them, and every new one is announced with ``NOTIFY`` so
subscribed verifiers hear of it at once. An audit log is rows keyed by ``(log, seq)``,
appended under a transaction-scoped advisory lock, so writers on several hosts extend one
linear chain (the key forbids a fork even if a lock were lost). A commit that returned is
durable as the server's ``synchronous_commit`` says (on by default: fsynced). Agents'
histories are rows keyed by ``(agent, seq)``, appended by compare-and-set on the head.
"""

from __future__ import annotations

from .backend import PostgresState

__all__ = ["PostgresState"]
