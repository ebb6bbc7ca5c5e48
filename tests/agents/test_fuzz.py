"""Hostile input never escapes as a raw Python exception: only typed errors, or a DENY."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signers.agents.actions import verify_agent_action
from signers.agents.errors import PolicyError
from signers.agents.gate import CHECKS, Gate
from signers.agents.lifecycle import Approvers, Lifecycle, verify_history
from signers.agents.passports import verify_agent_passport
from signers.agents.policy import GatePolicy
from signers.agents.receipts import verify_dag
from signers.errors import KeyplaneError, TokenError
from signers.jose import sign_jwt
from signers.keys import b64url_encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
CLAIM_NAMES = ["sub", "name", "jti", "iat", "exp", "nbf", "cnf", "stage", "trust_score", "scopes", "code_hash",
               "stage_head", "grp", "trust", "iss", "aud", "seq", "from", "to", "approver", "prev", "reason"]
claims = st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=12)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _unsigned(payload: Any) -> str:
    header = b64url_encode(json.dumps({"alg": "EdDSA", "typ": "passport+jwt"}).encode())
    return f"{header}.{b64url_encode(json.dumps(payload, default=str).encode())}.AAAA"


@SETTINGS
@given(text=st.text(max_size=200) | st.builds(_unsigned, claims))
def test_gate_answers_garbage_with_deny(keys: dict[str, Any], text: str) -> None:
    gate = Gate(GatePolicy.from_dict({"servers": {"s": {"allow_unlisted": True}}}), keys["issuer"])
    decision = gate.decide(text, server="s", tool="t", proof=text, action_token=text)
    assert not decision.allow and set(decision.checks_failed) | set(decision.checks_passed) == set(CHECKS)


@SETTINGS
@given(payload=claims)
def test_signed_hostile_claims_are_typed_refusals(keys: dict[str, Any], payload: dict[str, Any]) -> None:
    """Claims signed by the trusted issuer but shaped by an attacker (a compromised feeder)."""
    try:
        token = sign_jwt(keys["issuer"], payload, typ="passport+jwt")
    except KeyplaneError:
        return  # not JSON (NaN): cannot even be signed
    gate = Gate(GatePolicy.from_dict({"servers": {"s": {"allow_unlisted": True}}}), keys["issuer"])
    gate.decide(token, server="s", tool="t")  # never raises
    with contextlib.suppress(TokenError):
        verify_agent_passport(token, keys["issuer"])
    action = sign_jwt(keys["issuer"], payload, typ="action+jwt")
    with contextlib.suppress(TokenError):
        verify_agent_action(action, keys["issuer"])


@SETTINGS
@given(tokens=st.lists(st.text(max_size=80) | st.builds(_unsigned, claims), min_size=0, max_size=4))
def test_history_and_dag_garbage(keys: dict[str, Any], approvers: Approvers, tokens: list[str]) -> None:
    with contextlib.suppress(TokenError):
        verify_history(tokens, approvers)
    with contextlib.suppress(TokenError):
        verify_dag(tokens, keys["agent"])


@SETTINGS
@given(table=st.dictionaries(st.sampled_from(["issuer", "audience", "defaults", "servers", "x"]),
                             json_values | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                             max_size=4))
def test_policy_garbage_is_a_policy_error(table: dict[str, Any]) -> None:
    with contextlib.suppress(PolicyError):
        GatePolicy.from_dict(table)
    with contextlib.suppress(PolicyError):
        Lifecycle.from_dict(table)
