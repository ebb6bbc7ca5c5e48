"""signers.audit: the hash chain, checkpoints, and tamper detection in both storage formats."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from signers import Signer
from signers.audit import (
    GENESIS,
    AuditedSigner,
    AuditLogDamaged,
    JsonlAuditLog,
    SQLiteAuditLog,
    audit_context,
    open_audit_log,
    verify_chain,
)
from signers.errors import ConfigError
from signers.jose import JWKS, sign_jwt, verify_jwt
from signers.passport import code_hash_of, issue_passport, verify_passport

from .audit_storage import read_records, write_records


def make_log(path: Path, signer: Any, count: int, every: int | None = 5) -> None:
    with open_audit_log(path) as log:
        audited = AuditedSigner(signer, log, context={"service": "test"}, checkpoint_every=every)
        for i in range(count):
            audited.sign(f"message {i}".encode())


# -- storage-level edits an attacker (or a bad disk) could make ------------------------------


def rehash(record: dict[str, Any]) -> dict[str, Any]:
    from signers.jose import canonical_json

    body = {k: record[k] for k in ("seq", "ts", "kind", "key_id", "alg", "message_sha256", "context", "prev_hash")}
    return {**record, "record_hash": hashlib.sha256(canonical_json(body)).hexdigest()}


# -- the chain -------------------------------------------------------------------------------


def test_every_signature_is_recorded_and_the_chain_verifies(log_path: Path, keys: dict[str, Any]) -> None:
    signer = keys["p256"]
    with open_audit_log(log_path) as log:
        audited = AuditedSigner(signer, log, context={"service": "issuer"}, checkpoint_every=3)
        assert isinstance(audited, Signer)
        assert (audited.key_id, audited.algorithm, audited.public_key) == (signer.key_id, signer.algorithm,
                                                                           signer.public_key)
        messages = [b"", b"a", b"x" * 100_000, b"b", b"c", b"d", b"e"]
        with audit_context(user="alice", request_id="r-1"):
            signatures = [audited.sign(m) for m in messages]
        for signature, message in zip(signatures, messages, strict=True):
            signer.public_key.verify(signature, message, signer.algorithm)
    records = read_records(log_path)
    sig_records = [r for r in records if r["kind"] == "signature"]
    assert [r["message_sha256"] for r in sig_records] == [hashlib.sha256(m).hexdigest() for m in messages]
    assert all(r["context"] == {"service": "issuer", "user": "alice", "request_id": "r-1"} for r in sig_records)
    assert all(r["key_id"] == signer.key_id and r["alg"] == "ES256" for r in records)
    assert records[0]["prev_hash"] == GENESIS
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert [r["kind"] for r in records].count("checkpoint") == 2  # after signatures 3 and 6
    result = verify_chain(log_path, signer.public_key)
    assert result.ok, result.reason
    assert (result.records, result.checkpoints, result.checkpoints_verified) == (9, 2, 2)
    assert result.head == records[-1]["record_hash"]
    unkeyed = verify_chain(log_path)
    assert unkeyed.ok and unkeyed.checkpoints_verified == 0 and "not verified" in unkeyed.notes[0]


def test_tokens_signed_through_the_audited_signer_are_logged(log_path: Path, keys: dict[str, Any]) -> None:
    issuer = keys["mldsa65"]
    with open_audit_log(log_path) as log:
        audited = AuditedSigner(issuer, log, checkpoint_every=None)
        with audit_context(operation="issue-passport"):
            token = issue_passport(audited, sub="agent-1", name="A", agent_key=keys["agent"].public_key,
                                   code_hash=code_hash_of(b"x"), stage="dev", trust_score=10)
        assert verify_passport(token, JWKS.of(issuer)).sub == "agent-1"
        jwt_token = sign_jwt(audited, {"exp": 4_000_000_000})
        assert verify_jwt(jwt_token, issuer).claims
        assert asyncio.run(audited.sign_async(b"async")) is not None
        audited.checkpoint()
    records = read_records(log_path)
    signing_input = token.rsplit(".", 1)[0].encode()
    assert records[0]["message_sha256"] == hashlib.sha256(signing_input).hexdigest()
    assert records[0]["context"] == {"operation": "issue-passport"} and records[1]["context"] == {}
    assert verify_chain(log_path, JWKS.of(issuer)).ok


def test_context_nests_and_resets(log_path: Path, keys: dict[str, Any]) -> None:
    with open_audit_log(log_path) as log:
        audited = AuditedSigner(keys["ed25519"], log, checkpoint_every=None)
        with audit_context(user="alice"):
            with audit_context(request="r-2"):
                audited.sign(b"1")
            audited.sign(b"2")
        audited.sign(b"3")
    assert [r["context"] for r in read_records(log_path)] == [{"user": "alice", "request": "r-2"}, {"user": "alice"}, {}]
    with pytest.raises(ConfigError), audit_context(bad=object()):
        pass
    with pytest.raises(ConfigError):
        AuditedSigner(keys["ed25519"], JsonlAuditLog(log_path.with_suffix(".x.jsonl")), checkpoint_every=0)


# -- tampering ---------------------------------------------------------------------------


def test_changed_record_is_named(log_path: Path, keys: dict[str, Any]) -> None:
    make_log(log_path, keys["ed25519"], 12)
    records = read_records(log_path)
    records[6]["context"]["service"] = "evil"  # seq 7
    write_records(log_path, records)
    result = verify_chain(log_path, keys["ed25519"].public_key)
    assert not result.ok and result.first_bad == 7 and result.position == 7
    assert "record 7 was changed" in (result.reason or "")


def test_deleted_record_is_named(log_path: Path, keys: dict[str, Any]) -> None:
    make_log(log_path, keys["ed25519"], 12)
    records = read_records(log_path)
    del records[4]  # seq 5
    write_records(log_path, records)
    result = verify_chain(log_path)
    assert not result.ok and result.first_bad == 6 and "where record 5 belongs" in (result.reason or "")


def test_reordered_records_are_named(log_path: Path, keys: dict[str, Any]) -> None:
    make_log(log_path, keys["ed25519"], 12)
    records = read_records(log_path)
    records[7], records[8] = records[8], records[7]  # seq 8 and 9 swap places
    write_records(log_path, records)
    result = verify_chain(log_path)
    assert not result.ok and result.first_bad == 9 and result.position == 8
    assert "found where record 8 belongs" in (result.reason or "")


def test_renumbered_deletion_breaks_the_prev_hash_link(log_path: Path, keys: dict[str, Any]) -> None:
    """Deleting a record and renumbering (rehashing) the rest still breaks the link at the first one moved."""
    make_log(log_path, keys["ed25519"], 8, every=None)
    records = read_records(log_path)
    del records[2]
    for i, record in enumerate(records[2:], start=3):
        records[i - 1] = rehash({**record, "seq": i})
    write_records(log_path, records)
    result = verify_chain(log_path)
    assert not result.ok and result.first_bad == 3 and "prev_hash mismatch" in (result.reason or "")


def test_rewritten_chain_is_caught_by_the_signed_checkpoint(log_path: Path, keys: dict[str, Any]) -> None:
    """An attacker who recomputes every hash after an edit cannot re-sign the checkpoint."""
    signer = keys["ed25519"]
    make_log(log_path, signer, 10, every=5)  # checkpoints at seq 6 and 12
    records = read_records(log_path)
    records[1]["context"] = {"service": "rewritten"}
    prev = records[0]["record_hash"]
    for i in range(1, len(records)):
        records[i] = rehash({**records[i], "prev_hash": prev})
        prev = records[i]["record_hash"]
    write_records(log_path, records)
    result = verify_chain(log_path, signer.public_key)
    assert not result.ok and result.first_bad == 6 and "signature does not verify" in (result.reason or "")
    assert verify_chain(log_path).ok  # without the key only hashes are checked: hence checkpoints


def test_checkpoint_by_an_unknown_key(log_path: Path, keys: dict[str, Any]) -> None:
    make_log(log_path, keys["ed25519"], 5, every=5)
    result = verify_chain(log_path, keys["p256"].public_key)
    assert not result.ok and result.first_bad == 6 and "not among the given keys" in (result.reason or "")


def test_truncation_is_caught_with_an_expected_head(log_path: Path, keys: dict[str, Any]) -> None:
    make_log(log_path, keys["ed25519"], 6, every=None)
    head = verify_chain(log_path).head
    records = read_records(log_path)
    write_records(log_path, records[:-2])
    assert verify_chain(log_path).ok  # a chain alone cannot see a missing tail
    result = verify_chain(log_path, expected_head=head)
    assert not result.ok and "records were removed" in (result.reason or "")


def test_garbage_line_is_named(tmp_path: Path, keys: dict[str, Any]) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, keys["ed25519"], 4, every=None)
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines) + "\n")
    result = verify_chain(path)
    assert not result.ok and result.first_bad == 3 and "unreadable" in (result.reason or "")


def test_appending_after_a_damaged_tail_is_refused(tmp_path: Path, keys: dict[str, Any]) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, keys["ed25519"], 2, every=None)
    with path.open("a") as f:
        f.write('{"seq": 3, "half a rec')  # a crash mid-write
    with pytest.raises(AuditLogDamaged, match="unreadable"):
        AuditedSigner(keys["ed25519"], JsonlAuditLog(path)).sign(b"x")


# -- concurrency -------------------------------------------------------------------------


def test_threads_signing_at_once_keep_one_chain(log_path: Path, keys: dict[str, Any]) -> None:
    with open_audit_log(log_path) as log:
        audited = AuditedSigner(keys["ed25519"], log, checkpoint_every=10)
        barrier = threading.Barrier(8)

        def worker(n: int) -> None:
            barrier.wait(timeout=30)
            with audit_context(thread=n):
                for i in range(25):
                    audited.sign(f"{n}-{i}".encode())

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    result = verify_chain(log_path, keys["ed25519"].public_key)
    assert result.ok, result.reason
    assert result.records - result.checkpoints == 200 and result.checkpoints == 20


def test_processes_appending_at_once_keep_one_chain(log_path: Path, tmp_path: Path, keys: dict[str, Any]) -> None:
    signer_uri = keys["ed25519"].uri
    code = (
        "import sys, signers\n"
        "from signers.audit import AuditedSigner, open_audit_log\n"
        "signer = signers.open(sys.argv[1])\n"
        "with open_audit_log(sys.argv[2]) as log:\n"
        "    audited = AuditedSigner(signer, log, checkpoint_every=7)\n"
        "    for i in range(40): audited.sign(f'{sys.argv[3]}-{i}'.encode())\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, signer_uri, str(log_path), str(n)]) for n in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    result = verify_chain(log_path, keys["ed25519"].public_key)
    assert result.ok, result.reason
    assert result.records - result.checkpoints == 120


def test_log_kinds_by_file_name(tmp_path: Path) -> None:
    assert isinstance(open_audit_log(tmp_path / "a.jsonl"), JsonlAuditLog)
    db = open_audit_log(tmp_path / "a.db")
    assert isinstance(db, SQLiteAuditLog)
    db.close()
    db.close()
    with pytest.raises(ConfigError, match="closed"):
        list(db.raw_records())
    with pytest.raises(ConfigError, match="does not exist"):  # a missing log is refused, and not created
        verify_chain(tmp_path / "missing.jsonl")
    assert not (tmp_path / "missing.jsonl").exists()
