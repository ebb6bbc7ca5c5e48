"""Governance with keys in real back ends: a SoftHSM2 (PKCS#11) release approver, an OpenBao
Transit issuer, and receipts signed in the HSM. Verified offline from published JWKS files."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import signers
from signers import KeySpec
from signers.agents.errors import HistoryInvalid
from signers.agents.gate import Gate
from signers.agents.lifecycle import Approvers, advance, register, verify_history
from signers.agents.passports import issue_agent_passport
from signers.agents.policy import GatePolicy
from signers.agents.receipts import sign_execution, verify_output
from signers.jose import JWKS

from .conftest import CODE


@contextlib.contextmanager
def _key(request: pytest.FixtureRequest, fixture: str, spec: KeySpec) -> Iterator[Any]:
    store = signers.open_store(request.getfixturevalue(fixture))
    name = f"agents-{spec.value.lower()}-{uuid.uuid4().hex[:8]}"
    try:
        yield store.create_key(name, spec)
    finally:
        with contextlib.suppress(Exception):  # cleanup only: the token and dev server are thrown away anyway
            store.delete_key(name)
        store.close()


def test_hsm_release_approver_and_transit_issuer(request: pytest.FixtureRequest, keys: dict[str, Any],
                                                 tmp_path: Path) -> None:
    with _key(request, "softhsm_store_uri", KeySpec.P256) as hsm, \
            _key(request, "openbao_store_uri", KeySpec.ED25519) as transit:
        approvers = Approvers.of({"registrar": [keys["registrar"]], "approver": [keys["approver"]],
                                  "release-approver": [hsm]})
        history = register(keys["registrar"], "agent-hsm", CODE, approvers)
        for stage, who in (("VETTING", keys["approver"]), ("TESTING", keys["approver"]),
                           ("DEV_APPROVED", keys["approver"]), ("PROD_APPROVED", hsm), ("ACTIVE", hsm)):
            history = advance(who, history, stage, approvers, reason="ok")
        published = tmp_path / "approvers.json"
        published.write_text(json.dumps(approvers.to_dict()))
        offline = Approvers.from_dict(json.loads(published.read_text()))
        assert verify_history(history.tokens, offline).stage == "ACTIVE"
        without_hsm = Approvers(JWKS.of(keys["registrar"], keys["approver"]),
                                {keys["registrar"].key_id: ["registrar"], keys["approver"].key_id: ["approver"]})
        with pytest.raises(HistoryInvalid, match="transition 5"):
            verify_history(history.tokens, without_hsm)

        passport = issue_agent_passport(transit, history, name="hsm agent", agent_key=keys["agent"].public_key,
                                        trust_score=80)
        issuer_jwks = tmp_path / "issuer.json"
        JWKS.of(transit).write(issuer_jwks)
        gate = Gate(GatePolicy.from_dict({"servers": {"s": {"allow_unlisted": True}}}), JWKS.load(issuer_jwks))
        assert gate.decide(passport, server="s", tool="t").allow

        receipt = sign_execution(hsm, {"q": 1}, {"a": 2}, agent="agent-hsm")
        assert verify_output(receipt, {"a": 2}, JWKS.of(hsm)).valid
        assert verify_output(receipt, {"a": 3}, JWKS.of(hsm)).differed == ("output",)
