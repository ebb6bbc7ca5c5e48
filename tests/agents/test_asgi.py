"""The gate as ASGI middleware: a Starlette app under real uvicorn, called with httpx over 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from signers.agents.actions import sign_agent_action
from signers.agents.asgi import CHALLENGE_PATH, GateMiddleware
from signers.agents.events import RejectionEvents
from signers.agents.gate import Gate
from signers.agents.lifecycle import Approvers
from signers.agents.passports import issue_agent_passport
from signers.agents.policy import GatePolicy
from signers.agents.possession import ChallengeBook
from signers.agents.revocation import revoke_group
from signers.passport import Challenge, prove_possession
from signers.revocation import MemoryRevocationStore

from .conftest import CODE
from .serving import serve
from .walk import walk

POLICY = {
    "defaults": {"min_stage": "ACTIVE", "proof": True},
    "servers": {"bank": {"tools": {
        "balance": {"scopes": ["bank:read"]},
        "transfer": {"scopes": ["bank:write"], "action_token": True, "action": "bank.transfer"},
    }}},
}


async def balance(request: Request) -> JSONResponse:
    decision = request.scope["state"]["keyplane_decision"]
    return JSONResponse({"balance": 10, "agent": decision.agent})


async def transfer(request: Request) -> JSONResponse:
    body = await request.json()  # the middleware read the body and replayed it
    return JSONResponse({"sent": body["amount"]})


@pytest.fixture(scope="module")
def setup(keys: dict[str, Any], approvers: Approvers) -> Iterator[dict[str, Any]]:
    store = MemoryRevocationStore()
    events = RejectionEvents()
    seen: list[Any] = []
    events.subscribe(seen.append)
    gate = Gate(GatePolicy.from_dict(POLICY), keys["issuer"], revocations=store,
                challenges=ChallengeBook("bank"), events=events)
    app = Starlette(routes=[Route("/balance", balance), Route("/transfer", transfer, methods=["POST"])],
                    middleware=[Middleware(GateMiddleware, gate=gate, server="bank")])
    history = walk(keys, approvers, "agent-http", CODE)
    passport = issue_agent_passport(keys["issuer"], history, name="http agent", agent_key=keys["agent"].public_key,
                                    trust_score=80, scopes=["bank:read", "bank:write"], groups=["fleet-http"])
    with serve(app) as url:
        yield {"url": url, "passport": passport, "store": store, "seen": seen, "history": history}


def _proof(client: httpx.Client, keys: dict[str, Any]) -> str:
    data = client.get(CHALLENGE_PATH).json()
    return prove_possession(keys["agent"], Challenge(data["nonce"], data["aud"], data["iat"]))


def test_allowed_and_denied_over_http(setup: dict[str, Any], keys: dict[str, Any]) -> None:
    with httpx.Client(base_url=setup["url"], timeout=10) as client:
        auth = {"Authorization": f"Bearer {setup['passport']}"}
        ok = client.get("/balance", headers={**auth, "Keyplane-Proof": _proof(client, keys)})
        assert ok.status_code == 200 and ok.json() == {"balance": 10, "agent": "agent-http"}
        proof = _proof(client, keys)
        assert client.get("/balance", headers={**auth, "Keyplane-Proof": proof}).status_code == 200
        replay = client.get("/balance", headers={**auth, "Keyplane-Proof": proof})
        assert replay.status_code == 403 and replay.json()["checks_failed"] == ["possession"]
        missing = client.get("/balance")
        assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
        unknown = client.get("/admin", headers={**auth, "Keyplane-Proof": _proof(client, keys)})
        assert unknown.status_code == 403 and unknown.json()["checks_failed"] == ["policy"]


def test_action_token_binds_the_json_body(setup: dict[str, Any], keys: dict[str, Any]) -> None:
    params = {"to": "acct-9", "amount": 25}
    action = sign_agent_action(keys["issuer"], "agent-http", "bank.transfer", params)
    with httpx.Client(base_url=setup["url"], timeout=10) as client:
        def post(body: dict[str, Any]) -> httpx.Response:
            return client.post("/transfer", json=body, headers={
                "Authorization": f"Bearer {setup['passport']}", "Keyplane-Proof": _proof(client, keys),
                "Keyplane-Action": action})

        sent = post(params)
        assert sent.status_code == 200 and sent.json() == {"sent": 25}
        changed = post({**params, "amount": 25_000})
        assert changed.status_code == 403 and "params mismatch" in changed.json()["reason"]


def test_group_revocation_mid_session(setup: dict[str, Any], keys: dict[str, Any]) -> None:
    passport = issue_agent_passport(keys["issuer"], setup["history"], name="http agent",
                                    agent_key=keys["agent"].public_key, trust_score=80, scopes=["bank:read"],
                                    groups=["fleet-doomed"])  # its own group: the other tests keep theirs
    with httpx.Client(base_url=setup["url"], timeout=10) as client:
        auth = {"Authorization": f"Bearer {passport}"}
        assert client.get("/balance", headers={**auth, "Keyplane-Proof": _proof(client, keys)}).status_code == 200
        revoke_group(setup["store"], "fleet-doomed", reason="fleet compromised")
        denied = client.get("/balance", headers={**auth, "Keyplane-Proof": _proof(client, keys)})
        assert denied.status_code == 403 and denied.json()["checks_failed"] == ["group-revocation"]
    last = setup["seen"][-1]
    assert last.what == "gate" and last.context["remote"].startswith("127.0.0.1:")


def test_websocket_is_gated_at_the_handshake(keys: dict[str, Any], approvers: Approvers) -> None:
    """Driven through the ASGI interface itself (no WebSocket client library is installed here)."""
    import asyncio

    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "websocket.accept"})

    gate = Gate(GatePolicy.from_dict({"servers": {"bank": {"tools": {"stream": {}}}}}), keys["issuer"])
    middleware = GateMiddleware(app, gate=gate, server="bank")
    history = walk(keys, approvers, "agent-ws", CODE)
    passport = issue_agent_passport(keys["issuer"], history, name="ws", agent_key=keys["agent"].public_key,
                                    trust_score=80)

    def connect(path: str, token: str | None) -> list[Any]:
        sent: list[Any] = []
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        scope = {"type": "websocket", "path": path, "headers": headers}

        async def receive() -> Any:
            return {"type": "websocket.connect"}

        async def send(message: Any) -> None:
            sent.append(message)

        asyncio.run(middleware(scope, receive, send))
        return sent

    assert connect("/stream", passport) == [{"type": "websocket.accept"}]
    refused = connect("/stream", None)
    assert refused[0]["type"] == "websocket.close" and refused[0]["code"] == 1008
    unlisted = connect("/admin", passport)
    assert unlisted[0]["code"] == 1008 and "policy" in unlisted[0]["reason"]
    assert reached == ["/stream"]
