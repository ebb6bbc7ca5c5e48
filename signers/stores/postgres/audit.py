"""`PostgresAuditLog`: one linear hash chain per log name, written by many hosts at once.

An append is one transaction: take the log's advisory lock, read the head, insert the next
record. The lock serialises writers on every host; the primary key ``(log, seq)`` would
refuse a second record with the same number even without it, so the chain cannot fork.
A returned append is committed (durable per the server's ``synchronous_commit``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import ConfigError
from ...tokens.audit_log import AuditLog, AuditRecord, CheckpointSeal, _head_of, _new_record
from .connection import pg_call

__all__ = ["PostgresAuditLog"]


class PostgresAuditLog(AuditLog):
    """An AuditLog (see signers.audit) stored in PostgreSQL under `name`."""

    def __init__(self, pool: Any, name: str, public_uri: str) -> None:
        if not isinstance(name, str) or not name or len(name) > 200:
            raise ConfigError("an audit log name is a non-empty string of at most 200 characters")
        self._pool = pool
        self.name = name
        self.path = f"{public_uri}#{name}"  # type: ignore[assignment]  # shown in messages, never opened

    def append(self, fields: Mapping[str, Any], seal: CheckpointSeal | None = None) -> AuditRecord:
        # Pipelined: lock + head read go out together, then insert + commit: two round trips.
        with pg_call(self._pool, f"appending to audit log {self.name!r}") as conn, conn.transaction():
            with conn.pipeline():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("keyplane_audit:" + self.name,))
                last_rows = conn.execute("SELECT record FROM keyplane_audit WHERE log = %s ORDER BY seq DESC LIMIT 1",
                                         (self.name,))
                first_rows = conn.execute("SELECT record FROM keyplane_audit WHERE log = %s AND seq = 1", (self.name,))
            last, first = last_rows.fetchone(), first_rows.fetchone()
            seq, head, log_id = _head_of(last[0] if last else None, first[0] if first else None, str(self.path))
            record = _new_record(fields, seq + 1, head, log_id, seal)
            conn.execute("INSERT INTO keyplane_audit (log, seq, record) VALUES (%s, %s, %s)",
                         (self.name, record.seq, json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"))))
        return record

    def raw_records(self) -> Iterator[tuple[int, str]]:
        with pg_call(self._pool, f"reading audit log {self.name!r}") as conn:
            rows = conn.execute("SELECT record FROM keyplane_audit WHERE log = %s ORDER BY seq", (self.name,)).fetchall()
        for position, (text,) in enumerate(rows, start=1):
            yield position, text

    def __repr__(self) -> str:
        return f"PostgresAuditLog({self.path!r})"
