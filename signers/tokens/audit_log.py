"""The audit log's records and their storage: a hash chain, appended atomically.

A record is ``{seq, ts, kind, key_id, alg, message_sha256, context, prev_hash}``; its
``record_hash`` (SHA-256 of the record's RFC 8785 JSON) becomes the next record's
``prev_hash``. A checkpoint record also carries ``signature``: a compact JWS (``typ``
``keyplane-audit-checkpoint+jwt``) over the log's identity (the hash of its first record),
the checkpoint's sequence number and its own record hash.

Two storage formats, chosen by file name: ``*.jsonl`` (one JSON record a line, appended
under an exclusive file lock and fsynced) or anything else as SQLite (WAL, one row a
record). Both are safe for several threads and several processes appending at once.
Opened with ``read_only=True`` (as verifiers do), neither creates nor changes a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from pathlib import Path
from typing import Any

from ..closing import Closing
from ..durable_sqlite import open_durable_sqlite, translate_sqlite
from ..errors import BackendUnavailable, ConfigError, KeyplaneError
from ..translation import translated
from ..workers import run_blocking
from .audit_commit import _SAFE, _SORTED, Batch, CommitQueue, _plain, record_json, stored_json
from .canonical import canonical_json

try:  # POSIX; on other systems a JSONL log is safe across threads but not processes
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditLogDamaged",
    "AuditRecord",
    "CheckpointSeal",
    "JsonlAuditLog",
    "SQLiteAuditLog",
    "open_audit_log",
]

GENESIS = "0" * 64  # prev_hash of the first record
_BODY_FIELDS = ("seq", "ts", "kind", "key_id", "alg", "message_sha256", "context", "prev_hash")

# Called with {"log": first record's hash, "seq": n, "head": the checkpoint's record_hash};
# returns the checkpoint's signature (a compact JWS).
CheckpointSeal = Callable[[Mapping[str, Any]], str]


class AuditLogDamaged(KeyplaneError):
    """The log's last record cannot be read, so nothing more can be chained to it."""


@dataclass(frozen=True)
class AuditRecord:
    """One link of the chain; `signature` is set on checkpoints only (a compact JWS)."""

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
        """The SHA-256 of the body's canonical JSON; ConfigError if the body is not RFC 8785 serialisable."""
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
            or not (record.signature is None or isinstance(record.signature, str))
        ):
            raise ValueError("record has a field of the wrong type")
        return record


def _new_record(
    fields: Mapping[str, Any], seq: int, prev_hash: str, log_id: str | None, seal: CheckpointSeal | None
) -> AuditRecord:
    body = {**fields, "seq": seq, "prev_hash": prev_hash}
    record_hash = hashlib.sha256(record_json({k: body[k] for k in _BODY_FIELDS})).hexdigest()
    signature = None
    if seal is not None:
        signature = seal({"log": log_id or record_hash, "seq": seq, "head": record_hash})
    return AuditRecord(**{k: body[k] for k in _BODY_FIELDS}, record_hash=record_hash, signature=signature)


def _parse(text: str | None, where: str, which: str) -> AuditRecord | None:
    if text is None:
        return None
    try:
        return AuditRecord.from_dict(json.loads(text))
    except ValueError as e:
        raise AuditLogDamaged(f"the {which} record of audit log {where} is unreadable; run `keyplane audit verify`") from e


def _head_of(last: str | None, first: str | None, where: str) -> tuple[int, str, str | None]:
    """(seq, record_hash) of the last stored record and the log id; (0, GENESIS, None) when empty."""
    record = _parse(last, where, "last")
    if record is None:
        return 0, GENESIS, None
    first_record = _parse(first, where, "first")
    return record.seq, record.record_hash, first_record.record_hash if first_record else None


class AuditLog(Closing):
    """Append-only storage of records. `append` reads the head and writes the next record atomically."""

    path: Path

    def append(self, fields: Mapping[str, Any], seal: CheckpointSeal | None = None) -> AuditRecord:
        """Chain a record after the current head; `seal` (checkpoints) returns its signature.

        Raises AuditLogDamaged when the last record is unreadable, StateCorrupt /
        BackendUnavailable when storage fails, ConfigError on a read-only or closed log.
        """
        raise NotImplementedError

    async def append_async(self, fields: Mapping[str, Any], seal: CheckpointSeal | None = None) -> AuditRecord:
        """`append` without blocking the event loop (default: on keyplane's I/O pool); raises what it raises."""
        return await run_blocking(self.append, fields, seal)

    def raw_records(self) -> Iterator[tuple[int, str]]:
        """(position, stored JSON text) in storage order, from 1; StateCorrupt / BackendUnavailable / ConfigError (closed)."""
        raise NotImplementedError

    def records(self) -> Iterator[AuditRecord]:
        """The parsed records; ValueError at the first unreadable one."""
        for _, text in self.raw_records():
            yield AuditRecord.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class GroupCommitLog(AuditLog):
    """A log whose appends go through a `CommitQueue` (JSONL and SQLite): one durable write per batch.

    `append` returns once the write holding its record is durable (fsynced / committed with
    ``synchronous=FULL``); raises ConfigError on a read-only or closed log, and what the
    log's write raises (StateCorrupt, BackendUnavailable, AuditLogDamaged).
    """

    read_only: bool
    _queue: CommitQueue

    def append(self, fields: Mapping[str, Any], seal: CheckpointSeal | None = None) -> AuditRecord:
        if self.read_only:
            raise ConfigError(f"audit log {self.path} is open read-only")
        record: AuditRecord = self._queue.submit(fields, seal)
        return record

    async def append_async(self, fields: Mapping[str, Any], seal: CheckpointSeal | None = None) -> AuditRecord:
        """`append` from an event loop: queued on the loop, group-committed on the I/O pool (one hop a batch)."""
        if self.read_only:
            raise ConfigError(f"audit log {self.path} is open read-only")
        record: AuditRecord = await self._queue.submit_async(fields, seal)
        return record


class JsonlAuditLog(GroupCommitLog):
    """One JSON record per line; appends take an exclusive `flock`, so processes interleave safely.

    Concurrent appends in one process are group-committed (`signers.tokens.audit_commit`):
    one write and one fsync for all of them, each returning once its line is durable. The
    head is kept in memory while the file is exactly as this object left it (same inode,
    size and mtime under the lock), else it is read back from the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        """ConfigError when `read_only` and the file does not exist."""
        self.path = Path(path)
        self.read_only = read_only
        self._queue = CommitQueue(self._write)
        self._head: tuple[tuple[int, int, int, int], tuple[int, str, str | None]] | None = None
        if read_only:
            if not self.path.is_file():
                raise ConfigError(f"audit log {self.path} does not exist")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, batch: Batch) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            raise BackendUnavailable(f"cannot open audit log {self.path}: {e.strerror}", e) from e
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            seen = _identity(os.fstat(fd))
            if self._head is not None and self._head[0] == seen:
                seq, head, log_id = self._head[1]
            else:
                seq, head, log_id = _head_of(_last_line(fd), _first_line(fd), str(self.path))
            lines = []
            for pending in batch:
                seq, head, log_id, line = _chain(pending, seq, head, log_id, ensure_ascii=False)
                if line:
                    lines.append(line)
            if lines:
                _write_all(fd, "".join(lines).encode("utf-8"), seen[2])
                self._head = (_identity(os.fstat(fd)), (seq, head, log_id))
        except OSError as e:
            self._head = None
            raise BackendUnavailable(f"cannot append to audit log {self.path}: {e.strerror}", e) from e
        finally:
            os.close(fd)  # also releases the flock

    def raw_records(self) -> Iterator[tuple[int, str]]:
        """See `AuditLog.raw_records`; a file that is gone yields nothing."""
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                for position, line in enumerate(f, start=1):
                    if line.strip():
                        yield position, line
        except FileNotFoundError:
            return


def _first_line(fd: int) -> str | None:
    data = b""
    offset = 0
    while b"\n" not in data.lstrip(b"\n"):
        chunk = os.pread(fd, 4096, offset)
        if not chunk:
            break
        data, offset = data + chunk, offset + len(chunk)
    line = data.lstrip(b"\n").split(b"\n", 1)[0]
    return line.decode("utf-8", errors="replace") if line else None


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


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _chain(
    pending: Any, seq: int, head: str, log_id: str | None, *, ensure_ascii: bool
) -> tuple[int, str, str | None, str]:
    """Build `pending`'s record after (seq, head); the new head and its stored JSON ("" when it failed alone)."""
    try:
        built = _direct_record(pending.fields, seq + 1, head, log_id, pending.seal, ensure_ascii)
        if built is None:
            record = _new_record(pending.fields, seq + 1, head, log_id, pending.seal)
            text = stored_json(record.to_dict(), ensure_ascii=ensure_ascii)
        else:
            record, text = built
    except Exception as e:  # not JSON, or the checkpoint's seal failed: this append fails, the batch goes on
        pending.error = e
        return seq, head, log_id, ""
    pending.record = record
    return record.seq, record.record_hash, log_id or record.record_hash, text + "\n"


_INSERT = "INSERT INTO audit (seq, record) VALUES (?, ?)"


def _direct_record(fields: Mapping[str, Any], seq: int, prev_hash: str, log_id: str | None,
                   seal: CheckpointSeal | None, ensure_ascii: bool) -> tuple[AuditRecord, str] | None:
    """`_new_record` and its stored JSON, written from the fields in one pass; None to decline.

    An append used to serialise the record twice with sorted keys (RFC 8785 for the hash,
    then the stored form), which cost more than the rest of the append's Python together,
    and right after an fsync, on cold caches, several times more. For the record every
    AuditedSigner writes (string fields, a ``message_sha256`` string or null, a ``context``
    that `record_json`'s fast path accepts), both texts are the same members in the same
    sorted order: the body is ``alg, context, key_id, kind, message_sha256, prev_hash, seq,
    ts`` and the stored form adds ``record_hash`` after ``prev_hash`` and ``signature``
    after ``seq``; only the context is left to the JSON encoder, once. Anything else (a
    field of another type, a float in the context, a non-ASCII or DEL character for
    SQLite's ASCII storage) returns None and takes `_new_record` and `stored_json`, which
    also raise the errors. tests/throughput/test_direct_audit_record.py holds the two to
    the same bytes.
    """
    try:
        alg, context, key_id, kind = fields["alg"], fields["context"], fields["key_id"], fields["kind"]
        message, ts = fields["message_sha256"], fields["ts"]
    except (KeyError, TypeError):
        return None  # the general path raises
    if (type(alg) is not str or type(key_id) is not str or type(kind) is not str or type(ts) is not str
            or type(prev_hash) is not str or type(seq) is not int or not 0 <= seq <= _SAFE
            or (message is not None and type(message) is not str)
            or type(context) is not dict or not _plain(context, 1)):  # depth 1: where record_json meets it
        return None
    q = _quote
    head = f'{{"alg":{q(alg)},"context":{_SORTED(context)},"key_id":{q(key_id)},"kind":{q(kind)},' \
           f'"message_sha256":{"null" if message is None else q(message)},"prev_hash":{q(prev_hash)}'
    tail = f'"ts":{q(ts)}}}'
    try:
        body = f'{head},"seq":{seq},{tail}'.encode()
    except UnicodeEncodeError:
        return None  # a lone surrogate: the general path refuses it
    if ensure_ascii and (not body.isascii() or b"\x7f" in body):
        return None  # SQLite stores ASCII-escaped text (DEL too): the general path writes it
    record_hash = hashlib.sha256(body).hexdigest()
    signature = None if seal is None else seal({"log": log_id or record_hash, "seq": seq, "head": record_hash})
    # the frozen dataclass's __init__ sets its ten fields one object.__setattr__ at a time (1.3 us, against
    # 0.25 for filling its __dict__ at once); the fields are checked above, the record is as frozen as ever
    record = object.__new__(AuditRecord)
    record.__dict__.update(seq=seq, ts=ts, kind=kind, key_id=key_id, alg=alg, message_sha256=message, context=context,
                           prev_hash=prev_hash, record_hash=record_hash, signature=signature)
    if signature is None:
        return record, f'{head},"record_hash":"{record_hash}","seq":{seq},{tail}'
    if type(signature) is str and (not ensure_ascii or (signature.isascii() and "\x7f" not in signature)):
        return record, f'{head},"record_hash":"{record_hash}","seq":{seq},"signature":{q(signature)},{tail}'
    return record, stored_json(record.to_dict(), ensure_ascii=ensure_ascii)  # sealed once; stored as ever


def _write_all(fd: int, data: bytes, size_before: int) -> None:
    """Write and fsync `data`; on failure cut the file back to `size_before` (no torn line left behind)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size_before)
        raise


class SQLiteAuditLog(GroupCommitLog):
    """One row per record in a WAL-mode SQLite file; appends are ``BEGIN IMMEDIATE`` transactions.

    Concurrent appends share one transaction (group commit); the head of our last commit is
    kept in memory and trusted until an INSERT finds its next number taken (another
    connection appended: the head is then read back from the file).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0, read_only: bool = False) -> None:
        """ConfigError when `read_only` and the file does not exist; StateCorrupt when it is damaged."""
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._queue = CommitQueue(self._write)
        self._head: tuple[int, str, str | None] | None = None  # (seq, record_hash, log id) of our last commit
        self._what = f"audit log {self.path}"  # named in errors; formatted once, not in every append
        self._db: sqlite3.Connection | None = open_durable_sqlite(
            self.path, "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)",
            "audit log", timeout=timeout, read_only=read_only,
        )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ConfigError(f"audit log {self.path} is closed")
        return self._db

    def _write(self, batch: Batch) -> None:
        with self._lock:
            db = self._conn()
            with translated(translate_sqlite, self._what):
                held = self._head
                if held is None or not self._commit(db, batch, held):
                    self._commit(db, batch, None)

    def _commit(self, db: sqlite3.Connection, batch: Batch, held: tuple[int, str, str | None] | None) -> bool:
        """Chain `batch` after `held` (our last commit's head) or, when None, after the head read from the file.

        Optimistic: the records are numbered on from our own last commit, and ``seq`` is the
        primary key, so if another connection appended meanwhile the first number is taken,
        the INSERT fails and nothing is written (False: the caller reads the head and chains
        again). That costs the common case, one writer, nothing but the INSERT and COMMIT
        the raw write makes; checking ``PRAGMA data_version`` first was one more statement
        in every append.
        """
        db.execute("BEGIN IMMEDIATE")
        try:
            if held is not None:
                seq, head, log_id = held
            else:
                last = db.execute("SELECT record FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                first = db.execute("SELECT record FROM audit ORDER BY seq LIMIT 1").fetchone()
                seq, head, log_id = _head_of(last[0] if last else None, first[0] if first else None, str(self.path))
            rows = []
            for pending in batch:
                pending.error = pending.record = None  # a second pass (after a lost race) builds them again
                seq, head, log_id, text = _chain(pending, seq, head, log_id, ensure_ascii=True)
                if text:
                    rows.append((seq, text[:-1]))
            try:
                if len(rows) == 1:  # the common case, one appender: execute costs less than executemany
                    db.execute(_INSERT, rows[0])
                elif rows:
                    db.executemany(_INSERT, rows)
            except sqlite3.IntegrityError:
                if held is None:
                    raise
                self._head = None
                db.execute("ROLLBACK")
                return False  # another connection took the next number: chain again after its records
            db.execute("COMMIT")
        except BaseException:
            self._head = None
            db.execute("ROLLBACK")
            raise
        self._head = (seq, head, log_id)
        return True

    def raw_records(self) -> Iterator[tuple[int, str]]:
        """See `AuditLog.raw_records`."""
        with self._lock, translated(translate_sqlite, f"audit log {self.path}"):
            rows = self._conn().execute("SELECT record FROM audit ORDER BY seq").fetchall()
        for position, (text,) in enumerate(rows, start=1):
            yield position, text

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def open_audit_log(path: str | os.PathLike[str], *, read_only: bool = False) -> AuditLog:
    """A JSONL log for ``*.jsonl`` paths, else SQLite.

    `read_only` opens an existing log without creating or changing anything; ConfigError
    when it does not exist, StateCorrupt when a SQLite log is damaged.
    """
    if str(path).endswith(".jsonl"):
        return JsonlAuditLog(path, read_only=read_only)
    return SQLiteAuditLog(path, read_only=read_only)
