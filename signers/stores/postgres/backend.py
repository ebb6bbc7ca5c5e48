"""`PostgresState`: the ``postgresql://`` StateBackend (one pool, the schema checked at open)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..base import StateBackend, StoreFeatures
from .agents import PostgresAgentRegistry
from .audit import PostgresAuditLog
from .connection import connect_pool, parse_postgres_uri, pg_call
from .replay import PostgresReplayCache
from .revocations import PostgresRevocationStore
from .schema import migrate
from .spend import PostgresSpendLedger

__all__ = ["PostgresState"]


class PostgresState(StateBackend):
    """Revocations, audit logs, the replay cache and the agent registry in one PostgreSQL database."""

    def __init__(self, uri: str) -> None:
        self._location = parse_postgres_uri(uri)
        self.uri = self._location.public_uri
        self._pool: Any = connect_pool(self._location)
        try:
            migrate(self._pool, allowed=self._location.migrate)
            with pg_call(self._pool, "reading synchronous_commit") as conn:
                sync = str(conn.execute("SHOW synchronous_commit").fetchone()[0])
        except BaseException:
            self._pool.close()
            raise
        self.features = StoreFeatures(
            "postgresql", f"a returned write is committed; synchronous_commit={sync} on the server "
                          f"({'fsynced before the commit returns' if sync in ('on', 'remote_write', 'remote_apply') else 'may be lost in a crash'})",
            push=True, shared=True)
        self._revocations: PostgresRevocationStore | None = None

    @classmethod
    def from_uri(cls, uri: str) -> PostgresState:
        return cls(uri)

    def revocations(self) -> PostgresRevocationStore:
        if self._revocations is None:
            self._revocations = PostgresRevocationStore(self._pool, self._location)
        return self._revocations

    def audit_log(self, name: str = "default") -> PostgresAuditLog:
        return PostgresAuditLog(self._pool, name, self.uri)

    def replay_cache(self) -> PostgresReplayCache:
        return PostgresReplayCache(self._pool)

    def agent_registry(self, verify: Callable[[list[str], str], Any]) -> PostgresAgentRegistry:
        return PostgresAgentRegistry(self._pool, self.uri, verify)

    def spend_ledger(self) -> PostgresSpendLedger:
        return PostgresSpendLedger(self._pool, self.uri)

    def allocate_index(self, list_uri: str) -> int:
        """The next unused index of the status list at `list_uri`, unique across every replica."""
        with pg_call(self._pool, "allocating a status list index") as conn:
            row = conn.execute("INSERT INTO keyplane_status_index (list, next) VALUES (%s, 1) ON CONFLICT (list) "
                               "DO UPDATE SET next = keyplane_status_index.next + 1 RETURNING next", (list_uri,)).fetchone()
        return int(row[0]) - 1

    def close(self) -> None:
        if self._revocations is not None:
            self._revocations.close()
        self._pool.close()
