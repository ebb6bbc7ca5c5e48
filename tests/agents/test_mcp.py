"""The gate in a real MCP server (official SDK) called by a real MCP client over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from signers.agents.actions import sign_agent_action
from signers.agents.events import RejectionEvents
from signers.agents.gate import Gate
from signers.agents.lifecycle import Approvers
from signers.agents.mcp_gate import ACTION_META, CHALLENGE_ROUTE, gated_server, tool_call_meta
from signers.agents.passports import issue_agent_passport
from signers.agents.policy import GatePolicy
from signers.agents.possession import ChallengeBook, answer_challenge
from signers.agents.revocation import revoke_group, revoke_subject
from signers.revocation import MemoryRevocationStore

from .conftest import CODE
from .serving import serve
from .walk import walk

POLICY = {
    "defaults": {"min_stage": "ACTIVE", "min_trust": 50},
    "servers": {"tools-server": {"tools": {
        "add": {"scopes": ["math"]},
        "transfer": {"scopes": ["pay"], "action_token": True, "proof": True},
    }}},
}


@pytest.fixture
def world(keys: dict[str, Any], approvers: Approvers) -> Iterator[dict[str, Any]]:
    store = MemoryRevocationStore()
    events = RejectionEvents()
    seen: list[Any] = []
    events.subscribe(seen.append)
    gate = Gate(GatePolicy.from_dict(POLICY), keys["issuer"], revocations=store, events=events,
                challenges=ChallengeBook("tools-server"))
    server = gated_server("tools-server", gate)
    ran: list[str] = []

    @server.tool()
    def add(a: int, b: int) -> int:
        ran.append("add")
        return a + b

    @server.tool()
    def transfer(to: str, amount: int) -> str:
        ran.append("transfer")
        return f"sent {amount} to {to}"

    history = walk(keys, approvers, "agent-mcp", CODE)

    def passport(**kwargs: Any) -> str:
        return issue_agent_passport(keys["issuer"], history, name="mcp agent", agent_key=keys["agent"].public_key,
                                    trust_score=80, scopes=["math", "pay"], **kwargs)

    with serve(server.streamable_http_app()) as url:
        yield {"url": url, "store": store, "seen": seen, "ran": ran, "passport": passport}


async def _session_calls(url: str, token: str, calls: list[Any]) -> list[Any]:
    """Open one MCP session with `token` as bearer and run `calls` (callables taking the session) in order."""
    results = []
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=20) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            for call in calls:
                results.append(await call(session, http))
    return results


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_allowed_then_denied_after_group_revocation(world: dict[str, Any]) -> None:
    token = world["passport"](groups=["fleet-mcp"])

    async def add(session: ClientSession, http: Any) -> Any:
        return await session.call_tool("add", {"a": 2, "b": 3})

    async def revoke(session: ClientSession, http: Any) -> None:
        revoke_group(world["store"], "fleet-mcp", reason="fleet compromised")

    allowed, _, denied = _run(_session_calls(world["url"], token, [add, revoke, add]))
    assert not allowed.is_error and allowed.structured_content["result"] == 5
    assert denied.is_error
    assert denied.structured_content["keyplane"]["checks_failed"] == ["group-revocation"]
    assert "fleet compromised" in denied.content[0].text
    assert world["ran"] == ["add"]  # the denied call never reached the tool
    assert world["seen"][-1].what == "gate" and world["seen"][-1].context["transport"] == "mcp"


def test_revoked_agent_mid_session(world: dict[str, Any]) -> None:
    token = world["passport"]()

    async def add(session: ClientSession, http: Any) -> Any:
        return await session.call_tool("add", {"a": 1, "b": 1})

    async def revoke(session: ClientSession, http: Any) -> None:
        revoke_subject(world["store"], "agent-mcp", reason="agent retired")

    first, _, second = _run(_session_calls(world["url"], token, [add, revoke, add]))
    assert not first.is_error
    assert second.is_error and second.structured_content["keyplane"]["checks_failed"] == ["agent-revocation"]


def test_proof_and_action_token_in_meta(world: dict[str, Any], keys: dict[str, Any]) -> None:
    token = world["passport"]()
    args = {"to": "bob", "amount": 7}
    action = sign_agent_action(keys["issuer"], "agent-mcp", "transfer", args)

    async def transfer(session: ClientSession, http: Any, arguments: dict[str, Any] = args) -> Any:
        challenge = (await http.get(f"{world['url']}{CHALLENGE_ROUTE}")).json()
        proof = answer_challenge(keys["agent"], challenge)
        return await session.call_tool("transfer", arguments, meta=tool_call_meta(proof=proof, action_token=action))

    async def tampered(session: ClientSession, http: Any) -> Any:
        return await transfer(session, http, {"to": "mallory", "amount": 7})

    async def no_proof(session: ClientSession, http: Any) -> Any:
        return await session.call_tool("transfer", args, meta={ACTION_META: action})

    ok, bad, unproven = _run(_session_calls(world["url"], token, [transfer, tampered, no_proof]))
    assert not ok.is_error and "sent 7 to bob" in ok.content[0].text
    assert bad.structured_content["keyplane"]["checks_failed"] == ["action-token"]
    assert unproven.structured_content["keyplane"]["checks_failed"] == ["possession"]


def test_bad_bearer_refused_by_the_sdk_verifier(world: dict[str, Any], keys: dict[str, Any]) -> None:
    async def attempt() -> int:
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(f"{world['url']}/mcp", headers={"Authorization": "Bearer not.a.passport"},
                                       json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            return response.status_code

    assert _run(attempt()) == 401
    assert world["seen"][-1].what == "mcp-bearer"


def test_missing_extra_names_it() -> None:
    import subprocess
    import sys

    from signers.agents.mcp_gate import _sdk
    from signers.errors import ConfigError

    with pytest.raises(ConfigError, match=r"keyplane\[agents\]"):
        _sdk("mcp_not_installed_here")
    # neither the adapters nor the CLI import an SDK (or the agent layer) until used
    probe = ("import sys, signers.cli as c; c.build_parser(); print('signers.agents' in sys.modules); "
             "import signers.agents.mcp_gate, signers.agents.asgi; "
             "print(sorted(m for m in ('mcp', 'starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "[]"]
