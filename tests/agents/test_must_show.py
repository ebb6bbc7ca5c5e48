"""Issue 16's "Must show", one test per bullet, end to end through the public API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from signers.agents import (
    Approvers,
    AutoRevoke,
    ChallengeBook,
    Gate,
    GatePolicy,
    HistoryInvalid,
    ReceiptParentMissing,
    RejectionEvents,
    SubjectRevoked,
    TransitionRefused,
    advance,
    issue_agent_passport,
    register,
    revoke_group,
    sign_execution,
    verify_agent_passport,
    verify_dag,
    verify_history,
    verify_output,
)
from signers.agents.mcp_gate import gated_server
from signers.revocation import MemoryRevocationStore

from .conftest import CODE, NEW_CODE
from .serving import serve
from .walk import walk


def test_intake_to_active_skip_refused_code_change_revets_history_offline(keys: dict[str, Any],
                                                                          approvers: Approvers) -> None:
    history = register(keys["registrar"], "show-1", CODE, approvers)
    with pytest.raises(TransitionRefused):
        advance(keys["release"], history, "ACTIVE", approvers, reason="skip")
    for stage, who in (("VETTING", "approver"), ("TESTING", "approver"), ("DEV_APPROVED", "approver"),
                       ("PROD_APPROVED", "release"), ("ACTIVE", "release")):
        history = advance(keys[who], history, stage, approvers, reason="ok")
    assert history.stage == "ACTIVE"
    history = advance(keys["approver"], history, "VETTING", approvers, reason="new build", code_hash=NEW_CODE)
    assert history.stage == "VETTING"
    offline = Approvers.from_dict(json.loads(json.dumps(approvers.to_dict())))  # only the approvers' JWKS + roles
    assert verify_history(history.tokens, offline).stage == "VETTING"
    with pytest.raises(HistoryInvalid):
        verify_history(history.tokens[::-1], offline)


def test_real_mcp_client_allowed_then_denied_after_group_revocation(keys: dict[str, Any],
                                                                    approvers: Approvers) -> None:
    store = MemoryRevocationStore()
    gate = Gate(GatePolicy.from_dict({"servers": {"show": {"tools": {"echo": {"min_stage": "ACTIVE"}}}}}),
                keys["issuer"], revocations=store, challenges=ChallengeBook("show"))
    server = gated_server("show", gate)

    @server.tool()
    def echo(text: str) -> str:
        return text

    passport = issue_agent_passport(keys["issuer"], walk(keys, approvers, "show-2", CODE), name="show",
                                    agent_key=keys["agent"].public_key, trust_score=70, groups=["fleet-show"])

    async def session_calls(url: str) -> list[Any]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {passport}"}, timeout=20) as http, \
                streamable_http_client(f"{url}/mcp", http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                first = await session.call_tool("echo", {"text": "hi"})
                revoke_group(store, "fleet-show", reason="fleet compromised")
                second = await session.call_tool("echo", {"text": "hi"})
                return [first, second]

    with serve(server.streamable_http_app()) as url:
        allowed, denied = asyncio.run(session_calls(url))
    assert not allowed.is_error and allowed.structured_content["result"] == "hi"
    assert denied.is_error and denied.structured_content["keyplane"]["checks_failed"] == ["group-revocation"]


def test_tampered_output_and_removed_parent(keys: dict[str, Any]) -> None:
    a = sign_execution(keys["agent"], {"q": 1}, {"a": 1})
    b = sign_execution(keys["agent"], {"a": 1}, {"b": 2}, parents=[a])
    check = verify_output(a, {"a": 999}, keys["agent"])
    assert check.status == "TAMPERED" and check.differed == ("output",)
    assert verify_dag([a, b], keys["agent"]).edges == 1
    with pytest.raises(ReceiptParentMissing, match="broken edge"):
        verify_dag([b], keys["agent"])


def test_five_rejections_auto_revoke_and_the_next_passport_is_refused(keys: dict[str, Any],
                                                                       approvers: Approvers) -> None:
    store = MemoryRevocationStore()
    events = RejectionEvents()
    AutoRevoke(store, threshold=5, window=60).attach(events)
    gate = Gate(GatePolicy.from_dict({"servers": {"show": {"tools": {"pay": {"min_trust": 90}}}}}), keys["issuer"],
                revocations=store, events=events)
    history = walk(keys, approvers, "show-4", CODE)
    weak = issue_agent_passport(keys["issuer"], history, name="x", agent_key=keys["agent"].public_key,
                                trust_score=40)
    for _ in range(5):
        assert not gate.decide(weak, server="show", tool="pay").allow
    assert store.get("show-4", kind="sub") is not None
    with pytest.raises(SubjectRevoked):
        verify_agent_passport(weak, keys["issuer"], revocations=store)
    fresh = issue_agent_passport(keys["issuer"], history, name="x", agent_key=keys["agent"].public_key,
                                 trust_score=95)  # its next passport, issued after the revocation
    with pytest.raises(SubjectRevoked):
        verify_agent_passport(fresh, keys["issuer"], revocations=store)
    assert gate.decide(fresh, server="show", tool="pay").checks_failed == ("agent-revocation",)
