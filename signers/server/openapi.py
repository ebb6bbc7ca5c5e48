"""The OpenAPI 3.1 document of the service, built from the same `Body` specs the handlers validate with."""

from __future__ import annotations

from typing import Any

from .. import __version__
from . import api_agents as agents
from . import api_tokens as tokens
from .http import Body

__all__ = ["ENDPOINTS", "openapi_document"]

# (method, path, scope or None for public, body, summary)
ENDPOINTS: tuple[tuple[str, str, str | None, Body | None, str], ...] = (
    ("get", "/.well-known/jwks.json", None, None, "the issuer's current and recently rotated public keys"),
    ("get", "/revocations.jwt", None, None, "the signed revocation list (revocation-list+jwt)"),
    ("get", "/statuslists/1", None, None, "the Token Status List (application/statuslist+jwt)"),
    ("get", "/ca/crl", None, None, "the CA's CRL (DER, application/pkix-crl)"),
    ("get", "/ca/certificates", None, None, "the CA certificate chain (PEM)"),
    ("get", "/healthz", None, None, "liveness"),
    ("get", "/readyz", None, None, "readiness: the issuer key answers a signature"),
    ("get", "/metrics", None, None, "Prometheus metrics"),
    ("post", "/v1/passports", "passports:issue", tokens.PASSPORT, "issue a passport for a registered agent"),
    ("post", "/v1/actions", "actions:issue", tokens.ACTION, "issue an action token"),
    ("post", "/v1/verify", "verify", tokens.VERIFY, "verify a passport, action token or JWT"),
    ("post", "/v1/revocations", "revoke", tokens.REVOKE, "revoke a jti, agent, group, certificate or caller"),
    ("post", "/v1/gate", "gate", tokens.GATE, "ALLOW / DENY for one tool call, every check reported"),
    ("get", "/v1/gate/challenge", "gate", None, "a fresh proof-of-possession challenge"),
    ("get", "/v1/agents", "agents:read", None, "registered agents"),
    ("post", "/v1/agents", "agents:register", agents.REGISTER, "register an agent (INTAKE)"),
    ("get", "/v1/agents/{agent}/history", "agents:read", None, "an agent's verified history"),
    ("post", "/v1/agents/{agent}/advance", "agents:advance", agents.ADVANCE, "move an agent to the next stage"),
    ("post", "/v1/agents/{agent}/suspend", "agents:advance", agents.SUSPEND, "suspend an agent"),
    ("post", "/v1/certificates", "certificates:issue", agents.CERTIFICATE, "issue a certificate from a CSR"),
    ("post", "/v1/receipts", "receipts", agents.RECEIPT, "submit an execution receipt (verified, audited)"),
    ("post", "/v1/receipts/verify", "receipts", agents.RECEIPT_CHECK, "VALID or TAMPERED for an output"),
    ("get", "/v1/dashboard", "admin", None, "the dashboard's summary"),
)

_PROBLEM = {"description": "RFC 9457 problem details",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def openapi_document(issuer: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {
        "Problem": {"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "field": {"type": "string"}}, "required": ["title", "status"]},
    }
    for method, path, scope, body, summary in ENDPOINTS:
        operation: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK"}}}
        if "{agent}" in path:
            operation["parameters"] = [{"name": "agent", "in": "path", "required": True,
                                        "schema": {"type": "string", "maxLength": 200}}]
        if scope is not None:
            operation["security"] = [{"bearer": [scope]}]
            operation["x-keyplane-scope"] = scope
            for status in ("401", "403", "429", "503"):
                operation["responses"][status] = _PROBLEM
        if body is not None:
            schemas[body.name] = body.schema()
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body.name}"}}}}
            operation["responses"]["201" if method == "post" else "200"] = {"description": "done"}
            for status in ("400", "413", "415", "422"):
                operation["responses"][status] = _PROBLEM
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "keyplane issuer service", "version": __version__,
                 "description": f"Passports, action tokens, revocation, the gate and a CA for {issuer}."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
