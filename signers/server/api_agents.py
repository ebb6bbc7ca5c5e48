"""``/v1`` agent, certificate and receipt endpoints, and the dashboard's summary.

Stage transitions are signed by the service's key (listed in the registry's approvers with
its roles) through the audited signer, so each one is a record of the audit chain carrying
the caller's name; the registry writes a history only after it verifies again, and only if
no other replica extended the agent meanwhile (else 409 Conflict, nothing written).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..agents.lifecycle import AgentHistory, advance, register
from ..agents.passports import verify_agent_passport
from ..agents.receipts import verify_output, verify_receipt
from ..agents.revocation import SUBJECT, subject_revocation
from ..agents.trust import TrustInputs, compute_trust
from ..clock import epoch
from ..errors import ConfigError, Conflict
from ..x509 import load_csr
from .http import Body, Field, Problem, authorize, call, read_body

__all__ = ["ADVANCE", "CERTIFICATE", "RECEIPT", "RECEIPT_CHECK", "REGISTER", "SUSPEND", "advance_agent",
           "agent_history", "certificate", "dashboard", "list_agents", "register_agent", "submit_receipt",
           "suspend_agent", "verify_receipt_output"]

REGISTER = Body("RegisterAgent", {
    "agent": Field("string", True, "the agent's id", max_length=200),
    "code_hash": Field("string", True, "sha256:<64 hex> of the agent's code", max_length=80),
    "reason": Field("string", description="why", max_length=500),
})
ADVANCE = Body("AdvanceAgent", {
    "to": Field("string", True, "the next stage", max_length=40),
    "reason": Field("string", True, "why (kept in the signed transition)", max_length=500),
    "code_hash": Field("string", description="new code (only back to VETTING)", max_length=80),
})
SUSPEND = Body("SuspendAgent", {"reason": Field("string", True, "why", max_length=500)})
CERTIFICATE = Body("IssueCertificate", {"csr": Field("string", True, "a PEM certificate signing request",
                                                     max_length=32768)})
RECEIPT = Body("SubmitReceipt", {
    "receipt": Field("string", True, "an execution receipt (JWT)", max_length=65536),
    "passport": Field("string", True, "the passport of the agent that signed it", max_length=32768),
})
RECEIPT_CHECK = Body("VerifyReceipt", {
    "receipt": Field("string", True, "an execution receipt (JWT)", max_length=65536),
    "passport": Field("string", True, "the passport of the agent that signed it", max_length=32768),
    "output": Field("object", True, "the output as received: {\"value\": ...}"),
    "input": Field("object", description="the input as sent: {\"value\": ...}"),
})


def _limit(request: Request) -> int:
    return int(request.app.state.config.max_body)


def _summary(history: AgentHistory, service: Any) -> dict[str, Any]:
    revoked = subject_revocation(service.revocations, SUBJECT, history.agent, epoch(None))
    trust = compute_trust(TrustInputs.collect(history.stage, history.code_hash, attested_builds=service.attested))
    return {"agent": history.agent, "stage": history.stage, "code_hash": history.code_hash, "head": history.head,
            "trust_score": trust.score, "transitions": len(history.transitions), "revoked": revoked is not None,
            "revoked_reason": revoked.reason if revoked else None}


def _transition(service: Any, agent: str, to: str | None, reason: str, code_hash: str | None) -> AgentHistory:
    registry = service.registry
    current = registry.history(agent)
    if to is None:
        if current is not None:
            raise Problem(409, "Conflict", f"agent {agent!r} is already registered", field="agent")
        registry.check_id(agent)  # the id must be valid (a safe file name) before anything is signed
        assert code_hash is not None
        history = register(service.issuer, agent, code_hash, registry.approvers, reason=reason, audit=None,
                           events=service.events)
    else:
        if current is None:
            raise Problem(404, "Unknown Agent", f"agent {agent!r} is not registered", field="agent")
        history = advance(service.issuer, current, to, registry.approvers, reason=reason, code_hash=code_hash,
                          events=service.events)
    try:
        registry.save(history)
    except Conflict as e:  # another replica moved the agent first: nothing written, the caller re-reads
        raise Problem(409, "Conflict", str(e), field="agent") from e
    return history


async def _transit(request: Request, agent: str, to: str | None, reason: str, code_hash: str | None,
                   field: str) -> JSONResponse:
    service = request.app.state.service
    history = await call(request, "stage-transition", _transition, service, agent, to, reason, code_hash, field=field)
    last = history.transitions[-1]
    event = {"agent": agent, "from": last.from_stage, "to": last.to_stage, "reason": reason,
             "by": request.state.caller, "head": history.head}
    service.webhooks.enqueue("agent.stage_changed", event)
    service.remember({"type": "stage", **event})
    return JSONResponse({**_summary(history, service), "transition": last.to_dict()}, status_code=201)


async def register_agent(request: Request) -> JSONResponse:
    authorize(request, "agents:register")
    body = await read_body(request, REGISTER, _limit(request))
    return await _transit(request, body["agent"], None, body.get("reason", "registered"), body["code_hash"],
                          "code_hash")


async def advance_agent(request: Request) -> JSONResponse:
    authorize(request, "agents:advance")
    body = await read_body(request, ADVANCE, _limit(request))
    return await _transit(request, request.path_params["agent"], body["to"], body["reason"], body.get("code_hash"),
                          "to")


async def suspend_agent(request: Request) -> JSONResponse:
    authorize(request, "agents:advance")
    body = await read_body(request, SUSPEND, _limit(request))
    stage = request.app.state.service.gate.policy.lifecycle.suspended_stage
    return await _transit(request, request.path_params["agent"], stage, body["reason"], None, "reason")


async def agent_history(request: Request) -> JSONResponse:
    authorize(request, "agents:read")
    service = request.app.state.service
    agent = request.path_params["agent"]
    history = await call(request, "read-history", service.registry.history, agent, field="agent")
    if history is None:
        raise Problem(404, "Unknown Agent", f"agent {agent!r} is not registered", field="agent")
    return JSONResponse({**_summary(history, service), "history": [t.to_dict() for t in history.transitions],
                         "tokens": history.tokens})


def _agents(service: Any) -> list[dict[str, Any]]:
    return [_summary(h, service) for h in service.registry.agents()]


async def list_agents(request: Request) -> JSONResponse:
    authorize(request, "agents:read")
    service = request.app.state.service
    return JSONResponse({"agents": await call(request, "list-agents", _agents, service)})


def _certificate(service: Any, pem: str) -> dict[str, Any]:
    if service.ca is None:
        raise Problem(404, "Not Found", "this service has no CA ([server.ca])")
    issued = service.ca.sign_csr(load_csr(pem.encode()))
    return {"certificate": issued.public_bytes(Encoding.PEM).decode(), "serial": format(issued.serial_number, "x")}


async def certificate(request: Request) -> JSONResponse:
    authorize(request, "certificates:issue")
    body = await read_body(request, CERTIFICATE, _limit(request))
    service = request.app.state.service
    result = await call(request, "issue-certificate", _certificate, service, body["csr"], field="csr")
    service.record("issue-certificate", {"serial": result["serial"]})
    return JSONResponse(result, status_code=201)


def _receipt(service: Any, body: dict[str, Any], output: bool) -> dict[str, Any]:
    agent = verify_agent_passport(body["passport"], service.jwks, revocations=service.revocations,
                                  issuer=service.config.issuer, events=service.events)
    keys = agent.passport.agent_key
    if not output:
        receipt = verify_receipt(body["receipt"], keys)
        service.record("receipt", {"agent": agent.sub, "exec": receipt.execution, "receipt": receipt.hash})
        return {"status": "ACCEPTED", "agent": agent.sub, "hash": receipt.hash, "exec": receipt.execution}
    if "value" not in body["output"] or ("input" in body and "value" not in body["input"]):
        raise ConfigError("output and input are {\"value\": ...}")
    extra = {"input": body["input"]["value"]} if "input" in body else {}
    check = verify_output(body["receipt"], body["output"]["value"], keys, events=service.events, **extra)
    return {"status": check.status, "differed": list(check.differed), "agent": agent.sub, "hash": check.receipt.hash}


async def submit_receipt(request: Request) -> JSONResponse:
    authorize(request, "receipts")
    body = await read_body(request, RECEIPT, _limit(request))
    result = await call(request, "submit-receipt", _receipt, request.app.state.service, body, False, field="receipt")
    return JSONResponse(result, status_code=201)


async def verify_receipt_output(request: Request) -> JSONResponse:
    authorize(request, "receipts")
    body = await read_body(request, RECEIPT_CHECK, _limit(request))
    return JSONResponse(await call(request, "verify-receipt", _receipt, request.app.state.service, body, True,
                                   field="receipt"))


def _dashboard(service: Any) -> dict[str, Any]:
    revocations = [{"kind": r.kind, "id": r.id, "reason": r.reason, "revoked_at": r.revoked_at.isoformat()}
                   for r in service.revocations.list() if r.kind != "status"]
    keys = [{"kid": j.kid, "alg": j.alg.jose_name if j.alg else None, "current": j.kid == service.raw_signer.key_id,
             "kty": j.to_dict().get("kty")} for j in service.jwks]
    return {"issuer": service.config.issuer, "agents": _agents(service), "recent": list(reversed(service.recent))[:50],
            "revocations": revocations[-100:], "keys": keys, "audit": service.audit_status()}


async def dashboard(request: Request) -> JSONResponse:
    authorize(request, "admin")
    return JSONResponse(await call(request, "dashboard", _dashboard, request.app.state.service))
