"""`PostgresSpendLedger`: the spend ledger shared by every gate replica (schema version 3).

Each charge is one transaction that first takes a transaction-scoped advisory lock on the
(agent, asset) pair, so concurrent charges for one agent and asset run one after another
on every host, and others do not wait. Amounts are ``numeric`` (exact). A recorded payment
is committed (durable per ``synchronous_commit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..spend_ledger import MONTH, Entries, StoreSpendLedger
from .connection import pg_call

__all__ = ["PostgresSpendLedger"]

_SELECT = "SELECT at, amount FROM keyplane_spend WHERE agent = %s AND asset = %s AND at > %s"


class PostgresSpendLedger(StoreSpendLedger):
    """The spend ledger contract in PostgreSQL; thread-safe (psycopg's pool)."""

    def __init__(self, pool: Any, public_uri: str) -> None:
        self._pool = pool
        self.what = f"spend ledger {public_uri}"

    def _entries(self, agent: str, asset: str, since: float) -> Entries:
        with pg_call(self._pool, f"reading what {agent!r} spent") as conn:
            rows = conn.execute(_SELECT, (agent, asset, since)).fetchall()
        return [(float(at), int(amount)) for at, amount in rows]

    def _record(self, agent: str, asset: str, at: float, amount: int, check: Callable[[Entries], None]) -> None:
        with pg_call(self._pool, f"recording a payment of {agent!r}") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"spend:{len(agent)}:{agent}:{asset}",))
            check([(float(t), int(a)) for t, a in conn.execute(_SELECT, (agent, asset, at - MONTH)).fetchall()])
            conn.execute("DELETE FROM keyplane_spend WHERE agent = %s AND asset = %s AND at <= %s",
                         (agent, asset, at - MONTH))
            conn.execute("INSERT INTO keyplane_spend (agent, asset, at, amount) VALUES (%s, %s, %s, %s)",
                         (agent, asset, at, amount))
