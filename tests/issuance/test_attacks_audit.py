"""Audit-chain forgeries (hardening issue, item 2): each attack here verified OK before the fix.

Checkpoints are typed JWS over the log id, sequence number and head; a verifier with keys
refuses a log no checkpoint vouches for, can bound what follows the last checkpoint, and
never creates a file while verifying.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from signers.audit import GENESIS, AuditedSigner, open_audit_log, verify_chain
from signers.errors import ConfigError, StateCorrupt
from signers.jose import canonical_json, sign_jws, sign_jwt
from signers.keys import b64url_encode

from .audit_storage import read_records, write_records

BODY = ("seq", "ts", "kind", "key_id", "alg", "message_sha256", "context", "prev_hash")


def forged_record(seq: int, prev: str, key_id: str, alg: str, kind: str = "signature") -> dict[str, Any]:
    body = {"seq": seq, "ts": "2026-01-01T00:00:00.000000Z", "kind": kind, "key_id": key_id, "alg": alg,
            "message_sha256": None if kind == "checkpoint" else hashlib.sha256(b"forged %d" % seq).hexdigest(),
            "context": {"forged": True}, "prev_hash": prev}
    return {**body, "record_hash": hashlib.sha256(canonical_json(body)).hexdigest()}


def forged_chain(count: int, key_id: str, alg: str, start: int = 1, prev: str = GENESIS) -> list[dict[str, Any]]:
    records = []
    for seq in range(start, start + count):
        record = forged_record(seq, prev, key_id, alg)
        records.append(record)
        prev = record["record_hash"]
    return records


def real_log(path: Path, signer: Any, count: int, every: int | None) -> None:
    with open_audit_log(path) as log:
        audited = AuditedSigner(signer, log, checkpoint_every=every)
        for i in range(count):
            audited.sign(f"message {i}".encode())


def test_fully_forged_log_without_checkpoints_is_refused_with_keys(log_path: Path, keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    write_records(log_path, forged_chain(5, signer.key_id, signer.algorithm.value))
    result = verify_chain(log_path, signer.public_key)
    assert not result.ok and "no checkpoint" in (result.reason or "")
    assert verify_chain(log_path).ok  # without keys a chain proves only that it is a chain


def test_records_appended_after_the_last_checkpoint_can_be_bounded(log_path: Path, keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    real_log(log_path, signer, 4, every=4)  # 4 signatures then a checkpoint at seq 5
    records = read_records(log_path)
    records += forged_chain(2, signer.key_id, signer.algorithm.value, start=6, prev=records[-1]["record_hash"])
    write_records(log_path, records)
    lenient = verify_chain(log_path, signer.public_key)
    assert lenient.ok and lenient.unchecked == 2 and "hash-checked only" in lenient.notes[-1]
    at_end = verify_chain(log_path, signer.public_key, require_checkpoint_at_end=True)
    assert not at_end.ok and "2 records follow the last verified checkpoint" in (at_end.reason or "")
    assert not verify_chain(log_path, signer.public_key, max_unchecked=1).ok
    assert verify_chain(log_path, signer.public_key, max_unchecked=2).ok


def test_signing_the_bare_record_hash_no_longer_mints_a_checkpoint(log_path: Path, keys: dict[str, Any]) -> None:
    """Anything that signs 64 hex characters with the key used to make a valid checkpoint."""
    signer = keys["ed25519"]
    records = forged_chain(3, signer.key_id, signer.algorithm.value)
    checkpoint = forged_record(4, records[-1]["record_hash"], signer.key_id, signer.algorithm.value, "checkpoint")
    oracle_signature = signer.sign(checkpoint["record_hash"].encode("ascii"))  # the old checkpoint format
    checkpoint["signature"] = b64url_encode(oracle_signature)
    write_records(log_path, [*records, checkpoint])
    result = verify_chain(log_path, signer.public_key)
    assert not result.ok and result.first_bad == 4 and "signature does not verify" in (result.reason or "")


def test_a_token_signed_by_the_key_is_not_a_checkpoint(log_path: Path, keys: dict[str, Any]) -> None:
    """Domain separation: a JWS of another typ, even over the right payload, is refused."""
    signer = keys["ed25519"]
    records = forged_chain(3, signer.key_id, signer.algorithm.value)
    checkpoint = forged_record(4, records[-1]["record_hash"], signer.key_id, signer.algorithm.value, "checkpoint")
    payload = canonical_json({"log": records[0]["record_hash"], "seq": 4, "head": checkpoint["record_hash"]})
    for signature in (sign_jws(signer, payload, typ="JWT"), sign_jwt(signer, {"head": checkpoint["record_hash"]})):
        write_records(log_path, [*records, {**checkpoint, "signature": signature}])
        result = verify_chain(log_path, signer.public_key)
        assert not result.ok and result.first_bad == 4


def test_a_checkpoint_moved_to_another_place_is_refused(log_path: Path, keys: dict[str, Any]) -> None:
    """A genuine checkpoint JWS copied onto a forged checkpoint record (another head) does not verify."""
    signer = keys["ed25519"]
    real_log(log_path, signer, 2, every=2)
    genuine = read_records(log_path)[-1]["signature"]
    records = forged_chain(2, signer.key_id, signer.algorithm.value)
    checkpoint = forged_record(3, records[-1]["record_hash"], signer.key_id, signer.algorithm.value, "checkpoint")
    write_records(log_path, [*records, {**checkpoint, "signature": genuine}])
    result = verify_chain(log_path, signer.public_key)
    assert not result.ok and "another log, sequence number or head" in (result.reason or "")


def test_log_identity_can_be_pinned(log_path: Path, keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    real_log(log_path, signer, 3, every=3)
    result = verify_chain(log_path, signer.public_key)
    assert result.ok and result.log_id == read_records(log_path)[0]["record_hash"]
    assert verify_chain(log_path, signer.public_key, log_id=result.log_id).ok
    assert not verify_chain(log_path, signer.public_key, log_id="0" * 64).ok


def test_verifying_never_creates_files(tmp_path: Path, keys: dict[str, Any]) -> None:
    for name in ("missing.db", "missing.jsonl", "sub/dir/missing.db"):
        with pytest.raises(ConfigError, match="does not exist"):
            verify_chain(tmp_path / name, keys["ed25519"].public_key)
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "audit.db"
    real_log(path, keys["ed25519"], 3, every=3)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert verify_chain(path, keys["ed25519"].public_key).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_damaged_sqlite_log_is_state_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(StateCorrupt):
        verify_chain(path)
    with pytest.raises(StateCorrupt):
        open_audit_log(path)
