"""`SQLiteAgentRegistry`: the agent registry in a WAL-mode SQLite file (``<state file>.agents.db``).

Every write is one ``BEGIN IMMEDIATE`` transaction around the compare-and-set insert of
`agent_registry`, so SQLite's write lock makes it atomic across threads and processes;
``synchronous=FULL`` makes a returned append survive a crash (`signers.durable_sqlite`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..durable_sqlite import open_durable_sqlite, translate_sqlite
from ..errors import ConfigError
from ..translation import translated
from . import agent_registry as sql
from .agent_registry import AgentRegistryStore, HistoryRow

__all__ = ["SQLiteAgentRegistry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_history (
    agent TEXT NOT NULL, seq INTEGER NOT NULL CHECK (seq > 0), prev TEXT NOT NULL, hash TEXT NOT NULL,
    token TEXT NOT NULL, PRIMARY KEY (agent, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_approvers (version INTEGER PRIMARY KEY CHECK (version > 0), document TEXT NOT NULL);
"""
_TABLES = {"history": "agent_history", "approvers": "agent_approvers"}


class SQLiteAgentRegistry(AgentRegistryStore[Any]):
    """The agent registry contract (see `signers.stores.agent_registry`) in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], verify: Callable[[list[str], str], Any], *,
                 timeout: float = 10.0) -> None:
        super().__init__(verify)
        self.path = Path(path)
        self.what = f"agent registry {self.path}"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = open_durable_sqlite(self.path, _SCHEMA, "agent registry",
                                                                  timeout=timeout)

    def _run(self, statement: str, parameters: tuple[Any, ...] = (), *, write: bool = False) -> tuple[list[Any], int]:
        with self._lock, translated(translate_sqlite, self.what):
            if self._db is None:
                raise ConfigError(f"{self.what} is closed")
            if not write:
                cursor = self._db.execute(statement.format(**_TABLES), parameters)
                return cursor.fetchall(), cursor.rowcount
            # IMMEDIATE: take the write lock first (waiting for it), so the check and the insert
            # see the same state; a deferred upgrade from a stale snapshot would fail as "busy"
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(statement.format(**_TABLES), parameters)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return [], cursor.rowcount

    def _rows(self, agent: str) -> list[HistoryRow]:
        return [HistoryRow(*row) for row in self._run(sql.SELECT_ROWS, (agent,))[0]]

    def _insert(self, agent: str, row: HistoryRow) -> bool:
        return self._run(sql.INSERT_ROW, sql.row_parameters(agent, row), write=True)[1] == 1

    def _names(self) -> list[str]:
        return [name for (name,) in self._run(sql.SELECT_NAMES)[0]]

    def _document(self) -> tuple[int, str | None]:
        rows = self._run(sql.SELECT_DOCUMENT)[0]
        return (int(rows[0][0]), rows[0][1]) if rows else (0, None)

    def _insert_document(self, version: int, text: str) -> bool:
        return self._run(sql.INSERT_DOCUMENT, (version, text, version - 1), write=True)[1] == 1

    def close(self) -> None:
        """Close the connection; idempotent (a closed registry refuses every call with ConfigError)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def __repr__(self) -> str:
        return f"SQLiteAgentRegistry(path={str(self.path)!r})"
