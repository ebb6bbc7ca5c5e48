"""Agent passports: stage from a verified history, required_stage ordering, groups, trust claim."""

from __future__ import annotations

from typing import Any

import pytest

from signers.agents.errors import PolicyError, StageNotBacked, SubjectRevoked
from signers.agents.events import RejectionEvents
from signers.agents.lifecycle import Approvers, advance
from signers.agents.passports import issue_agent_passport, verify_agent_passport
from signers.agents.revocation import reinstate, revoke_group, revoke_subject
from signers.agents.trust import TrustInputs, compute_trust
from signers.errors import TokenInvalid, TokenRevoked
from signers.jose import JWKS
from signers.passport import issue_passport
from signers.revocation import MemoryRevocationStore, RevocationList, issue_revocation_list

from .conftest import CODE
from .walk import walk


@pytest.fixture(scope="module")
def active(keys: dict[str, Any], approvers: Approvers) -> Any:
    return walk(keys, approvers, "agent-pass", CODE)


def _passport(keys: dict[str, Any], history: Any, **kwargs: Any) -> str:
    kwargs.setdefault("trust_score", 70)
    return issue_agent_passport(keys["issuer"], history, name="pass agent", agent_key=keys["agent"].public_key,
                                scopes=("tools:read",), **kwargs)


def test_stage_comes_from_history_and_is_backed(keys: dict[str, Any], approvers: Approvers, active: Any) -> None:
    token = _passport(keys, active, groups=["fleet-a"])
    agent = verify_agent_passport(token, JWKS.of(keys["issuer"]), history=active.tokens, approvers=approvers,
                                  required_stage="PROD_APPROVED")
    assert agent.stage == "ACTIVE" and agent.groups == ("fleet-a",) and agent.stage_head == active.head
    assert not agent.trust_computed


def test_required_stage_ordering(keys: dict[str, Any], approvers: Approvers) -> None:
    testing = walk(keys, approvers, "agent-testing", CODE, until="TESTING")
    token = _passport(keys, testing)
    assert verify_agent_passport(token, keys["issuer"], required_stage="VETTING").stage == "TESTING"
    with pytest.raises(TokenInvalid, match="not at least PROD_APPROVED"):
        verify_agent_passport(token, keys["issuer"], required_stage="PROD_APPROVED")
    with pytest.raises(PolicyError):
        verify_agent_passport(token, keys["issuer"], required_stage="BANANA")


def test_typed_in_stage_not_backed(keys: dict[str, Any], approvers: Approvers, active: Any) -> None:
    typed = issue_passport(keys["issuer"], sub="agent-pass", name="x", agent_key=keys["agent"].public_key,
                           code_hash=CODE, stage="ACTIVE", trust_score=90)
    with pytest.raises(StageNotBacked, match="stage_head"):
        verify_agent_passport(typed, keys["issuer"])
    banana = issue_passport(keys["issuer"], sub="agent-pass", name="x", agent_key=keys["agent"].public_key,
                            code_hash=CODE, stage="banana", trust_score=90, extra_claims={"stage_head": active.head})
    with pytest.raises(StageNotBacked, match="banana"):
        verify_agent_passport(banana, keys["issuer"])


def test_passport_not_backed_after_history_moved(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-moved", CODE)
    token = _passport(keys, history)
    suspended = advance(keys["approver"], history, "SUSPENDED", approvers, reason="incident")
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    with pytest.raises(StageNotBacked, match="stage changed"):
        verify_agent_passport(token, keys["issuer"], history=suspended, events=events)
    other = walk(keys, approvers, "agent-other-hist", CODE)
    with pytest.raises(StageNotBacked, match="another agent"):
        verify_agent_passport(token, keys["issuer"], history=other)
    assert seen and seen[0].error == "StageNotBacked" and seen[0].authenticated and seen[0].who == "agent-moved"


def test_group_and_subject_revocation_with_reinstatement(keys: dict[str, Any], active: Any) -> None:
    store = MemoryRevocationStore()
    before = _passport(keys, active, groups=["fleet-a", "fleet-b"], now=1_000_000_000)
    assert verify_agent_passport(before, keys["issuer"], revocations=store, now=1_000_000_010).sub == "agent-pass"
    from datetime import UTC, datetime

    revoke_group(store, "fleet-b", reason="compromised", at=datetime.fromtimestamp(1_000_000_100, UTC))
    with pytest.raises(SubjectRevoked, match="group 'fleet-b'"):
        verify_agent_passport(before, keys["issuer"], revocations=store, now=1_000_000_200)
    assert isinstance(SubjectRevoked("x"), TokenRevoked)
    during = _passport(keys, active, groups=["fleet-b"], now=1_000_000_150)
    with pytest.raises(SubjectRevoked):  # issued while revoked: still refused
        verify_agent_passport(during, keys["issuer"], revocations=store, now=1_000_000_200)
    reinstate(store, "grp", "fleet-b", at=datetime.fromtimestamp(1_000_000_300, UTC))
    after = _passport(keys, active, groups=["fleet-b"], now=1_000_000_400)
    assert verify_agent_passport(after, keys["issuer"], revocations=store, now=1_000_000_410)
    with pytest.raises(SubjectRevoked):
        verify_agent_passport(during, keys["issuer"], revocations=store, now=1_000_000_410)
    # a second cycle: revoke the agent itself
    revoke_subject(store, "agent-pass", at=datetime.fromtimestamp(1_000_000_500, UTC))
    with pytest.raises(SubjectRevoked, match="agent 'agent-pass'"):
        verify_agent_passport(after, keys["issuer"], revocations=store, now=1_000_000_510)
    revoke_group(store, "fleet-b", at=datetime.fromtimestamp(1_000_000_600, UTC))
    assert {r.id for r in store.list("grp")} == {"fleet-b", "fleet-b#2"}
    # the same answers from a signed revocation list
    signed = issue_revocation_list(keys["issuer"], store, issuer="issuer", now=datetime.fromtimestamp(1_000_000_700, UTC))
    offline = RevocationList.load(signed, keys["issuer"], issuer="issuer", now=1_000_000_710)
    with pytest.raises(SubjectRevoked):
        verify_agent_passport(after, keys["issuer"], revocations=offline, now=1_000_000_710)


def test_trust_claim_carried_and_checked(keys: dict[str, Any], active: Any) -> None:
    inputs = TrustInputs.collect("ACTIVE", CODE, attested_builds=[CODE], receipts_verified=25)
    trust = compute_trust(inputs, now=1_000_000_000)
    token = _passport(keys, active, trust=trust, trust_score=None)
    agent = verify_agent_passport(token, keys["issuer"])
    assert agent.trust_computed and agent.trust == trust and agent.trust_score == trust.score
    assert agent.trust is not None and agent.trust.matches(inputs)
    assert not agent.trust.matches(TrustInputs.collect("ACTIVE", CODE, receipts_verified=25))
    forged = issue_passport(keys["issuer"], sub="a", name="x", agent_key=keys["agent"].public_key, code_hash=CODE,
                            stage="ACTIVE", trust_score=100,
                            extra_claims={"stage_head": active.head, "trust": trust.claim()})
    with pytest.raises(TokenInvalid, match="differs"):
        verify_agent_passport(forged, keys["issuer"])
    with pytest.raises(PolicyError):
        _passport(keys, active, trust=trust, trust_score=50)
