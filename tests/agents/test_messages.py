"""Agent-to-agent messages: passport or certificate chain + CRL; audience, freshness, replay."""

from __future__ import annotations

import time
from typing import Any

import pytest

from signers.agents.errors import PolicyError, SubjectRevoked
from signers.agents.events import RejectionEvents
from signers.agents.lifecycle import Approvers
from signers.agents.messages import MessageVerifier, sign_message
from signers.agents.passports import issue_agent_passport
from signers.agents.revocation import revoke_subject
from signers.errors import TokenExpired, TokenInvalid, TokenReplayed
from signers.revocation import MemoryRevocationStore
from signers.x509 import CertificateAuthority

from .conftest import CODE
from .walk import walk


@pytest.fixture(scope="module")
def passport(keys: dict[str, Any], approvers: Approvers) -> str:
    history = walk(keys, approvers, "agent-sender", CODE)
    return issue_agent_passport(keys["issuer"], history, name="sender", agent_key=keys["agent"].public_key,
                                trust_score=80)


def test_message_verified_against_the_passport_once(keys: dict[str, Any], passport: str) -> None:
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    peer = MessageVerifier("agent-peer", events=events)
    message = sign_message(keys["agent"], passport, to="agent-peer", body={"task": "summarise", "doc": 7})
    got = peer.verify(message, passport=passport, issuer_keys=keys["issuer"])
    assert got.sender == "agent-sender" and got.body == {"task": "summarise", "doc": 7}
    with pytest.raises(TokenReplayed):
        peer.verify(message, passport=passport, issuer_keys=keys["issuer"])
    assert seen[-1].what == "message" and seen[-1].error == "TokenReplayed"


def test_wrong_audience_key_or_staleness_refused(keys: dict[str, Any], passport: str) -> None:
    peer = MessageVerifier("agent-peer", max_age=30)
    other = sign_message(keys["agent"], passport, to="someone-else", body=1)
    with pytest.raises(TokenInvalid, match="audience"):
        peer.verify(other, passport=passport, issuer_keys=keys["issuer"])
    impostor = sign_message(keys["peer"], passport, to="agent-peer", body=1)  # not the passport's cnf key
    with pytest.raises(TokenInvalid, match="not in the trusted key set"):
        peer.verify(impostor, passport=passport, issuer_keys=keys["issuer"])
    old = sign_message(keys["agent"], passport, to="agent-peer", body=1, ttl=3600, now=time.time() - 600)
    with pytest.raises(TokenInvalid, match="stale"):
        peer.verify(old, passport=passport, issuer_keys=keys["issuer"])
    expired = sign_message(keys["agent"], passport, to="agent-peer", body=1, ttl=1, now=time.time() - 100)
    with pytest.raises(TokenExpired):
        MessageVerifier("agent-peer", max_age=1000).verify(expired, passport=passport, issuer_keys=keys["issuer"])


def test_revoked_sender_refused(keys: dict[str, Any], passport: str) -> None:
    store = MemoryRevocationStore()
    revoke_subject(store, "agent-sender")
    message = sign_message(keys["agent"], passport, to="agent-peer", body=1)
    with pytest.raises(SubjectRevoked):
        MessageVerifier("agent-peer").verify(message, passport=passport, issuer_keys=keys["issuer"], revocations=store)


def test_certificate_chain_and_crl(keys: dict[str, Any], passport: str) -> None:
    store = MemoryRevocationStore()
    root = CertificateAuthority.create_root(keys["issuer-p256"], "CN=Agents Root", revocations=store)
    leaf = root.issue(keys["agent"].public_key, "CN=agent-sender", uris=["spiffe://test/agent-sender"])
    message = sign_message(keys["agent"], passport, to="agent-peer", body={"hello": 1})
    peer = MessageVerifier("agent-peer")
    got = peer.verify(message, certificate=leaf, roots=[root.certificate], crl=root.crl())
    assert got.sender == "agent-sender"
    other = root.issue(keys["agent"].public_key, "CN=someone-else")
    fresh = sign_message(keys["agent"], passport, to="agent-peer", body=2)
    with pytest.raises(TokenInvalid, match="not named"):
        peer.verify(fresh, certificate=other, roots=[root.certificate])
    store.revoke(format(leaf.serial_number, "x"), kind="x509-serial", reason="key_compromise")
    again = sign_message(keys["agent"], passport, to="agent-peer", body=3)
    with pytest.raises(TokenInvalid, match="certificate refused"):
        peer.verify(again, certificate=leaf, roots=[root.certificate], crl=root.crl())
    with pytest.raises(PolicyError):
        peer.verify(again)
