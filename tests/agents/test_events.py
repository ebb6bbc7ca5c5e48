"""Rejection events (sync hook, bounded async queue) and the auto-revoke policy."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from signers.agents.autorevoke import AUTO_REVOKE, AutoRevoke
from signers.agents.errors import PolicyError, SubjectRevoked
from signers.agents.events import RejectionEvents
from signers.agents.gate import Gate
from signers.agents.lifecycle import Approvers
from signers.agents.passports import issue_agent_passport, verify_agent_passport
from signers.agents.policy import GatePolicy
from signers.errors import TokenInvalid
from signers.revocation import MemoryRevocationStore

from .conftest import CODE
from .walk import walk


def test_sync_subscriber_sees_event_before_verifier_raises(keys: dict[str, Any]) -> None:
    events = RejectionEvents()
    seen: list[Any] = []
    events.subscribe(seen.append)
    with pytest.raises(TokenInvalid):
        verify_agent_passport("a.b.c", keys["issuer"], events=events, context={"remote": "127.0.0.1:5555"})
    assert len(seen) == 1 and seen[0].what == "passport" and seen[0].context == {"remote": "127.0.0.1:5555"}
    assert not seen[0].authenticated


def test_failing_subscriber_changes_nothing(keys: dict[str, Any]) -> None:
    events = RejectionEvents()

    def broken(event: Any) -> None:
        raise RuntimeError("subscriber bug")

    events.subscribe(broken)
    with pytest.raises(TokenInvalid):  # the verifier's own error, not the subscriber's
        verify_agent_passport("a.b.c", keys["issuer"], events=events)
    assert events.subscriber_errors == 1
    with pytest.raises(PolicyError):
        events.subscribe("not callable")  # type: ignore[arg-type]


def test_slow_async_subscriber_never_blocks_and_queue_is_bounded(keys: dict[str, Any]) -> None:
    events = RejectionEvents(queue_size=3)
    release = threading.Event()
    delivered: list[Any] = []

    def slow(event: Any) -> None:
        release.wait(10)
        delivered.append(event)

    events.subscribe(slow, asynchronous=True)
    started = time.perf_counter()
    for _ in range(20):
        with pytest.raises(TokenInvalid):
            verify_agent_passport("a.b.c", keys["issuer"], events=events)
    assert time.perf_counter() - started < 5  # would be 20 x 10 s if the subscriber ran inline
    assert events.dropped >= 16  # 1 in the worker's hands + 3 queued at most
    release.set()
    assert events.join(10)
    assert 1 <= len(delivered) <= 4 and events.reported == 20
    events.close()


def test_events_carry_no_token_material(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-secretless", CODE)
    token = issue_agent_passport(keys["issuer"], history, name="x", agent_key=keys["agent"].public_key,
                                 trust_score=10)
    events = RejectionEvents()
    seen: list[Any] = []
    events.subscribe(seen.append)
    with pytest.raises(TokenInvalid):
        verify_agent_passport(token, keys["issuer"], events=events, min_trust_score=50)
    text = repr(seen[0].to_dict())
    assert token not in text and token.split(".")[2] not in text and token.split(".")[1] not in text
    assert seen[0].who == "agent-secretless" and seen[0].token_id and seen[0].authenticated


def _gate(keys: dict[str, Any], store: MemoryRevocationStore, events: RejectionEvents) -> Gate:
    policy = GatePolicy.from_dict({"servers": {"s": {"tools": {"t": {"min_trust": 50}}}}})
    return Gate(policy, keys["issuer"], revocations=store, events=events)


def test_five_rejections_auto_revoke_the_agent(keys: dict[str, Any], approvers: Approvers) -> None:
    store = MemoryRevocationStore()
    events = RejectionEvents()
    seen: list[Any] = []
    events.subscribe(seen.append)
    policy = AutoRevoke(store, threshold=5, window=60).attach(events)
    gate = _gate(keys, store, events)
    history = walk(keys, approvers, "agent-noisy", CODE)
    low = issue_agent_passport(keys["issuer"], history, name="x", agent_key=keys["agent"].public_key,
                               trust_score=10, now=time.time() - 5)
    good = issue_agent_passport(keys["issuer"], history, name="x", agent_key=keys["agent"].public_key,
                                trust_score=90, now=time.time() - 5)
    for _ in range(4):
        assert gate.decide(low, server="s", tool="t").checks_failed == ("trust",)
    assert gate.decide(good, server="s", tool="t").allow  # four rejections: still fine
    assert gate.decide(low, server="s", tool="t").checks_failed == ("trust",)  # the fifth
    assert store.get("agent-noisy", kind="sub") is not None and len(policy.revoked) == 1
    assert seen[-1].what == AUTO_REVOKE and seen[-1].who == "agent-noisy"
    after = gate.decide(good, server="s", tool="t")
    assert after.checks_failed == ("agent-revocation",) and "auto-revoked" in after.reason
    with pytest.raises(SubjectRevoked):
        verify_agent_passport(good, keys["issuer"], revocations=store)


def test_forged_rejections_do_not_revoke_a_victim(keys: dict[str, Any], approvers: Approvers) -> None:
    store = MemoryRevocationStore()
    events = RejectionEvents()
    AutoRevoke(store, threshold=2, window=60).attach(events)
    gate = _gate(keys, store, events)
    history = walk(keys, approvers, "agent-victim", CODE)
    forged = issue_agent_passport(keys["outsider"], history, name="x", agent_key=keys["agent"].public_key,
                                  trust_score=90)  # claims sub agent-victim, signed by someone else
    for _ in range(5):
        assert not gate.decide(forged, server="s", tool="t").allow
    assert store.get("agent-victim", kind="sub") is None
    counting = MemoryRevocationStore()
    events_all = RejectionEvents()
    AutoRevoke(counting, threshold=2, window=60, authenticated_only=False).attach(events_all)
    for _ in range(2):
        _gate(keys, counting, events_all).decide(forged, server="s", tool="t")
    assert counting.get("agent-victim", kind="sub") is not None


def test_window_slides_and_config_is_checked() -> None:
    from datetime import UTC, datetime

    from signers.agents.events import RejectionEvent

    store = MemoryRevocationStore()
    policy = AutoRevoke.from_config(store, {"threshold": 3, "window": 10})
    for offset in (0, 5, 11, 22):  # never three within 10 s
        policy(RejectionEvent("gate", "a", "x", "TokenInvalid", datetime.fromtimestamp(1_000 + offset, UTC),
                              authenticated=True))
    assert store.get("a", kind="sub") is None
    assert policy.recent("a", now=1_025) == 1 and policy.recent("a", now=1_040) == 0 and policy.recent("b") == 0
    for offset in (30, 31, 32):
        policy(RejectionEvent("gate", "a", "x", "TokenInvalid", datetime.fromtimestamp(1_000 + offset, UTC),
                              authenticated=True))
    assert store.get("a", kind="sub") is not None
    with pytest.raises(PolicyError, match="unknown field"):
        AutoRevoke.from_config(store, {"threshhold": 3})
    with pytest.raises(PolicyError):
        AutoRevoke(store, threshold=0)
