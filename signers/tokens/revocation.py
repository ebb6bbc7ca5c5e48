"""Revocation: a store of revoked token ids and certificate serials, and signed lists of them.

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
- times are timezone-aware UTC datetimes (microsecond precision is enough).

`RevocationList` is the offline form: a JWT (``typ: revocation-list+jwt``) listing the
revoked ids with its own ``exp``, issued by a Signer. A verifier without access to the
store loads it against the issuer's JWKS; a stale (expired) list raises TokenExpired and a
tampered one TokenInvalid, so a verifier can never be fed an old or edited list.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..closing import Closing
from ..durable_sqlite import open_durable_sqlite
from ..errors import BackendUnavailable, ConfigError, TokenInvalid

if TYPE_CHECKING:
    from ..signer import Signer
    from .jose import KeySource

__all__ = [
    "REVOCATION_LIST_TYP",
    "MemoryRevocationStore",
    "Revocation",
    "RevocationCheck",
    "RevocationList",
    "RevocationStore",
    "SQLiteRevocationStore",
    "issue_revocation_list",
]

REVOCATION_LIST_TYP = "revocation-list+jwt"
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

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool: ...

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None: ...


@runtime_checkable
class RevocationStore(RevocationCheck, Protocol):
    """A writable store of revocations; see the module docstring for the contract."""

    def revoke(
        self, id: str, *, kind: str = "jti", reason: str = "unspecified", at: datetime | None = None
    ) -> Revocation: ...

    def list(self, kind: str | None = None) -> Iterator[Revocation]: ...


def _validate(id: str, kind: str, reason: str = "unspecified") -> None:
    for name, value in (("id", id), ("kind", kind), ("reason", reason)):
        if not isinstance(value, str) or not value or len(value) > _MAX_ID:
            raise ConfigError(f"revocation {name} must be a non-empty string of at most {_MAX_ID} characters")


def _when(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        raise ConfigError("revocation time must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return at.astimezone(UTC)


class MemoryRevocationStore(Closing):
    """A process-local store for tests and single-process services; thread-safe."""

    def __init__(self, revocations: Iterable[Revocation] = ()) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Revocation] = {}
        for r in revocations:
            self._entries.setdefault((r.kind, r.id), r)

    def revoke(
        self, id: str, *, kind: str = "jti", reason: str = "unspecified", at: datetime | None = None
    ) -> Revocation:
        _validate(id, kind, reason)
        record = Revocation(id, kind, reason, _when(at))
        with self._lock:
            return self._entries.setdefault((kind, id), record)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return self.get(id, kind=kind) is not None

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        with self._lock:
            return self._entries.get((kind, id))

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        with self._lock:
            entries = [r for r in self._entries.values() if kind is None or r.kind == kind]
        return iter(sorted(entries, key=lambda r: (r.revoked_at, r.kind, r.id)))

    def close(self) -> None:
        """Nothing to release; present so every store closes the same way."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS revocations (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    reason     TEXT NOT NULL,
    revoked_at TEXT NOT NULL,  -- ISO 8601 UTC, microseconds: sorts as time
    PRIMARY KEY (kind, id)
) WITHOUT ROWID
"""


class SQLiteRevocationStore(Closing):
    """The default store: one SQLite file in WAL mode, safe across threads and processes.

    ``synchronous=FULL`` makes a returned ``revoke`` survive a crash or power loss; WAL
    lets readers in other processes go on while one writes. One connection serves the
    process, guarded by a lock (SQLite serialises writers anyway), so 20 threads
    revoking and verifying at once lose nothing.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = open_durable_sqlite(
            self.path, _SCHEMA, "revocation store", timeout=timeout
        )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ConfigError(f"revocation store {self.path} is closed")
        return self._db

    def revoke(
        self, id: str, *, kind: str = "jti", reason: str = "unspecified", at: datetime | None = None
    ) -> Revocation:
        _validate(id, kind, reason)
        when = _when(at).isoformat(timespec="microseconds")
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(
                        "INSERT INTO revocations (kind, id, reason, revoked_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (kind, id) DO NOTHING",
                        (kind, id, reason, when),
                    )
                    row = db.execute(
                        "SELECT id, kind, reason, revoked_at FROM revocations WHERE kind = ? AND id = ?", (kind, id)
                    ).fetchone()
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise BackendUnavailable(f"revocation store {self.path}: {e}", e) from e
        return _row(row)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return self.get(id, kind=kind) is not None

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        with self._lock:
            try:
                row = (
                    self._conn()
                    .execute("SELECT id, kind, reason, revoked_at FROM revocations WHERE kind = ? AND id = ?", (kind, id))
                    .fetchone()
                )
            except sqlite3.Error as e:
                raise BackendUnavailable(f"revocation store {self.path}: {e}", e) from e
        return _row(row) if row else None

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        query = "SELECT id, kind, reason, revoked_at FROM revocations"
        params: tuple[str, ...] = ()
        if kind is not None:
            query, params = query + " WHERE kind = ?", (kind,)
        with self._lock:
            try:
                rows = self._conn().execute(query + " ORDER BY revoked_at, kind, id", params).fetchall()
            except sqlite3.Error as e:
                raise BackendUnavailable(f"revocation store {self.path}: {e}", e) from e
        return iter([_row(r) for r in rows])

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __repr__(self) -> str:
        return f"SQLiteRevocationStore({str(self.path)!r})"


def _row(row: tuple[str, str, str, str]) -> Revocation:
    return Revocation(row[0], row[1], row[2], datetime.fromisoformat(row[3]))


# -- signed revocation lists -------------------------------------------------------------


def issue_revocation_list(
    signer: Signer,
    revocations: RevocationStore | Iterable[Revocation],
    *,
    issuer: str,
    ttl: float | timedelta = 3600,
    kinds: Iterable[str] | None = None,
    now: datetime | None = None,
    audience: str | None = None,
) -> str:
    """A signed JWT listing revoked ids; it expires after `ttl` so verifiers must refresh it.

    Claims: ``iss``, ``iat``, ``nbf``, ``exp``, ``jti`` and ``revoked``, a list of
    ``{"id", "kind", "reason", "revoked_at"}`` (revoked_at as a NumericDate).
    """
    from .jose import sign_jwt

    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ConfigError("revocation list ttl must be positive")
    wanted = None if kinds is None else set(kinds)
    entries: Iterable[Revocation] = revocations.list() if isinstance(revocations, RevocationStore) else revocations
    listed = [
        {"id": r.id, "kind": r.kind, "reason": r.reason, "revoked_at": int(r.revoked_at.timestamp())}
        for r in entries
        if wanted is None or r.kind in wanted
    ]
    issued = int(_when(now).timestamp())
    claims: dict[str, Any] = {"iss": issuer, "iat": issued, "nbf": issued, "exp": issued + int(seconds)}
    if audience is not None:
        claims["aud"] = audience
    claims.update({"jti": str(uuid.uuid4()), "revoked": listed})
    return sign_jwt(signer, claims, typ=REVOCATION_LIST_TYP)


class RevocationList:
    """A verified, read-only revocation list loaded from a signed JWT (offline checking).

    Satisfies `RevocationCheck`, so it can be passed wherever ``revocations=`` is taken.
    """

    def __init__(self, issuer: str, issued_at: datetime, expires_at: datetime, entries: Iterable[Revocation]) -> None:
        self.issuer = issuer
        self.issued_at = issued_at
        self.expires_at = expires_at
        self._entries = {(r.kind, r.id): r for r in entries}

    @classmethod
    def load(
        cls,
        token: str | bytes,
        keys: KeySource,
        *,
        issuer: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        leeway: float = 30.0,
        now: datetime | float | None = None,
        max_size: int = 16 * 1024 * 1024,
    ) -> RevocationList:
        """Verify a signed list against the issuer's `keys`; TokenExpired when stale, TokenInvalid when tampered."""
        from .jose import verify_jwt

        verified = verify_jwt(
            token,
            keys,
            typ=REVOCATION_LIST_TYP,
            issuer=issuer,
            audience=audience,
            require=("exp", "iat", "iss", "revoked"),
            leeway=leeway,
            now=now,
            max_size=max_size,
        )
        claims = verified.claims
        listed = claims["revoked"]
        if not isinstance(listed, builtins.list):
            raise TokenInvalid("revocation list claim 'revoked' is not a list")
        entries = []
        for item in listed:
            try:
                entries.append(
                    Revocation(
                        str(item["id"]),
                        str(item["kind"]),
                        str(item["reason"]),
                        datetime.fromtimestamp(item["revoked_at"], UTC),
                    )
                )
            except (KeyError, TypeError, ValueError, OverflowError, OSError) as e:
                raise TokenInvalid("revocation list entry is malformed") from e
        try:
            issued_at = datetime.fromtimestamp(claims["iat"], UTC)
            expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise TokenInvalid("revocation list iat or exp is out of range") from e
        return cls(str(claims["iss"]), issued_at, expires_at, entries)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return (kind, id) in self._entries

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        return self._entries.get((kind, id))

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        return iter([r for r in self._entries.values() if kind is None or r.kind == kind])

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"RevocationList(issuer={self.issuer!r}, entries={len(self)}, expires_at={self.expires_at.isoformat()})"
