"""`SQLiteSpendLedger`: the spend ledger in a WAL-mode SQLite file (``<state file>.spend.db``).

``BEGIN IMMEDIATE`` takes SQLite's write lock before the read, so the check and the insert
see one state across threads and processes on this host; ``synchronous=FULL`` makes a
recorded payment survive a crash (`signers.durable_sqlite`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..durable_sqlite import DurableSQLite, translate_sqlite
from ..translation import translated
from .spend_ledger import MONTH, Entries, StoreSpendLedger

__all__ = ["SQLiteSpendLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (agent TEXT NOT NULL, asset TEXT NOT NULL, at REAL NOT NULL, amount TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spend_window ON spend (agent, asset, at);
"""
_SELECT = "SELECT at, amount FROM spend WHERE agent = ? AND asset = ? AND at > ?"


class SQLiteSpendLedger(DurableSQLite, StoreSpendLedger):
    """The spend ledger in one SQLite file; thread- and process-safe on one host."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        super().__init__(path, _SCHEMA, "spend ledger", timeout=timeout)
        self.what = self._what()

    def _entries(self, agent: str, asset: str, since: float) -> Entries:
        with self._lock, translated(translate_sqlite, self.what):
            rows = self._conn().execute(_SELECT, (agent, asset, since)).fetchall()
        return [(float(at), int(amount)) for at, amount in rows]

    def _record(self, agent: str, asset: str, at: float, amount: int, check: Callable[[Entries], None]) -> None:
        with self._transaction() as db:
            check([(float(t), int(a)) for t, a in db.execute(_SELECT, (agent, asset, at - MONTH)).fetchall()])
            db.execute("DELETE FROM spend WHERE agent = ? AND asset = ? AND at <= ?", (agent, asset, at - MONTH))
            db.execute("INSERT INTO spend (agent, asset, at, amount) VALUES (?, ?, ?, ?)", (agent, asset, at, str(amount)))
