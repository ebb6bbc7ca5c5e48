"""The one way keyplane opens a SQLite file it must not lose writes in (revocations, audit log).

WAL lets readers in other processes go on while one writes; ``synchronous=FULL`` makes a
committed write survive a crash or power loss; ``isolation_level=None`` means callers issue
``BEGIN`` themselves, so nothing commits behind their back.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import BackendUnavailable

__all__ = ["open_durable_sqlite"]


def open_durable_sqlite(path: str | os.PathLike[str], schema: str, what: str, *, timeout: float) -> sqlite3.Connection:
    """Open (creating folder, file and `schema` as needed); BackendUnavailable naming `what` on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except (sqlite3.Error, OSError) as e:
        raise BackendUnavailable(f"cannot open {what} {path}: {e}", e) from e
    return db
