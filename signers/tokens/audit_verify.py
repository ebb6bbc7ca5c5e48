"""`verify_chain`: walk an audit log and name the first bad record.

What a verification proves, exactly:

- **Without keys**, only that the stored records form an unbroken chain: a changed record
  fails its own hash, a deleted or reordered one breaks the sequence or the ``prev_hash``
  link. Anyone can write such a chain from scratch, so it proves nothing about who wrote it.
- **With keys**, additionally that every checkpoint is a JWS by one of those keys over this
  log's identity, that checkpoint's sequence number and the head of the chain there: every
  record up to the last checkpoint was in the log when the key signed it. A log without a
  single checkpoint is refused (nothing in it is vouched for). Records after the last
  checkpoint are only hash-checked; `require_checkpoint_at_end` or `max_unchecked` bound
  how many may follow it (an attacker with write access can append records there, and the
  signer's next checkpoint would then sign over them).
- **Without a trusted head** (`expected_head`, or a checkpoint kept elsewhere), a chain
  cannot show that its tail was removed: a truncated log is still a valid chain, ending at
  an earlier checkpoint. Keep the latest head outside the log to catch truncation.

Verification never creates or changes a file: a missing log is a ConfigError, and SQLite
logs are opened read-only.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, TokenError
from .audit_log import GENESIS, AuditLog, AuditRecord, open_audit_log
from .audit_signer import checkpoint_payload
from .jwk import JWK, JWKS, KeySource
from .jws_verify import verify_jws
from .key_sources import as_jwks
from .token_types import AUDIT_CHECKPOINT_TYP

__all__ = ["ChainVerification", "verify_chain"]


@dataclass
class ChainVerification:
    """The outcome of `verify_chain`: ok, or the first bad record and why."""

    ok: bool
    records: int = 0
    checkpoints: int = 0
    checkpoints_verified: int = 0
    unchecked: int = 0  # records after the last verified checkpoint
    head: str = GENESIS
    log_id: str | None = None  # the hash of the first record: the log's identity
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
    require_checkpoint_at_end: bool = False,
    max_unchecked: int | None = None,
    log_id: str | None = None,
) -> ChainVerification:
    """Walk the chain from the first record; stop at the first bad one (see the module docstring).

    With `keys` (the signer's public key or JWKS), every checkpoint's JWS is verified and
    at least one checkpoint is required; without, checkpoints are only hash-checked (noted
    in the result). `expected_head` must be the hash of the last record; `log_id`, when
    given, the hash of the first. `require_checkpoint_at_end` / `max_unchecked` bound the
    records after the last checkpoint. Raises ConfigError for a missing log or bad options,
    StateCorrupt for a damaged SQLite file.
    """
    if max_unchecked is not None and (isinstance(max_unchecked, bool) or not isinstance(max_unchecked, int)
                                      or max_unchecked < 0):
        raise ConfigError("max_unchecked must be a non-negative integer")
    jwks = as_jwks(keys) if keys is not None else None
    owned = not isinstance(log, AuditLog)
    audit_log = log if isinstance(log, AuditLog) else open_audit_log(log, read_only=True)
    try:
        result = _walk(audit_log, jwks)
    finally:
        if owned:
            audit_log.close()
    if not result.ok:
        return result
    return _check_end(result, jwks, expected_head, 0 if require_checkpoint_at_end else max_unchecked, log_id)


def _fail(result: ChainVerification, seq: int, position: int, reason: str) -> ChainVerification:
    result.ok, result.first_bad, result.position, result.reason = False, seq, position, reason
    return result


def _walk(log: AuditLog, jwks: JWKS | None) -> ChainVerification:
    result = ChainVerification(ok=True)
    expected_seq, prev = 1, GENESIS
    for position, text in log.raw_records():
        try:
            record = AuditRecord.from_dict(json.loads(text))
            computed = record.computed_hash()
        except (ValueError, RecursionError) as e:  # json.JSONDecodeError and ConfigError are ValueErrors
            return _fail(result, expected_seq, position, f"record {expected_seq} (position {position}) is unreadable: {e}")
        if computed != record.record_hash:
            return _fail(result, record.seq, position, f"record {record.seq} was changed: its hash does not match its contents")
        if record.seq != expected_seq:
            return _fail(result, record.seq, position,
                         f"record {record.seq} found where record {expected_seq} belongs: records deleted or reordered")
        if record.prev_hash != prev:
            return _fail(result, record.seq, position,
                         f"record {record.seq} does not follow record {record.seq - 1}: prev_hash mismatch "
                         "(deleted, reordered or rewritten)")
        if result.log_id is None:
            result.log_id = record.record_hash
        if record.kind == "checkpoint":
            result.checkpoints += 1
            problem = _check_checkpoint(record, result.log_id, jwks)
            if problem:
                return _fail(result, record.seq, position, f"checkpoint {record.seq}: {problem}")
            if jwks is not None:
                result.checkpoints_verified += 1
                result.unchecked = -1  # this record itself is vouched for
        elif record.kind != "signature":
            return _fail(result, record.seq, position, f"record {record.seq} has unknown kind {record.kind[:40]!r}")
        result.records += 1
        result.unchecked += 1
        prev, expected_seq = record.record_hash, expected_seq + 1
    result.head = prev
    return result


def _check_end(
    result: ChainVerification, jwks: JWKS | None, expected_head: str | None, max_unchecked: int | None,
    log_id: str | None,
) -> ChainVerification:
    end = result.records + 1
    if log_id is not None and result.log_id != log_id:
        return _fail(result, 1, 0, "the log's first record is not the expected one (another log, or rewritten)")
    if expected_head is not None and not hmac.compare_digest(expected_head, result.head):
        return _fail(result, end, 0, f"the log ends at {result.head[:16]}..., not at the expected head: records were removed")
    if jwks is not None and result.records and not result.checkpoints_verified:
        return _fail(result, end, 0, "the log has no checkpoint: no record in it is vouched for by the given keys")
    if jwks is None:
        result.unchecked = result.records
        if result.checkpoints:
            result.notes.append("checkpoint signatures not verified: no public key given")
    if max_unchecked is not None and result.unchecked > max_unchecked:
        return _fail(result, end, 0,
                     f"{result.unchecked} records follow the last verified checkpoint (at most {max_unchecked} allowed)")
    if result.unchecked and jwks is not None:
        result.notes.append(f"{result.unchecked} records after the last checkpoint are hash-checked only")
    return result


def _check_checkpoint(record: AuditRecord, log_id: str, jwks: JWKS | None) -> str | None:
    if not record.signature:
        return "has no signature"
    if jwks is None:
        return None
    # Match on the thumbprint (what key_id is), whatever kid the JWKS gives the key.
    candidates = jwks.by_thumbprint(record.key_id)
    if not candidates:
        return f"signed by key {record.key_id[:60]!r}, which is not among the given keys"
    trusted = JWKS([JWK.of(jwk, kid=record.key_id) for jwk in candidates[:1]])
    try:
        verified = verify_jws(record.signature, trusted, typ=AUDIT_CHECKPOINT_TYP)
    except TokenError:
        return "signature does not verify (or is not a keyplane audit checkpoint)"
    expected = checkpoint_payload({"log": log_id, "seq": record.seq, "head": record.record_hash})
    if not hmac.compare_digest(verified.payload, expected):
        return "signature does not verify for this record: it is over another log, sequence number or head"
    return None
