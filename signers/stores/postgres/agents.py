"""`PostgresAgentRegistry`: agents' transition histories shared by every issuer replica.

The compare-and-set insert of `signers.stores.agent_registry` is one statement in its own
transaction; the primary key ``(agent, seq)`` makes a concurrent second append at the same
position wait for the first and then insert nothing, so the loser gets Conflict and the
history stays one line. A returned append is committed (durable per ``synchronous_commit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import agent_registry as sql
from ..agent_registry import AgentRegistryStore, HistoryRow
from .connection import pg_call

__all__ = ["PostgresAgentRegistry"]

_TABLES = {"history": "keyplane_agent_history", "approvers": "keyplane_agent_approvers"}


def _sql(statement: str) -> str:
    return statement.format(**_TABLES).replace("?", "%s")


class PostgresAgentRegistry(AgentRegistryStore[Any]):
    """The agent registry contract in PostgreSQL (tables of schema version 2); thread-safe."""

    def __init__(self, pool: Any, public_uri: str, verify: Callable[[list[str], str], Any]) -> None:
        super().__init__(verify)
        self._pool = pool
        self.uri = public_uri
        self.what = f"agent registry {public_uri}"

    def _rows(self, agent: str) -> list[HistoryRow]:
        with pg_call(self._pool, f"reading the history of {agent!r}") as conn:
            rows = conn.execute(_sql(sql.SELECT_ROWS), (agent,)).fetchall()
        return [HistoryRow(int(seq), prev, digest, token) for seq, prev, digest, token in rows]

    def _insert(self, agent: str, row: HistoryRow) -> bool:
        with pg_call(self._pool, f"appending to the history of {agent!r}") as conn:
            return conn.execute(_sql(sql.INSERT_ROW), sql.row_parameters(agent, row)).rowcount == 1

    def _names(self) -> list[str]:
        with pg_call(self._pool, "listing agents") as conn:
            return [name for (name,) in conn.execute(_sql(sql.SELECT_NAMES)).fetchall()]

    def _document(self) -> tuple[int, str | None]:
        with pg_call(self._pool, "reading the approvers document") as conn:
            row = conn.execute(_sql(sql.SELECT_DOCUMENT)).fetchone()
        return (int(row[0]), row[1]) if row else (0, None)

    def _insert_document(self, version: int, text: str) -> bool:
        with pg_call(self._pool, "storing the approvers document") as conn:
            return conn.execute(_sql(sql.INSERT_DOCUMENT), (version, text, version - 1)).rowcount == 1

    def __repr__(self) -> str:
        return f"PostgresAgentRegistry(uri={self.uri!r})"
