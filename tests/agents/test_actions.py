"""Readable action claims; verification that returns params; exact binding; revoked agents."""

from __future__ import annotations

from typing import Any

import pytest

from signers.agents.actions import sign_agent_action, verify_agent_action
from signers.agents.errors import PolicyError, SubjectRevoked
from signers.agents.events import RejectionEvents
from signers.agents.revocation import revoke_group, revoke_subject
from signers.errors import TokenInvalid
from signers.passport import verify_action
from signers.revocation import MemoryRevocationStore

PARAMS = {"to": "acct-2", "amount": 100}


def test_readable_claims_and_returned_params(keys: dict[str, Any]) -> None:
    token = sign_agent_action(keys["issuer"], "agent-a", "pay", PARAMS, include_params=True,
                              claims={"authorized_by": "alice", "to": "acct-2"})
    grant = verify_agent_action(token, keys["issuer"])
    assert grant.params == PARAMS and grant.readable == {"authorized_by": "alice", "to": "acct-2"}
    assert verify_agent_action(token, keys["issuer"], action="pay", params=PARAMS).params == PARAMS
    with pytest.raises(TokenInvalid, match="params mismatch"):
        verify_agent_action(token, keys["issuer"], params={**PARAMS, "amount": 101})
    assert verify_action(token, keys["issuer"], "pay", PARAMS).sub == "agent-a"  # the base layer still accepts it


def test_without_embedded_params_caller_decides(keys: dict[str, Any]) -> None:
    token = sign_agent_action(keys["issuer"], "agent-a", "pay", PARAMS, claims={"authorized_by": "bob"})
    grant = verify_agent_action(token, keys["issuer"])
    assert grant.params is None and grant.readable["authorized_by"] == "bob"
    with pytest.raises(TokenInvalid, match="action mismatch"):
        verify_agent_action(token, keys["issuer"], action="refund")


def test_embedded_params_must_match_hash(keys: dict[str, Any]) -> None:
    """A token whose readable params were swapped (re-signed by a key the verifier trusts)."""
    from signers.jose import sign_jwt
    from signers.passport import params_hash

    claims = {"sub": "a", "iat": 1, "exp": 2**31, "jti": "j", "action": "pay", "params_hash": params_hash(PARAMS),
              "params": {**PARAMS, "to": "attacker"}}
    token = sign_jwt(keys["issuer"], claims, typ="action+jwt")
    with pytest.raises(TokenInvalid, match="do not match its params_hash"):
        verify_agent_action(token, keys["issuer"])


def test_reserved_claims_cannot_be_overwritten(keys: dict[str, Any]) -> None:
    for name in ("params_hash", "sub", "action", "grp"):
        with pytest.raises(PolicyError):
            sign_agent_action(keys["issuer"], "agent-a", "pay", PARAMS, claims={name: "x"})


def test_revoked_agent_or_group_refuses_action_tokens(keys: dict[str, Any]) -> None:
    store = MemoryRevocationStore()
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    token = sign_agent_action(keys["issuer"], "agent-a", "pay", PARAMS, groups=["fleet"])
    assert verify_agent_action(token, keys["issuer"], revocations=store).groups == ("fleet",)
    revoke_group(store, "fleet")
    with pytest.raises(SubjectRevoked, match="group"):
        verify_agent_action(token, keys["issuer"], revocations=store, events=events)
    other = sign_agent_action(keys["issuer"], "agent-b", "pay", PARAMS)
    revoke_subject(store, "agent-b")
    with pytest.raises(SubjectRevoked, match="agent"):
        verify_agent_action(other, keys["issuer"], revocations=store, events=events)
    assert [e.who for e in seen] == ["agent-a", "agent-b"] and all(e.what == "action" for e in seen)
