"""Revocation: a store of revoked token ids and certificate serials.

The contract is `RevocationStore` (a Protocol); what a verifier needs is only the
read half, `RevocationCheck`, which a store and a loaded `RevocationList` both satisfy.

Contract every store keeps, so a shared one (PostgreSQL, Redis) drops in for a fleet:

- an entry is keyed by ``(kind, id)``: ``kind`` ``"jti"`` for tokens, ``"x509-serial"``
  for certificates (``id`` = ``format(serial, "x")``); other kinds are allowed;
- ``revoke`` is idempotent: revoking again returns the FIRST record unchanged (an
  ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT``, or Redis ``HSETNX``);
- a ``revoke`` that returned is durable and visible to every later ``is_revoked`` /
  ``get`` from any thread or process using the same store;
- entries are never removed (a revoked id stays revoked);
- a whole compact token is never stored as an id (it would match nothing): `revoke`
  refuses one, and `revoke_token` verifies it is ours and revokes its ``jti``;
- damage fails closed: a store that cannot vouch for its answer raises StateCorrupt
  (never "not revoked");
- times are timezone-aware UTC datetimes (microsecond precision is enough).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..clock import utc
from ..closing import Closing
from ..durable_sqlite import DurableSQLite, translate_sqlite
from ..errors import ConfigError, StateCorrupt, TokenInvalid
from ..translation import translated
from .jwk import KeySource
from .jws_parse import parse_jws
from .jws_verify import verify_jws

__all__ = [
    "MemoryRevocationStore",
    "Revocation",
    "RevocationCheck",
    "RevocationStore",
    "SQLiteRevocationStore",
    "revoke_token",
]

_MAX_ID = 1024  # ids are jtis and hex serials; anything longer is a caller's mistake


@dataclass(frozen=True)
class Revocation:
    """One revoked id: what (``kind`` + ``id``), why, and when."""

    id: str
    kind: str
    reason: str
    revoked_at: datetime


@runtime_checkable
class RevocationCheck(Protocol):
    """The read side a verifier needs (a store, or a loaded signed list)."""

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        """True when revoked; raises (StateCorrupt, BackendUnavailable, TokenExpired) rather than guess."""
        ...

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        """The record, or None; raises (StateCorrupt, BackendUnavailable, TokenExpired) rather than guess."""
        ...


@runtime_checkable
class RevocationStore(RevocationCheck, Protocol):
    """A writable store of revocations; see the module docstring for the contract."""

    def revoke(
        self, id: str, *, kind: str = "jti", reason: str = "unspecified", at: datetime | None = None
    ) -> Revocation:
        """Record durably, idempotently; ConfigError for a bad id or a whole token, StateCorrupt on damage."""
        ...

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        """Every revocation (of `kind`), oldest first; StateCorrupt / BackendUnavailable when unreadable."""
        ...


def _validate(id: str, kind: str, reason: str = "unspecified") -> None:
    for name, value in (("id", id), ("kind", kind), ("reason", reason)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"revocation {name} must be a non-empty string")
    if id.count(".") == 2:  # maybe a compact JWS: the parser decides
        try:
            parse_jws(id)
        except TokenInvalid:
            pass
        else:
            raise ConfigError(
                "that is a whole token, not its id: pass the token's jti, or use revoke_token(store, token, keys) "
                "(`keyplane revoke TOKEN --jwks ...`) to revoke the jti of a token we issued"
            )
    for name, value in (("id", id), ("kind", kind), ("reason", reason)):
        if len(value) > _MAX_ID:
            raise ConfigError(f"revocation {name} must be at most {_MAX_ID} characters, not {len(value)}")


def revoke_token(
    store: RevocationStore, token: str | bytes, keys: KeySource, *, reason: str = "unspecified",
    at: datetime | None = None,
) -> Revocation:
    """Revoke a whole token by its ``jti``, after checking that `keys` (ours) signed it.

    Expiry is not checked (revoking an expired token is harmless). Raises TokenInvalid
    when the token is malformed, not signed by `keys` or has no string ``jti``, and what
    the store's `revoke` raises.
    """
    verify_jws(token, keys, max_kidless_keys=16)
    jti = parse_jws(token).claims().get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenInvalid("the token has no jti, so it cannot be revoked by id")
    return store.revoke(jti, kind="jti", reason=reason, at=at)


class _ListNumbers:
    """A counter for signed revocation list numbers (monotonic per store)."""

    def next_list_number(self) -> int:
        """The next number for a signed list; what the store raises when it cannot count."""
        raise NotImplementedError


class MemoryRevocationStore(_ListNumbers, Closing):
    """A process-local store for tests and single-process services; thread-safe."""

    def __init__(self, revocations: Iterable[Revocation] = ()) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Revocation] = {}
        self._number = 0
        for r in revocations:
            self._entries.setdefault((r.kind, r.id), r)

    def revoke(
        self, id: str, *, kind: str = "jti", reason: str = "unspecified", at: datetime | None = None
    ) -> Revocation:
        """Record a revocation (idempotent: the first record wins). ConfigError for a bad id or a whole token."""
        _validate(id, kind, reason)
        record = Revocation(id, kind, reason, utc(at, "revocation time"))
        with self._lock:
            return self._entries.setdefault((kind, id), record)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        """True when revoked; raises nothing."""
        return self.get(id, kind=kind) is not None

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        """The record, or None; raises nothing."""
        with self._lock:
            return self._entries.get((kind, id))

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        """Every revocation (of `kind`), oldest first; raises nothing."""
        with self._lock:
            entries = [r for r in self._entries.values() if kind is None or r.kind == kind]
        return iter(sorted(entries, key=lambda r: (r.revoked_at, r.kind, r.id)))

    def next_list_number(self) -> int:
        """The next signed-list number (1, 2, ...); raises nothing."""
        with self._lock:
            self._number += 1
            return self._number

    def close(self) -> None:
        """Nothing to release; present so every store closes the same way."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS revocations (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    reason     TEXT NOT NULL,
    revoked_at TEXT NOT NULL,  -- ISO 8601 UTC, microseconds: sorts as time
    checksum   TEXT,           -- SHA-256 over the other columns: a flipped bit is damage, not "not revoked"
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
_COLUMNS = "id, kind, reason, revoked_at, checksum"


def _checksum(kind: str, ident: str, reason: str, revoked_at: str) -> str:
    return hashlib.sha256("\0".join((kind, ident, reason, revoked_at)).encode("utf-8")).hexdigest()


class SQLiteRevocationStore(_ListNumbers, DurableSQLite):
    """The default store: one SQLite file in WAL mode, safe across threads and processes.

    ``synchronous=FULL`` makes a returned ``revoke`` survive a crash or power loss; WAL
    lets readers in other processes go on while one writes. One connection serves the
    process, guarded by a lock (SQLite serialises writers anyway).

    Damage fails closed: on open, SQLite's integrity check runs and every row's checksum
    is verified (a bit flip in an id would otherwise turn "revoked" into "not revoked");
    every row read is checked again. The checksum catches damage, not a deliberate edit
    by someone who can write the file: offline verifiers get a signed `RevocationList`.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        """Open (creating) the store; StateCorrupt when it is damaged, BackendUnavailable when unreachable."""
        super().__init__(path, _SCHEMA, "revocation store", timeout=timeout)
        try:
            self._migrate_and_check()
        except BaseException:
            self.close()
            raise

    def _migrate_and_check(self) -> None:
        with self._transaction() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(revocations)")}
            if "checksum" not in columns:  # a store written before checksums: vouch for it once
                db.execute("ALTER TABLE revocations ADD COLUMN checksum TEXT")
                rows = db.execute("SELECT kind, id, reason, revoked_at FROM revocations").fetchall()
                db.executemany(
                    "UPDATE revocations SET checksum = ? WHERE kind = ? AND id = ?",
                    [(_checksum(*row), row[0], row[1]) for row in rows],
                )
        with self._lock, translated(translate_sqlite, self._what()):
            for row in self._conn().execute(f"SELECT {_COLUMNS} FROM revocations"):
                self._row(row)

    def _row(self, row: tuple[str, str, str, str, str | None]) -> Revocation:
        ident, kind, reason, revoked_at, checksum = row
        if not all(isinstance(v, str) for v in (ident, kind, reason, revoked_at)):
            raise StateCorrupt(f"{self._what()} is damaged: a record has a column of the wrong type")
        if not isinstance(checksum, str) or not hmac.compare_digest(checksum, _checksum(kind, ident, reason, revoked_at)):
            raise StateCorrupt(f"{self._what()} is damaged: a record fails its checksum; restore it from a backup")
        try:
            return Revocation(ident, kind, reason, datetime.fromisoformat(revoked_at))
        except (TypeError, ValueError) as e:
            raise StateCorrupt(f"{self._what()} is damaged: a record has an unreadable time") from e

    def revoke(
        self, id: str, *, kind: str = "jti", reason: str = "unspecified", at: datetime | None = None
    ) -> Revocation:
        """Record a revocation durably (idempotent: the first record wins).

        Raises ConfigError for a bad id or a whole token, StateCorrupt when the store is
        damaged, BackendUnavailable when it cannot be written.
        """
        _validate(id, kind, reason)
        when = utc(at, "revocation time").isoformat(timespec="microseconds")
        with self._transaction() as db:
            db.execute(
                "INSERT INTO revocations (kind, id, reason, revoked_at, checksum) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO NOTHING",
                (kind, id, reason, when, _checksum(kind, id, reason, when)),
            )
            row = db.execute(f"SELECT {_COLUMNS} FROM revocations WHERE kind = ? AND id = ?", (kind, id)).fetchone()
        return self._row(row)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        """True when revoked; StateCorrupt / BackendUnavailable when the store cannot answer."""
        return self.get(id, kind=kind) is not None

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        """The revocation record, or None; StateCorrupt / BackendUnavailable when the store cannot answer."""
        with self._lock, translated(translate_sqlite, self._what()):
            row = self._conn().execute(
                f"SELECT {_COLUMNS} FROM revocations WHERE kind = ? AND id = ?", (kind, id)
            ).fetchone()
        return self._row(row) if row else None

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        """Every revocation (of `kind`), oldest first; StateCorrupt / BackendUnavailable on failure."""
        query = f"SELECT {_COLUMNS} FROM revocations"
        params: tuple[str, ...] = ()
        if kind is not None:
            query, params = query + " WHERE kind = ?", (kind,)
        with self._lock, translated(translate_sqlite, self._what()):
            rows = self._conn().execute(query + " ORDER BY revoked_at, kind, id", params).fetchall()
        return iter([self._row(r) for r in rows])

    def next_list_number(self) -> int:
        """The next signed-list number, atomically across processes; StateCorrupt / BackendUnavailable on failure."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO counters (name, value) VALUES ('revocation-list', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1"
            )
            (value,) = db.execute("SELECT value FROM counters WHERE name = 'revocation-list'").fetchone()
        return int(value)
