"""Issuance over sign_many: issue_passports (one batch) and AuditedSigner.sign_many, on the real back ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from signers.algorithms import KeySpec
from signers.errors import BatchSignError, ConfigError
from signers.keys import PublicKey
from signers.local_keys import generate_private_key
from signers.signer import Signer
from signers.tokens.audit import AuditedSigner, JsonlAuditLog
from signers.tokens.passport import code_hash_of, issue_passport, issue_passports, verify_passport

from .conftest import POISON, poisoned


def _agent_key() -> PublicKey:
    return PublicKey(generate_private_key(KeySpec.ED25519).public_key())


def _arguments(count: int) -> list[dict[str, Any]]:
    key = _agent_key()
    return [{"sub": f"agent-{i}", "name": f"Agent {i}", "agent_key": key, "code_hash": code_hash_of(b"%d" % i),
             "stage": "ACTIVE", "trust_score": 50 + i, "scopes": ["read"], "iss": "https://issuer.example"}
            for i in range(count)]


def test_issue_passports_signs_a_batch_that_verifies_in_order(signer: Signer) -> None:
    tokens = issue_passports(signer, _arguments(7))
    assert len(tokens) == 7
    for i, token in enumerate(tokens):
        passport = verify_passport(token, signer.public_key, issuer="https://issuer.example")
        assert (passport.sub, passport.trust_score, passport.issuer_kid) == (f"agent-{i}", 50 + i, signer.key_id)
    single = issue_passport(signer, **_arguments(1)[0])
    assert single.split(".")[0] == tokens[0].split(".")[0]  # the same protected header as one at a time
    assert issue_passports(signer, []) == []


def test_one_bad_passport_signs_none(signer: Signer) -> None:
    arguments = _arguments(3)
    arguments[1]["trust_score"] = 101
    failing = poisoned(signer)  # any signature made would be visible as a call; none may be
    calls: list[bytes] = []
    real = type(failing).sign

    def counting(self: Signer, message: bytes) -> bytes:
        calls.append(message)
        return real(self, message)

    type(failing).sign = counting  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="passport 1"):
        issue_passports(failing, arguments)
    with pytest.raises(ConfigError, match="passport 0"):
        issue_passports(failing, [{"sub": "x"}])
    assert calls == []


def test_audited_sign_many_records_every_signature_it_returns(signer: Signer, tmp_path: Path) -> None:
    if not signer.uri.startswith(("file:", "pkcs11:")):
        pytest.skip("the audit wrapper is back-end neutral: two back ends (file, PKCS#11) are enough here")
    log = JsonlAuditLog(tmp_path / "audit.jsonl")
    audited = AuditedSigner(poisoned(signer), log, checkpoint_every=None)
    messages = [b"a", b"b", POISON, b"d"]
    with pytest.raises(BatchSignError) as caught:
        audited.sign_many(messages)
    assert list(caught.value.errors) == [2]
    assert len(audited.sign_many(messages[:2])) == 2
    assert len(asyncio.run(audited.sign_many_async([b"e"]))) == 1
    records = [r for r in log.records() if r.body()["kind"] == "signature"]
    assert len(records) == 3 + 2 + 1  # the batch's three good signatures are logged, the failed item is not
