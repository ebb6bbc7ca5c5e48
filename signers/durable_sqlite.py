"""The one way keyplane opens a SQLite file it must not lose writes in (revocations, audit log, replay cache).

WAL lets readers in other processes go on while one writes; ``synchronous=FULL`` makes a
committed write survive a crash or power loss; ``isolation_level=None`` means callers issue
``BEGIN`` themselves, so nothing commits behind their back.

Damage is a permanent fault, not an outage: a file that fails SQLite's ``quick_check`` on
open, or any later "malformed" / "not a database" error, is StateCorrupt (not retryable),
so callers fail closed instead of retrying into a wrong answer. Several processes opening
a new file at the same moment wait for each other (up to `timeout`) instead of failing with
"database is locked": switching a fresh file to WAL takes a lock SQLite's busy handler
does not wait for, so the setup is retried until the deadline.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .clock import duration
from .closing import Closing
from .errors import BackendUnavailable, ConfigError, KeyplaneError, StateCorrupt
from .translation import translated

__all__ = ["DurableSQLite", "open_durable_sqlite", "state_error", "translate_sqlite"]

_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED


def _primary_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def state_error(error: sqlite3.Error, what: str) -> KeyplaneError:
    """The keyplane error for a SQLite failure on `what`: StateCorrupt for damage, else BackendUnavailable."""
    code = _primary_code(error)
    text = str(error)
    damaged = ("malformed", "not a database", "Could not decode to UTF-8")  # the last: a flipped bit in text
    if code in _CORRUPT_CODES or any(marker in text for marker in damaged):
        return StateCorrupt(f"{what} is damaged ({text}); restore it from a backup")
    return BackendUnavailable(f"{what}: {text}", error)


def translate_sqlite(error: BaseException, what: str) -> KeyplaneError | None:
    """The `signers.translation` translator for SQLite: `state_error` for sqlite3 errors, None otherwise."""
    return state_error(error, what) if isinstance(error, sqlite3.Error) else None


def _busy(error: sqlite3.Error) -> bool:
    return _primary_code(error) in _BUSY_CODES or "locked" in str(error) or "busy" in str(error)


def open_durable_sqlite(
    path: str | os.PathLike[str], schema: str, what: str, *, timeout: float, read_only: bool = False
) -> sqlite3.Connection:
    """Open (creating folder, file and `schema` unless `read_only`) and check the file's integrity.

    `read_only` opens an existing file without creating or changing anything (for
    verifiers). Raises ConfigError when a read-only file does not exist, StateCorrupt when
    the file is damaged, BackendUnavailable when it cannot be opened in `timeout` seconds
    (ConfigError for a NaN, infinite or negative timeout).
    """
    timeout = duration(timeout, f"{what} timeout")
    path = Path(path)
    if read_only and not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    deadline = time.monotonic() + timeout
    while True:
        db: sqlite3.Connection | None = None
        try:
            if read_only:
                db = sqlite3.connect(
                    _read_only_uri(path), uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            _check_integrity(db, path, what)
            if not read_only:
                db.executescript(schema)
            return db
        except sqlite3.Error as e:
            if db is not None:
                db.close()
            if _busy(e) and time.monotonic() < deadline:
                time.sleep(random.uniform(0.005, 0.05))  # back off: another process is creating the same file
                continue
            raise state_error(e, f"{what} {path}") from e
        except OSError as e:
            if db is not None:
                db.close()
            raise BackendUnavailable(f"cannot open {what} {path}: {e.strerror}", e) from e
        except KeyplaneError:
            if db is not None:
                db.close()
            raise


def _read_only_uri(path: Path) -> str:
    # A cleanly closed WAL database has no -wal/-shm files, and even a read-only connection
    # would create them; with no writer around (no -wal file), open it as immutable instead.
    uri = path.resolve().as_uri()
    if Path(f"{path}-wal").exists():
        return f"{uri}?mode=ro"
    return f"{uri}?mode=ro&immutable=1"


def _check_integrity(db: sqlite3.Connection, path: Path, what: str) -> None:
    rows = db.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        detail = "; ".join(str(r[0]) for r in rows[:3])
        raise StateCorrupt(f"{what} {path} failed its integrity check ({detail[:200]}); restore it from a backup")


class DurableSQLite(Closing):
    """One durable SQLite file behind one connection and one lock: the base of the SQLite state classes.

    It opens the file with `open_durable_sqlite`, refuses use after `close` (ConfigError),
    and runs each write as one ``BEGIN IMMEDIATE`` transaction, so every store commits,
    rolls back and reports SQLite failures the same way.
    """

    def __init__(self, path: str | os.PathLike[str], schema: str, what: str, *, timeout: float,
                 read_only: bool = False) -> None:
        """Open (creating) the file; see `open_durable_sqlite` for what it raises."""
        self.path = Path(path)
        self._kind = what
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = open_durable_sqlite(self.path, schema, what, timeout=timeout,
                                                                  read_only=read_only)

    def _what(self) -> str:
        return f"{self._kind} {self.path}"

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ConfigError(f"{self._what()} is closed")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Under the lock: ``BEGIN IMMEDIATE``, the body, ``COMMIT`` (``ROLLBACK`` on any error), errors translated."""
        with self._lock:
            db = self._conn()
            with translated(translate_sqlite, self._what()):
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
