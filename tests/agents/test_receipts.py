"""Execution receipts: RFC 8785 digests, TAMPERED with what differed, DAG edges."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from signers.agents.canonical import digest
from signers.agents.errors import ReceiptInvalid, ReceiptParentMissing
from signers.agents.events import RejectionEvents
from signers.agents.receipts import Receipt, sign_execution, verify_dag, verify_output, verify_receipt
from signers.audit import open_audit_log, verify_chain
from signers.errors import ConfigError, TokenInvalid
from signers.jose import parse_jws


def test_digests_are_rfc8785() -> None:
    value = {"b": [1, 2.5, "é"], "a": 1e21}
    assert digest(value) == "sha256:" + hashlib.sha256(rfc8785.dumps(value)).hexdigest()
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest(b"raw bytes") == "sha256:" + hashlib.sha256(b"raw bytes").hexdigest()
    with pytest.raises(ConfigError):
        digest({"x": float("nan")})


def test_valid_and_tampered_output(keys: dict[str, Any]) -> None:
    receipt = sign_execution(keys["agent"], {"q": "balance"}, {"balance": 10}, agent="agent-r")
    assert receipt.token.split(".")[0] and parse_jws(receipt.token).header["typ"] == "execution-receipt+jwt"
    assert verify_output(receipt, {"balance": 10}, keys["agent"]).status == "VALID"
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    tampered = verify_output(receipt, {"balance": 10_000}, keys["agent"], events=events)
    assert tampered.status == "TAMPERED" and tampered.differed == ("output",) and not tampered.valid
    both = verify_output(receipt.token, {"balance": 1}, keys["agent"], input={"q": "other"})
    assert both.differed == ("input", "output")
    assert verify_output(receipt, {"balance": 10}, keys["agent"], input={"q": "balance"}).valid
    assert seen[0].what == "receipt" and "TAMPERED" in seen[0].why and seen[0].who == "agent-r"


def test_bytes_input_and_output(keys: dict[str, Any]) -> None:
    receipt = sign_execution(keys["agent"], b"\x00input", b"output bytes")
    assert verify_output(receipt, b"output bytes", keys["agent"]).valid
    assert verify_output(receipt, b"output bytez", keys["agent"]).differed == ("output",)


def test_forged_receipt_is_an_error_not_a_verdict(keys: dict[str, Any]) -> None:
    receipt = sign_execution(keys["agent"], 1, 2)
    with pytest.raises(ReceiptInvalid):
        verify_output(receipt, 2, keys["peer"])  # another key
    head, payload, sig = receipt.token.split(".")
    from signers.keys import b64url_decode, b64url_encode

    claims = json.loads(b64url_decode(payload))
    claims["output"] = digest(3)
    forged = f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}"
    with pytest.raises(ReceiptInvalid) as info:
        verify_output(forged, 3, keys["agent"])
    assert isinstance(info.value, TokenInvalid)


def test_exec_digest_checked(keys: dict[str, Any]) -> None:
    """A receipt signed by the right key whose exec digest does not cover its claims."""
    from signers.jose import sign_jwt

    claims = {"iat": 1, "input": digest(1), "output": digest(2), "parents": [], "exec": digest("other"), "ctx": {}}
    token = sign_jwt(keys["agent"], claims, typ="execution-receipt+jwt")
    with pytest.raises(ReceiptInvalid, match="exec digest"):
        verify_receipt(token, keys["agent"])


def test_dag_verifies_and_removed_parent_is_refused_at_that_edge(keys: dict[str, Any]) -> None:
    a = sign_execution(keys["agent"], "in-a", "out-a")
    b = sign_execution(keys["agent"], "in-b", "out-b")
    c = sign_execution(keys["agent"], ["out-a", "out-b"], "out-c", parents=[a, b])
    d = sign_execution(keys["agent"], "out-c", "out-d", parents=[c.hash])
    dag = verify_dag([d, c, b, a], keys["agent"])
    assert dag.order.index(a.hash) < dag.order.index(c.hash) < dag.order.index(d.hash)
    assert set(dag.roots) == {a.hash, b.hash} and dag.sinks == (d.hash,) and dag.edges == 3
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    with pytest.raises(ReceiptParentMissing) as info:
        verify_dag([d, c, a], keys["agent"], events=events)  # b removed
    assert c.hash[:23] in str(info.value) and b.hash[:23] in str(info.value)
    assert seen and seen[0].error == "ReceiptParentMissing"
    with pytest.raises(ReceiptInvalid):
        verify_dag([], keys["agent"])


def test_receipts_appended_to_the_audit_chain(keys: dict[str, Any], tmp_path: Path) -> None:
    log = open_audit_log(tmp_path / "receipts.jsonl")
    receipt = sign_execution(keys["agent"], 1, 2, agent="agent-r", audit=log)
    (record,) = list(log.records())
    assert record.context["event"] == "execution-receipt" and record.context["exec"] == receipt.execution
    assert verify_chain(log).ok
    assert Receipt.parse(receipt.token).hash == receipt.hash
    with pytest.raises(ReceiptInvalid):
        Receipt.parse("junk")
