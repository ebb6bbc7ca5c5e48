"""``/v1`` token endpoints: issue passports and action tokens, verify, revoke, the gate.

Each handler: authorize the scope, validate the body, one library call (in a worker thread,
inside the caller's audit context), render. Nothing here decides what a token means.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..agents.actions import sign_agent_action, verify_agent_action
from ..agents.events import unverified_ids
from ..agents.passports import issue_agent_passport_async, verify_agent_passport
from ..agents.revocation import revoke_group, revoke_subject
from ..agents.spending import ADDRESS
from ..errors import ConfigError, KeyplaneError, TokenError
from ..eth.limits import SpendLimit, spend_limits_from_claims
from ..keys import PublicKey
from ..tokens.audit_signer import audit_context
from ..tokens.issued_claims import new_jti
from ..tokens.jws_verify import verify_jwt
from ..workers import run_blocking
from .http import Body, Field, Problem, authorize, call, call_async, problem_for, read_body

__all__ = ["ACTION", "GATE", "PASSPORT", "REVOKE", "VERIFY", "challenge", "gate", "issue_action", "issue_passport", "revoke",
           "verify"]

_SERIAL = re.compile(r"^(?:0x)?[0-9a-fA-F]{1,40}$")
_TTL = Field("number", description="lifetime in seconds", minimum=1, maximum=86400)

PASSPORT = Body("IssuePassport", {
    "agent": Field("string", True, "a registered agent's id", max_length=200),
    "agent_key": Field("object", True, "the agent's public JWK (cnf)"),
    "name": Field("string", description="display name (default: the agent id)", max_length=200),
    "scopes": Field("strings", description="granted scopes"),
    "groups": Field("strings", description="groups (grp) the agent belongs to"),
    "aud": Field("string", description="audience", max_length=500),
    "wallet": Field("string", description="the agent's Ethereum address (payment tools at the gate)", max_length=42),
    "spend_limit": Field("objects", description="spending limits with the wallet: {asset, max, period}"),
    "ttl": _TTL,
})
ACTION = Body("IssueAction", {
    "sub": Field("string", True, "the agent the action is granted to", max_length=200),
    "action": Field("string", True, "action name", max_length=200),
    "params": Field("object", True, "the exact parameters (bound by params_hash)"),
    "claims": Field("object", description="readable claims (authorized_by, to, ...)"),
    "include_params": Field("boolean", description="carry the params readably"),
    "passport_jti": Field("string", description="bind to this passport", max_length=200),
    "aud": Field("string", description="audience", max_length=500),
    "ttl": _TTL,
})
VERIFY = Body("Verify", {
    "kind": Field("string", True, "what the token is", choices=("passport", "action", "jwt")),
    "token": Field("string", True, "the compact token", max_length=32768),
    "action": Field("string", description="action: the action name it must carry", max_length=200),
    "params": Field("object", description="action: the exact params"),
    "typ": Field("string", description="jwt: its typ", max_length=100),
    "audience": Field("string", description="expected aud", max_length=500),
    "required_stage": Field("string", description="passport: minimum stage", max_length=40),
})
REVOKE = Body("Revoke", {
    "kind": Field("string", True, "what to revoke", choices=("jti", "sub", "grp", "x509", "status", "caller")),
    "id": Field("string", True, "the jti, agent id, group, hex serial, status list index or caller name",
                max_length=1024),
    "reason": Field("string", description="why", max_length=500),
})
GATE = Body("GateQuery", {
    "passport": Field("string", True, "the agent's passport", max_length=32768),
    "server": Field("string", True, "the MCP server", max_length=200),
    "tool": Field("string", True, "the tool", max_length=200),
    "params": Field("object", description="the call's params"),
    "action_token": Field("string", description="action token for the call", max_length=32768),
    "proof": Field("string", description="proof of possession answering /v1/gate/challenge", max_length=32768),
})


def _limit(request: Request) -> int:
    return int(request.app.state.config.max_body)


async def _issue_passport(service: Any, body: dict[str, Any], agent_key: PublicKey, limits: list[SpendLimit]
                          ) -> tuple[str, Any, Any, Any] | None:
    """Issue on the event loop: the history read, the claims and the audit record's queueing run
    inline; the signature and the record's durable write are awaited (no worker thread per request)."""
    history = await service.registry.history_async(body["agent"])
    if history is None:
        return None
    trust = service.trust_of(history)
    # the same allocation action tokens use; a state store's round trip, so off the loop
    status = await run_blocking(service.status_claim) if service.status_lists is not None else None
    jti = new_jti()
    # the signature's audit record names the passport, so a revocation by sub or jti finds its entry
    with audit_context(sub=history.agent, jti=jti, status_idx=status["status_list"]["idx"] if status else None):
        token = await issue_agent_passport_async(
            service.issuer, history, name=body.get("name", body["agent"]), agent_key=agent_key,
            scopes=body.get("scopes", ()), groups=body.get("groups", ()), trust=trust,
            ttl=min(body.get("ttl", 3600), service.config.passport_ttl), iss=service.config.issuer,
            aud=body.get("aud"), status=status, jti=jti, wallet=body.get("wallet"),
            spend_limit=limits)
    return token, history, trust, status


def _spend_limits(body: dict[str, Any]) -> list[SpendLimit]:
    """The body's spend limits (a 400 naming the field when malformed or without a valid wallet)."""
    try:
        limits = spend_limits_from_claims(body)
    except ConfigError as e:
        raise problem_for(e, "spend_limit") from e
    wallet = body.get("wallet")
    if (wallet is not None and not ADDRESS.match(wallet)) or (limits and wallet is None):
        raise Problem(400, "Invalid Field", "'wallet' must be an Ethereum address (0x and 40 hex digits); "
                      "a spend_limit needs it", field="wallet")
    return limits


async def issue_passport(request: Request) -> JSONResponse:
    authorize(request, "passports:issue")
    body = await read_body(request, PASSPORT, _limit(request))
    service = request.app.state.service
    limits = _spend_limits(body)  # refused before anything is allocated or signed
    try:
        agent_key = PublicKey.from_jwk(body["agent_key"])
    except KeyplaneError as e:
        raise problem_for(e, "agent_key") from e
    issued = await call_async(request, "issue-passport", _issue_passport, service, body, agent_key, limits,
                              field="agent")
    if issued is None:
        raise Problem(404, "Unknown Agent", f"agent {body['agent']!r} is not registered", field="agent")
    token, history, trust, status = issued
    service.metrics.inc("keyplane_passports_issued_total")
    answer = {"token": token, "stage": history.stage, "trust_score": trust.score}
    if status is not None:
        answer["status"] = status
    return JSONResponse(answer, status_code=201)


async def issue_action(request: Request) -> JSONResponse:
    authorize(request, "actions:issue")
    body = await read_body(request, ACTION, _limit(request))
    service = request.app.state.service
    claims = dict(body.get("claims") or {})
    if service.status_lists is not None:  # a status list index, so the token can be revoked by status
        claims["status"] = await call(request, "allocate-status", service.status_claim)
    token = await call(request, "issue-action", sign_agent_action, service.issuer, body["sub"], body["action"],
                       body["params"], claims=claims, include_params=body.get("include_params", False),
                       ttl=body.get("ttl", 300), iss=service.config.issuer, aud=body.get("aud"),
                       passport_jti=body.get("passport_jti"), field="claims")
    service.metrics.inc("keyplane_actions_issued_total")
    return JSONResponse({"token": token}, status_code=201)


def _verify(service: Any, body: dict[str, Any]) -> dict[str, Any]:
    kind, token = body["kind"], body["token"]
    if kind == "passport":
        agent = verify_agent_passport(token, service.jwks, revocations=service.revocations,
                                      required_stage=body.get("required_stage"), audience=body.get("audience"),
                                      issuer=service.config.issuer, history=service.registry.history(
                                          _claimed_sub(token)) or None, events=service.events)
        return {"agent": agent.sub, "stage": agent.stage, "trust_score": agent.trust_score,
                "groups": list(agent.groups), "claims": agent.passport.claims}
    if kind == "action":
        grant = verify_agent_action(token, service.jwks, action=body.get("action"), params=body.get("params"),
                                    revocations=service.revocations, audience=body.get("audience"),
                                    issuer=service.config.issuer, events=service.events)
        return {"agent": grant.sub, "action": grant.action, "claims": grant.claims}
    verified = verify_jwt(token, service.jwks, typ=body.get("typ"), audience=body.get("audience"),
                          revocations=service.revocations)
    return {"claims": verified.claims, "kid": verified.kid}


def _claimed_sub(token: str) -> str:
    return unverified_ids(token)[0] or ""


async def verify(request: Request) -> JSONResponse:
    authorize(request, "verify")
    body = await read_body(request, VERIFY, _limit(request))
    service = request.app.state.service
    try:
        result = await call(request, "verify", _verify, service, body, field="token")
    except Problem as problem:
        if not isinstance(problem.__cause__, TokenError):
            raise
        service.metrics.inc("keyplane_verifications_total", kind=body["kind"], result="refused")
        return JSONResponse({"allow": False, "reason": problem.detail, "checks_failed": [type(problem.__cause__).__name__]})
    service.metrics.inc("keyplane_verifications_total", kind=body["kind"], result="ok")
    return JSONResponse({"allow": True, "reason": "verified", **result})


def _revoke(service: Any, kind: str, id: str, reason: str) -> dict[str, Any]:
    if kind == "sub":
        record = revoke_subject(service.revocations, id, reason=reason)
    elif kind == "grp":
        record = revoke_group(service.revocations, id, reason=reason)
    elif kind == "x509":
        if service.ca is None:
            raise Problem(404, "Not Found", "this service has no CA ([server.ca])", field="kind")
        record = service.ca.revoke(int(id.removeprefix("0x"), 16), reason)
    elif kind == "status":
        if service.status_lists is None:
            raise Problem(404, "Not Found", "this service publishes no status list ([server.status_list])", field="kind")
        service.status_lists.set_status(int(id), reason=reason)
        record = service.revocations.get(f"{service.status_lists.uri}#{int(id)}", kind="status")
    else:
        record = service.revocations.revoke(id, kind=kind, reason=reason)
    if kind in ("sub", "jti") and service.status_lists is not None:  # its passports' status list entries too
        for index in service.passport_statuses(**{kind: id}):
            service.status_lists.set_status(index, reason=reason)
    service.record("revoke", {"kind": kind, "id": id, "reason": reason})
    return {"kind": kind, "id": id, "reason": record.reason, "revoked_at": record.revoked_at.isoformat()}


async def revoke(request: Request) -> JSONResponse:
    caller = authorize(request, "revoke")
    body = await read_body(request, REVOKE, _limit(request))
    kind, ident = body["kind"], body["id"]
    if kind == "x509" and not _SERIAL.match(ident):
        raise Problem(400, "Invalid Field", "'id' must be a certificate serial in hex", field="id")
    if kind == "status" and not (ident.isdigit() and len(ident) < 10):
        raise Problem(400, "Invalid Field", "'id' must be a status list index", field="id")
    service = request.app.state.service
    result = await call(request, "revoke", _revoke, service, kind, ident, body.get("reason", "unspecified"),
                        field="id")
    request.app.state.documents.invalidate()
    if kind == "caller":
        request.app.state.callers_revoked.clear()
    service.metrics.inc("keyplane_revocations_total", kind=kind)
    service.remember({"type": "revocation", "by": caller.name, **result})
    if kind == "sub":
        service.webhooks.enqueue("agent.revoked", {"agent": ident, "reason": result["reason"], "by": caller.name})
    return JSONResponse(result, status_code=201)


async def gate(request: Request) -> JSONResponse:
    authorize(request, "gate")
    body = await read_body(request, GATE, _limit(request))
    service = request.app.state.service
    decision = await call(request, "gate", service.gate.decide, body["passport"], tool=body["tool"],
                          server=body["server"], params=body.get("params"), action_token=body.get("action_token"),
                          proof=body.get("proof"), context={"caller": request.state.caller})
    service.metrics.inc("keyplane_gate_decisions_total", result="allow" if decision.allow else "deny")
    data = decision.to_dict()
    service.remember({"type": "decision", **{k: v for k, v in data.items() if k != "details"}})
    return JSONResponse(data)


async def challenge(request: Request) -> JSONResponse:
    authorize(request, "gate")
    service = request.app.state.service
    if service.challenges.signer is None:  # held in this process: a nonce and a dict entry
        issued = service.gate.challenge()
    else:  # a signed challenge (shared state): the issuer key may be a network round trip away
        issued = await call(request, "gate-challenge", service.gate.challenge)
    return JSONResponse(issued.to_dict())
