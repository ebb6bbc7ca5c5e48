"""A hash-chained log of every signature made through a Signer.

`AuditedSigner(signer, log)` is itself a Signer: it signs, then appends a record
``{seq, ts, kind, key_id, alg, message_sha256, context, prev_hash}`` whose
``record_hash`` (SHA-256 of the record's canonical JSON) becomes the next record's
``prev_hash``. Every `checkpoint_every` signatures it appends a checkpoint record whose
hash the signer itself signs, so the chain up to there is vouched for by the key.

`verify_chain()` walks the log and names the first bad record: a changed record fails
its own hash, a deleted or reordered one breaks the sequence or the ``prev_hash`` link,
and a chain rewritten wholesale (hashes recomputed) fails the next signed checkpoint.
What a chain alone cannot show is the loss of records after the last checkpoint; keep
the latest checkpoint hash elsewhere (``expected_head``) to catch that.

Two storage formats, chosen by file name: ``*.jsonl`` (one JSON record a line, appended
under an exclusive file lock and fsynced) or anything else as SQLite (WAL, one row a
record). Both are safe for several threads and several processes appending at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..algorithms import SignatureAlgorithm
from ..closing import Closing
from ..durable_sqlite import open_durable_sqlite
from ..errors import AlgorithmNotSupported, BackendUnavailable, ConfigError, InvalidSignature, KeyplaneError
from ..keys import PublicKey, b64url_decode, b64url_encode
from .jose import JWKS, KeySource, as_jwks, canonical_json

try:  # POSIX; on other systems a JSONL log is safe across threads but not processes
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditLogDamaged",
    "AuditRecord",
    "AuditedSigner",
    "ChainVerification",
    "JsonlAuditLog",
    "SQLiteAuditLog",
    "audit_context",
    "open_audit_log",
    "verify_chain",
]

GENESIS = "0" * 64  # prev_hash of the first record
_BODY_FIELDS = ("seq", "ts", "kind", "key_id", "alg", "message_sha256", "context", "prev_hash")


class AuditLogDamaged(KeyplaneError):
    """The log's last record cannot be read, so nothing more can be chained to it."""


@dataclass(frozen=True)
class AuditRecord:
    """One link of the chain; `signature` is set on checkpoints only (base64url, over `record_hash`)."""

    seq: int
    ts: str
    kind: str  # "signature" or "checkpoint"
    key_id: str
    alg: str
    message_sha256: str | None
    context: dict[str, Any]
    prev_hash: str
    record_hash: str
    signature: str | None = None

    def body(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _BODY_FIELDS}

    def computed_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        data = {**self.body(), "record_hash": self.record_hash}
        if self.signature is not None:
            data["signature"] = self.signature
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Parse a stored record; ValueError if a field is missing or of the wrong type."""
        try:
            record = cls(**{name: data[name] for name in (*_BODY_FIELDS, "record_hash")}, signature=data.get("signature"))
        except (KeyError, TypeError) as e:
            raise ValueError(f"record is missing a field: {e}") from e
        if (
            isinstance(record.seq, bool)
            or not isinstance(record.seq, int)
            or not isinstance(record.context, dict)
            or not all(isinstance(getattr(record, n), str) for n in ("ts", "kind", "key_id", "alg", "prev_hash", "record_hash"))
        ):
            raise ValueError("record has a field of the wrong type")
        return record


def _new_record(fields: Mapping[str, Any], seq: int, prev_hash: str, seal: Callable[[str], str] | None) -> AuditRecord:
    body = {**fields, "seq": seq, "prev_hash": prev_hash}
    record_hash = hashlib.sha256(canonical_json({k: body[k] for k in _BODY_FIELDS})).hexdigest()
    return AuditRecord(**{k: body[k] for k in _BODY_FIELDS}, record_hash=record_hash,
                       signature=seal(record_hash) if seal else None)


def _head_of(text: str | None, where: str) -> tuple[int, str]:
    """(seq, record_hash) of the last stored record, or (0, GENESIS) for an empty log."""
    if text is None:
        return 0, GENESIS
    try:
        record = AuditRecord.from_dict(json.loads(text))
    except ValueError as e:
        raise AuditLogDamaged(f"the last record of audit log {where} is unreadable; run `keyplane audit verify`") from e
    return record.seq, record.record_hash


# -- storage -----------------------------------------------------------------------------


class AuditLog(Closing):
    """Append-only storage of records. `append` reads the head and writes the next record atomically."""

    path: Path

    def append(self, fields: Mapping[str, Any], seal: Callable[[str], str] | None = None) -> AuditRecord:
        """Chain a record after the current head; `seal(record_hash)` returns a checkpoint signature."""
        raise NotImplementedError

    def raw_records(self) -> Iterator[tuple[int, str]]:
        """(position, stored JSON text) in storage order, position counting from 1."""
        raise NotImplementedError

    def records(self) -> Iterator[AuditRecord]:
        for _, text in self.raw_records():
            yield AuditRecord.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class JsonlAuditLog(AuditLog):
    """One JSON record per line; appends take an exclusive `flock`, so processes interleave safely."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, fields: Mapping[str, Any], seal: Callable[[str], str] | None = None) -> AuditRecord:
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as e:
                raise BackendUnavailable(f"cannot open audit log {self.path}: {e.strerror}", e) from e
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                seq, head = _head_of(_last_line(fd), str(self.path))
                record = _new_record(fields, seq + 1, head, seal)
                line = json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            except OSError as e:
                raise BackendUnavailable(f"cannot append to audit log {self.path}: {e.strerror}", e) from e
            finally:
                os.close(fd)  # also releases the flock
        return record

    def raw_records(self) -> Iterator[tuple[int, str]]:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                for position, line in enumerate(f, start=1):
                    if line.strip():
                        yield position, line
        except FileNotFoundError:
            return


def _last_line(fd: int) -> str | None:
    """The last non-empty line of the file, read backwards from the end (the log can be large)."""
    end = os.lseek(fd, 0, os.SEEK_END)
    chunk, data = 4096, b""
    position = end
    while position > 0:
        step = min(chunk, position)
        position -= step
        data = os.pread(fd, step, position) + data
        stripped = data.rstrip(b"\n")
        if b"\n" in stripped:
            return stripped.rsplit(b"\n", 1)[1].decode("utf-8", errors="replace")
    stripped = data.rstrip(b"\n")
    return stripped.decode("utf-8", errors="replace") if stripped else None


class SQLiteAuditLog(AuditLog):
    """One row per record in a WAL-mode SQLite file; appends are ``BEGIN IMMEDIATE`` transactions."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = open_durable_sqlite(
            self.path, "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)",
            "audit log", timeout=timeout,
        )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ConfigError(f"audit log {self.path} is closed")
        return self._db

    def append(self, fields: Mapping[str, Any], seal: Callable[[str], str] | None = None) -> AuditRecord:
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute("SELECT record FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                    seq, head = _head_of(row[0] if row else None, str(self.path))
                    record = _new_record(fields, seq + 1, head, seal)
                    db.execute(
                        "INSERT INTO audit (seq, record) VALUES (?, ?)",
                        (record.seq, json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"))),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise BackendUnavailable(f"cannot append to audit log {self.path}: {e}", e) from e
        return record

    def raw_records(self) -> Iterator[tuple[int, str]]:
        with self._lock:
            try:
                rows = self._conn().execute("SELECT record FROM audit ORDER BY seq").fetchall()
            except sqlite3.Error as e:
                raise BackendUnavailable(f"cannot read audit log {self.path}: {e}", e) from e
        for position, (text,) in enumerate(rows, start=1):
            yield position, text

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def open_audit_log(path: str | os.PathLike[str]) -> AuditLog:
    """A JSONL log for ``*.jsonl`` paths, else SQLite."""
    return JsonlAuditLog(path) if str(path).endswith(".jsonl") else SQLiteAuditLog(path)


# -- the wrapper -------------------------------------------------------------------------

# None, not {}: a ContextVar default is shared by every context, so it must not be mutable.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("keyplane_audit_context", default=None)


@contextlib.contextmanager
def audit_context(**values: Any) -> Iterator[None]:
    """Attach caller context (user, request id, ...) to every signature made inside the block."""
    canonical_json(values)  # fail here, not at signing time, if it is not JSON
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditedSigner:
    """A Signer that records every signature it makes in an `AuditLog` before returning it.

    A signature whose record cannot be written is not returned (the append error is
    raised), so no signature leaves this wrapper unlogged.
    """

    def __init__(
        self,
        signer: Signer,
        log: AuditLog,
        *,
        context: Mapping[str, Any] | None = None,
        checkpoint_every: int | None = 100,
    ) -> None:
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ConfigError("checkpoint_every must be at least 1 (or None for no automatic checkpoints)")
        self.signer = signer
        self.log = log
        self.context = dict(context or {})
        canonical_json(self.context)
        self.checkpoint_every = checkpoint_every
        self._lock = threading.Lock()
        self._since_checkpoint = 0
        self.key_id: str = signer.key_id
        self.uri: str = signer.uri
        self.algorithm: SignatureAlgorithm = signer.algorithm
        self.public_key: PublicKey = signer.public_key

    def sign(self, message: bytes) -> bytes:
        signature = self.signer.sign(message)
        self.log.append(
            {
                "ts": _now_iso(),
                "kind": "signature",
                "key_id": self.key_id,
                "alg": self.algorithm.value,
                "message_sha256": hashlib.sha256(message).hexdigest(),
                "context": {**self.context, **(_context.get() or {})},
            }
        )
        if self.checkpoint_every is not None:
            with self._lock:
                self._since_checkpoint += 1
                due = self._since_checkpoint >= self.checkpoint_every
                if due:
                    self._since_checkpoint = 0
            if due:
                self.checkpoint()
        return signature

    async def sign_async(self, message: bytes) -> bytes:
        import asyncio

        return await asyncio.to_thread(self.sign, message)

    def checkpoint(self) -> AuditRecord:
        """Append a checkpoint: the signer signs the chain's hash up to and including it."""
        fields: dict[str, Any] = {
            "ts": _now_iso(),
            "kind": "checkpoint",
            "key_id": self.key_id,
            "alg": self.algorithm.value,
            "message_sha256": None,
            "context": {},
        }
        return self.log.append(fields, seal=lambda h: b64url_encode(self.signer.sign(h.encode("ascii"))))

    def __repr__(self) -> str:
        return f"AuditedSigner({self.signer!r}, log={self.log!r})"


# -- verification ------------------------------------------------------------------------


@dataclass
class ChainVerification:
    """The outcome of `verify_chain`: ok, or the first bad record and why."""

    ok: bool
    records: int = 0
    checkpoints: int = 0
    checkpoints_verified: int = 0
    head: str = GENESIS
    first_bad: int | None = None  # the seq the bad record has (or should have had)
    position: int | None = None  # its line (JSONL) or row (SQLite), from 1
    reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def verify_chain(
    log: AuditLog | str | os.PathLike[str],
    keys: KeySource | None = None,
    *,
    expected_head: str | None = None,
) -> ChainVerification:
    """Walk the chain from the first record; stop at the first bad one.

    With `keys` (the signer's public key or JWKS), every checkpoint's signature is
    verified too; without, checkpoints are only hash-checked (noted in the result).
    `expected_head` (a record_hash kept elsewhere) must be the hash of the last record.
    """
    owned = not isinstance(log, AuditLog)
    audit_log = open_audit_log(log) if not isinstance(log, AuditLog) else log
    try:
        return _walk(audit_log, as_jwks(keys) if keys is not None else None, expected_head)
    finally:
        if owned:
            audit_log.close()


def _walk(log: AuditLog, jwks: JWKS | None, expected_head: str | None) -> ChainVerification:
    result = ChainVerification(ok=True)
    expected_seq, prev = 1, GENESIS

    def bad(seq: int, position: int, reason: str) -> ChainVerification:
        result.ok, result.first_bad, result.position, result.reason = False, seq, position, reason
        return result

    for position, text in log.raw_records():
        try:
            record = AuditRecord.from_dict(json.loads(text))
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            return bad(expected_seq, position, f"record {expected_seq} (position {position}) is unreadable: {e}")
        if record.computed_hash() != record.record_hash:
            return bad(record.seq, position, f"record {record.seq} was changed: its hash does not match its contents")
        if record.seq != expected_seq:
            return bad(record.seq, position,
                       f"record {record.seq} found where record {expected_seq} belongs: records deleted or reordered")
        if record.prev_hash != prev:
            return bad(record.seq, position,
                       f"record {record.seq} does not follow record {record.seq - 1}: prev_hash mismatch (deleted, reordered or rewritten)")
        if record.kind == "checkpoint":
            result.checkpoints += 1
            problem = _check_checkpoint(record, jwks)
            if problem:
                return bad(record.seq, position, f"checkpoint {record.seq}: {problem}")
            if jwks is not None:
                result.checkpoints_verified += 1
        elif record.kind != "signature":
            return bad(record.seq, position, f"record {record.seq} has unknown kind {record.kind[:40]!r}")
        result.records += 1
        prev, expected_seq = record.record_hash, expected_seq + 1
    result.head = prev
    if expected_head is not None and expected_head != prev:
        return bad(expected_seq, 0, f"the log ends at {prev[:16]}..., not at the expected head: records were removed")
    if jwks is None and result.checkpoints:
        result.notes.append("checkpoint signatures not verified: no public key given")
    return result


def _check_checkpoint(record: AuditRecord, jwks: JWKS | None) -> str | None:
    if not record.signature:
        return "has no signature"
    if jwks is None:
        return None
    # Match on the thumbprint (what key_id is), whatever kid the JWKS gives the key.
    jwk = next((j for j in jwks if j.public_key.key_id == record.key_id), None)
    if jwk is None:
        return f"signed by key {record.key_id[:60]!r}, which is not among the given keys"
    try:
        alg = SignatureAlgorithm.parse(record.alg)
        jwk.public_key.verify(b64url_decode(record.signature), record.record_hash.encode("ascii"), alg)
    except (InvalidSignature, AlgorithmNotSupported, ValueError):
        return "signature does not verify"
    return None
