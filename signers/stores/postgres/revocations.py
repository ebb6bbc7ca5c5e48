"""`PostgresRevocationStore`: the revocation contract on PostgreSQL, with NOTIFY push."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ...clock import utc
from ...closing import Closing
from ...errors import ConfigError
from ...revocation import Revocation
from ...sdk import require
from ...translation import translated
from .connection import PostgresLocation, pg_call, pg_errors

__all__ = ["CHANNEL", "PostgresRevocationStore"]

CHANNEL = "keyplane_revocations"
_MAX_ID = 1024
_COLUMNS = "seq, kind, id, reason, revoked_at"
Changes = list[tuple[int, Revocation]]  # module level: the class's `list` method would shadow the builtin


def _check(id: str, kind: str, reason: str) -> None:
    for name, value in (("id", id), ("kind", kind), ("reason", reason)):
        if not isinstance(value, str) or not value or len(value) > _MAX_ID or "\x00" in value:
            raise ConfigError(f"revocation {name} must be a non-empty string of at most {_MAX_ID} characters")


def _record(row: Any) -> Revocation:
    return Revocation(row[2], row[1], row[3], row[4])


class PostgresRevocationStore(Closing):
    """Revocations shared by every issuer and verifier of a fleet; thread-safe.

    Keeps the contract of `signers.revocation`: idempotent revoke returning the first record,
    durable once returned, never removed. `changes_since(seq)` and `wait_for_changes` let a
    verifier cache follow every revocation in order without missing one.
    """

    push = True

    def __init__(self, pool: Any, location: PostgresLocation) -> None:
        self._pool = pool
        self._location = location
        self._listen_lock = threading.Lock()
        self._listener: Any = None
        self.uri = location.public_uri

    def revoke(self, id: str, *, kind: str = "jti", reason: str = "unspecified",
               at: datetime | None = None) -> Revocation:
        """Record a revocation (first one wins); ConfigError for bad input, BackendUnavailable if down."""
        _check(id, kind, reason)
        when = utc(at, "revocation time")
        with pg_call(self._pool, f"revoking {kind} {id[:80]!r}") as conn, conn.transaction():
            inserted = conn.execute(
                "INSERT INTO keyplane_revocations (kind, id, reason, revoked_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (kind, id) DO NOTHING RETURNING seq", (kind, id, reason, when)).fetchone()
            if inserted is not None:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(inserted[0])))
            row = conn.execute(f"SELECT {_COLUMNS} FROM keyplane_revocations WHERE kind = %s AND id = %s",
                               (kind, id)).fetchone()
        return _record(row)

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        with pg_call(self._pool, "reading a revocation") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM keyplane_revocations WHERE kind = %s AND id = %s",
                               (kind, id)).fetchone()
        return None if row is None else _record(row)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return self.get(id, kind=kind) is not None

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        with pg_call(self._pool, "listing revocations") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM keyplane_revocations WHERE %s::text IS NULL OR kind = %s ORDER BY seq",
                (kind, kind)).fetchall()
        return iter([_record(r) for r in rows])

    def changes_since(self, seq: int, limit: int = 10_000) -> Changes:
        """Revocations with a sequence number above `seq`, in order (at most `limit`)."""
        with pg_call(self._pool, "reading new revocations") as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM keyplane_revocations WHERE seq > %s ORDER BY seq LIMIT %s",
                                (seq, limit)).fetchall()
        return [(int(r[0]), _record(r)) for r in rows]

    def head(self) -> int:
        """The newest sequence number (0 when nothing is revoked)."""
        with pg_call(self._pool, "reading the revocation head") as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM keyplane_revocations").fetchone()[0])

    def wait_for_changes(self, seq: int, timeout: float) -> Changes:
        """Block up to `timeout` s for a NOTIFY, then return what is new after `seq`.

        Raises BackendUnavailable when the listening connection is lost (it is reopened on
        the next call), so a caller knows the push channel is down and can poll instead.
        """
        with self._listen_lock:
            conn = self._listening()
            try:
                with translated(pg_errors, "waiting for revocations"):
                    for _ in conn.notifies(timeout=timeout, stop_after=1):
                        pass
            except Exception:
                self._drop_listener()
                raise
        return self.changes_since(seq)

    def _listening(self) -> Any:
        if self._listener is None or self._listener.closed:
            psycopg = require("psycopg", "postgres", "PostgreSQL state store")
            with translated(pg_errors, "listening for revocations"):
                conn = psycopg.Connection.connect(self._location.conninfo(), autocommit=True)
                conn.execute(f"LISTEN {CHANNEL}")
            self._listener = conn
        return self._listener

    def _drop_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone either way
                self._listener.close()
            self._listener = None

    def close(self) -> None:
        with self._listen_lock:
            self._drop_listener()

    def __repr__(self) -> str:
        return f"PostgresRevocationStore(uri={self.uri!r})"
