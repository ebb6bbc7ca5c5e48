"""`SQLiteSpendLedger`: the spend ledger in a WAL-mode SQLite file (``<state file>.spend.db``).

``BEGIN IMMEDIATE`` takes SQLite's write lock before the read, so the check and the insert
see one state across threads and processes on this host; ``synchronous=FULL`` makes a
recorded payment survive a crash.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from ..durable_sqlite import open_durable_sqlite, translate_sqlite
from ..errors import ConfigError
from ..translation import translated
from .spend_ledger import MONTH, Entries, StoreSpendLedger

__all__ = ["SQLiteSpendLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (agent TEXT NOT NULL, asset TEXT NOT NULL, at REAL NOT NULL, amount TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spend_window ON spend (agent, asset, at);
"""
_SELECT = "SELECT at, amount FROM spend WHERE agent = ? AND asset = ? AND at > ?"


class SQLiteSpendLedger(StoreSpendLedger):
    """The spend ledger in one SQLite file; thread- and process-safe on one host."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.what = f"spend ledger {self.path}"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = open_durable_sqlite(self.path, _SCHEMA, "spend ledger", timeout=timeout)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ConfigError(f"{self.what} is closed")
        return self._db

    def _entries(self, agent: str, asset: str, since: float) -> Entries:
        with self._lock, translated(translate_sqlite, self.what):
            rows = self._conn().execute(_SELECT, (agent, asset, since)).fetchall()
        return [(float(at), int(amount)) for at, amount in rows]

    def _record(self, agent: str, asset: str, at: float, amount: int, check: Callable[[Entries], None]) -> None:
        with self._lock, translated(translate_sqlite, self.what):
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                check([(float(t), int(a)) for t, a in db.execute(_SELECT, (agent, asset, at - MONTH)).fetchall()])
                db.execute("DELETE FROM spend WHERE agent = ? AND asset = ? AND at <= ?", (agent, asset, at - MONTH))
                db.execute("INSERT INTO spend (agent, asset, at, amount) VALUES (?, ?, ?, ?)",
                           (agent, asset, at, str(amount)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
