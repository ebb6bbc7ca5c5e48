"""The gate over HTTP, revocation through the API, and signed webhooks.

Must show: revoking an agent through the API makes the next gate decision DENY and delivers a
signed ``agent.revoked`` webhook that the receiver verifies with the service's JWKS (fetched
with `JWKSClient`). Also: retries against a receiver that fails twice, a bounded queue that
never blocks, auto-revoke fed by the gate's rejection events.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from signers.clients import JWKSClient
from signers.jose import JWKS, verify_jwt
from signers.server.config import Webhook
from signers.server.webhooks import EVENT_TYP, WebhookDispatcher

from .conftest import Deployment, walk_to
from .harness import Receiver


def _passport(deployment: Deployment, agent: str, agent_signer: Any, scopes: list[str]) -> str:
    with deployment.client("issuer") as client:
        answer = client.post("/v1/passports", json={"agent": agent, "agent_key": agent_signer.public_key.to_jwk(),
                                                    "scopes": scopes})
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def _events(receiver: Receiver, keys: Any) -> list[dict[str, Any]]:
    out = []
    for headers, body in list(receiver.bodies):
        assert headers["content-type"] == "application/jwt"
        claims = verify_jwt(body, keys, typ=EVENT_TYP, require=("exp", "iat", "jti", "event"))
        assert claims.claims["event"] == headers["keyplane-event"]
        out.append(claims.claims)
    return out


def test_revoking_an_agent_makes_the_next_gate_decision_deny_and_sends_a_signed_webhook(
        deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "gate-agent")
    passport = _passport(deployment, "gate-agent", agent_signer, ["bank:read"])
    query = {"passport": passport, "server": "bank", "tool": "balance"}
    with deployment.client("gatekeeper") as client:
        allowed = client.post("/v1/gate", json=query).json()
    assert allowed["allow"] is True, allowed
    assert "agent-revocation" in allowed["checks_passed"] and allowed["stage"] == "ACTIVE"

    with deployment.client("revoker") as client:
        answer = client.post("/v1/revocations", json={"kind": "sub", "id": "gate-agent", "reason": "compromised"})
    assert answer.status_code == 201, answer.text
    with deployment.client("gatekeeper") as client:
        denied = client.post("/v1/gate", json=query).json()
    assert denied["allow"] is False
    assert "agent-revocation" in denied["checks_failed"] and "compromised" in denied["reason"]

    keys = JWKSClient(deployment.url + "/.well-known/jwks.json")  # the receiver trusts only the published JWKS
    assert deployment.receiver.wait_for(lambda r: any(
        e["event"] == "agent.revoked" and e["data"]["agent"] == "gate-agent" for e in _events(r, keys)))
    revoked = next(e for e in _events(deployment.receiver, keys)
                   if e["event"] == "agent.revoked" and e["data"]["agent"] == "gate-agent")
    assert revoked["iss"] == deployment.url and revoked["data"]["by"] == "revoker"
    assert deployment.receiver.wait_for(lambda r: any(
        e["event"] == "gate.denied" and e["data"]["who"] == "gate-agent" for e in _events(r, keys)))
    assert deployment.receiver.attempts > len(deployment.receiver.bodies)  # its first two answers were 500s


def test_challenges_are_for_gate_callers_only(deployment: Deployment) -> None:
    with deployment.client("gatekeeper") as client:
        challenge = client.get("/v1/gate/challenge").json()
    assert set(challenge) == {"nonce", "aud", "iat"} and challenge["aud"] == deployment.url
    with deployment.client("verifier") as client:
        assert client.get("/v1/gate/challenge").status_code == 403


def test_three_denials_auto_revoke_the_agent(deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "noisy-agent")
    passport = _passport(deployment, "noisy-agent", agent_signer, [])  # lacks bank:read: every call is denied
    query = {"passport": passport, "server": "bank", "tool": "balance"}
    with deployment.client("gatekeeper") as client:
        first = [client.post("/v1/gate", json=query).json() for _ in range(3)]
        after = client.post("/v1/gate", json=query).json()
    assert all("scopes" in d["checks_failed"] for d in first)
    assert "agent-revocation" in after["checks_failed"] and "auto-revoked" in after["reason"]
    keys = JWKSClient(deployment.url + "/.well-known/jwks.json")
    assert deployment.receiver.wait_for(lambda r: any(
        e["event"] == "agent.revoked" and e["data"]["agent"] == "noisy-agent" and e["data"]["by"] == "auto-revoke"
        for e in _events(r, keys)))


def test_stage_changes_are_webhooks_too(deployment: Deployment) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "staged-agent", "VETTING")
    keys = JWKSClient(deployment.url + "/.well-known/jwks.json")
    assert deployment.receiver.wait_for(lambda r: any(
        e["event"] == "agent.stage_changed" and e["data"]["agent"] == "staged-agent" and e["data"]["to"] == "VETTING"
        for e in _events(r, keys)))


@contextmanager
def revocation_hook(agent_signer: Any, *, fail_first: int, retries: int,
                    backoff_start: float) -> Iterator[tuple[Receiver, WebhookDispatcher]]:
    """A receiver failing its first `fail_first` requests, and a dispatcher sending it agent.revoked only."""
    receiver = Receiver(fail_first=fail_first)
    hook = Webhook("test", receiver.url, frozenset({"agent.revoked"}), timeout=5, retries=retries)
    dispatcher = WebhookDispatcher((hook,), agent_signer, "https://issuer.test", backoff_start=backoff_start)
    try:
        yield receiver, dispatcher
    finally:
        dispatcher.close(1)
        receiver.close()


def test_delivery_retries_with_backoff_until_the_receiver_answers(agent_signer: Any) -> None:
    with revocation_hook(agent_signer, fail_first=2, retries=3, backoff_start=0.05) as (receiver, dispatcher):
        dispatcher.enqueue("agent.revoked", {"agent": "a1"})
        dispatcher.enqueue("gate.denied", {"agent": "a1"})  # not subscribed: not sent
        assert receiver.wait_for(lambda r: len(r.bodies) == 1)
        assert dispatcher.join(10)
    assert receiver.attempts == 3 and dispatcher.retried == 2 and dispatcher.delivered == 1
    claims = verify_jwt(receiver.bodies[0][1], JWKS.of(agent_signer), typ=EVENT_TYP).claims
    assert claims["event"] == "agent.revoked" and claims["data"] == {"agent": "a1"}


def test_a_receiver_that_never_answers_is_given_up_on(agent_signer: Any) -> None:
    with revocation_hook(agent_signer, fail_first=100, retries=2, backoff_start=0.01) as (receiver, dispatcher):
        dispatcher.enqueue("agent.revoked", {"agent": "a1"})
        assert dispatcher.join(10)
    assert receiver.attempts == 3 and dispatcher.failed == 1 and dispatcher.delivered == 0


def test_the_queue_is_bounded_and_enqueue_never_blocks(agent_signer: Any) -> None:
    release = threading.Event()
    receiver = Receiver()
    original = receiver.server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

    def slow(handler: Any) -> None:
        release.wait(10)
        original(handler)

    receiver.server.RequestHandlerClass.do_POST = slow  # type: ignore[attr-defined]
    hook = Webhook("slow", receiver.url, frozenset({"gate.denied"}), timeout=20, retries=0)
    dispatcher = WebhookDispatcher((hook,), agent_signer, "https://issuer.test", queue_size=2)
    try:
        started = time.perf_counter()
        for n in range(20):
            dispatcher.enqueue("gate.denied", {"n": n})
        elapsed = time.perf_counter() - started
        assert dispatcher.dropped >= 17  # one in flight, two queued, the rest dropped
        assert elapsed < 5.0  # the receiver holds each request 10 s: enqueue did not wait for it
        release.set()
        assert dispatcher.join(20)
    finally:
        release.set()
        dispatcher.close(1)
        receiver.close()
    assert len(receiver.bodies) == 20 - dispatcher.dropped


def test_refused_verifications_are_token_rejected_webhooks_and_metrics(
        deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "rejected-agent", "VETTING")
    passport = _passport(deployment, "rejected-agent", agent_signer, [])
    with deployment.client("verifier") as client:
        answer = client.post("/v1/verify", json={"kind": "passport", "token": passport, "required_stage": "ACTIVE"})
    assert answer.json()["allow"] is False
    keys = JWKSClient(deployment.url + "/.well-known/jwks.json")
    assert deployment.receiver.wait_for(lambda r: any(
        e["event"] == "token.rejected" and e["data"]["who"] == "rejected-agent" and e["data"]["authenticated"]
        for e in _events(r, keys)))
    for event in _events(deployment.receiver, keys):  # events name the token by id, never carry it
        assert passport.split(".")[2] not in json.dumps(event)
    with deployment.client() as client:
        metrics = client.get("/metrics").text
    assert 'keyplane_rejections_total{reason="' in metrics and 'keyplane_gate_decisions_total{result="deny"}' in metrics
    assert 'keyplane_verifications_total{kind="passport",result="refused"}' in metrics


USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
WALLET = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"


def test_a_payment_above_the_passports_limit_is_denied_over_http(deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "payer-agent")
    body = {"agent": "payer-agent", "agent_key": agent_signer.public_key.to_jwk(), "wallet": WALLET,
            "spend_limit": [{"asset": USDC, "max": "1000", "period": "day"}]}
    with deployment.client("issuer") as client:
        for bad, field in (({"wallet": "0x12"}, "wallet"), ({"wallet": None}, "wallet"),
                           ({"spend_limit": [{"asset": USDC, "max": "ten"}]}, "spend_limit"),
                           ({"spend_limit": ["x"]}, "spend_limit")):
            refused = client.post("/v1/passports", json={k: v for k, v in {**body, **bad}.items() if v is not None})
            assert refused.status_code == 400 and refused.json()["field"] == field, refused.text
        answer = client.post("/v1/passports", json=body)
    assert answer.status_code == 201, answer.text
    passport = answer.json()["token"]
    with deployment.client("gatekeeper") as client:
        def pay(amount: int) -> dict[str, Any]:
            query = {"passport": passport, "server": "wallet", "tool": "pay",
                     "params": {"asset": USDC, "amount": str(amount), "payer": WALLET}}
            return dict(client.post("/v1/gate", json=query).json())
        first = pay(600)
        assert first["allow"] is True and "spend" in first["checks_passed"], first
        second = pay(600)  # the service's ledger counts the day's first payment
    assert second["allow"] is False and second["checks_failed"] == ["spend"]
    assert "exceeds the day limit of 1000" in second["reason"]
