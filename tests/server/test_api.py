"""Every endpoint of `keyplane serve` through a real uvicorn process on 127.0.0.1, with httpx.

Happy paths and each refusal the issue lists: no token, wrong scope, malformed body,
unknown field, wrong type, oversized body, wrong media type, unknown kid, a revoked
caller, a token meant for another service, a malformed revocation id, a CSR with a bad
signature. Each refusal is an RFC 9457 problem naming the field and changes nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.routing import Route

from signers.agents.receipts import sign_execution
from signers.audit import SQLiteAuditLog
from signers.jose import JWKS, sign_jwt
from signers.passport import PASSPORT_TYP, verify_passport
from signers.server.app import _routes
from signers.server.openapi import ENDPOINTS
from signers.x509 import create_csr, to_pem

from .conftest import CODE, Deployment, walk_to
from .harness import TOKENS

PROBLEM = "application/problem+json"


def _problem(answer: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["title"]
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.fixture(scope="module")
def active(deployment: Deployment) -> str:
    with deployment.client("operator") as client:
        walk_to(client, "api-agent")
    return "api-agent"


def _passport(deployment: Deployment, agent: str, agent_signer: Any, **extra: Any) -> str:
    with deployment.client("issuer") as client:
        answer = client.post("/v1/passports", json={"agent": agent, "agent_key": agent_signer.public_key.to_jwk(),
                                                    "scopes": ["bank:read"], **extra})
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


# -- public endpoints ------------------------------------------------------------------------------


def test_jwks_lists_current_and_rotated_ml_dsa_keys_with_caching(deployment: Deployment) -> None:
    with deployment.client() as client:
        first = client.get("/.well-known/jwks.json")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("application/jwk-set+json")
        assert first.headers["cache-control"] == "public, max-age=300"
        keys = first.json()["keys"]
        assert sorted(k["kty"] for k in keys) == ["AKP", "OKP"]
        assert {k["alg"] for k in keys} == {"EdDSA", "ML-DSA-44"}
        assert len(JWKS.from_dict(first.json())) == 2
        again = client.get("/.well-known/jwks.json", headers={"if-none-match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        other = client.get("/.well-known/jwks.json", headers={"if-none-match": '"something-else"'})
        assert other.status_code == 200


def test_health_readiness_metrics_and_openapi(deployment: Deployment) -> None:
    with deployment.client() as client:
        assert client.get("/healthz").json() == {"ok": True}
        assert client.get("/readyz").json() == {"ready": True}
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE keyplane_http_requests_total counter" in metrics.text
        document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    for path in ("/v1/passports", "/v1/gate", "/v1/revocations", "/v1/agents/{agent}/advance", "/.well-known/jwks.json"):
        assert path in document["paths"]
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)  # every body schema is a valid JSON Schema
        if name != "Problem":
            assert schema["additionalProperties"] is False
    passport_schema = document["components"]["schemas"]["IssuePassport"]
    assert set(passport_schema["required"]) == {"agent", "agent_key"}
    jsonschema.validate({"agent": "a", "agent_key": {}}, passport_schema)


def test_every_route_is_in_the_openapi_document() -> None:
    served = {(method.lower(), route.path) for route in _routes() if isinstance(route, Route)
              for method in (route.methods or ()) if method not in ("HEAD",)}
    documented = {(method, path) for method, path, *_ in ENDPOINTS}
    assert served - {("get", "/"), ("get", "/openapi.json")} == documented


def test_ca_certificates_and_crl_are_published(deployment: Deployment) -> None:
    with deployment.client() as client:
        chain = client.get("/ca/certificates")
        crl = client.get("/ca/crl")
    assert x509.load_pem_x509_certificates(chain.content)[0] == deployment.ca_certificate
    assert crl.headers["content-type"] == "application/pkix-crl"
    parsed = x509.load_der_x509_crl(crl.content)
    assert parsed.is_signature_valid(deployment.ca_certificate.public_key())


# -- issuing and verifying -------------------------------------------------------------------------


def test_passport_issued_over_http_verifies_offline_against_the_jwks(
        deployment: Deployment, active: str, agent_signer: Any) -> None:
    token = _passport(deployment, active, agent_signer)
    with deployment.client() as client:
        jwks = client.get("/.well-known/jwks.json").json()
    passport = verify_passport(token, jwks, issuer=deployment.url)
    assert passport.sub == active and passport.stage == "ACTIVE"
    assert passport.claims["trust"]["scorer"]  # a computed score, not a typed one
    with deployment.client("verifier") as client:
        answer = client.post("/v1/verify", json={"kind": "passport", "token": token, "required_stage": "ACTIVE"})
    assert answer.json()["allow"] is True and answer.json()["agent"] == active


def test_passport_for_an_unregistered_agent_is_404_naming_the_field(deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("issuer") as client:
        answer = client.post("/v1/passports", json={"agent": "nobody", "agent_key": agent_signer.public_key.to_jwk()})
    _problem(answer, 404, "agent")


def test_action_token_issue_and_verify_with_params(deployment: Deployment, active: str) -> None:
    params = {"to": "acct-9", "amount": 100}
    with deployment.client("issuer") as client:
        token = client.post("/v1/actions", json={"sub": active, "action": "bank.transfer", "params": params,
                                                 "claims": {"authorized_by": "alice"}}).json()["token"]
    with deployment.client("verifier") as client:
        good = client.post("/v1/verify", json={"kind": "action", "token": token, "action": "bank.transfer",
                                               "params": params}).json()
        bad = client.post("/v1/verify", json={"kind": "action", "token": token, "action": "bank.transfer",
                                              "params": {**params, "amount": 101}}).json()
    assert good["allow"] is True and good["claims"]["authorized_by"] == "alice"
    assert bad["allow"] is False and "params" in bad["reason"]


def test_unknown_kid_is_refused(deployment: Deployment, agent_signer: Any) -> None:
    forged = sign_jwt(agent_signer, {"sub": "x", "exp": 2**31}, typ="JWT")  # signed by a key not in the JWKS
    with deployment.client("verifier") as client:
        answer = client.post("/v1/verify", json={"kind": "jwt", "token": forged, "typ": "JWT"}).json()
    assert answer["allow"] is False and "not in the trusted key set" in answer["reason"]


# -- refusals --------------------------------------------------------------------------------------


def test_no_token_wrong_token_and_wrong_scope(deployment: Deployment, active: str, agent_signer: Any) -> None:
    body = {"agent": active, "agent_key": agent_signer.public_key.to_jwk()}
    with deployment.client() as client:
        missing = client.post("/v1/passports", json=body)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        _problem(missing, 401)
        passport = _passport(deployment, active, agent_signer)  # a token for another service is not a caller token
        _problem(client.post("/v1/passports", json=body, headers={"authorization": f"Bearer {passport}"}), 401)
        _problem(client.post("/v1/passports", json=body, headers={"authorization": "Basic abc"}), 401)
    with deployment.client("verifier") as client:
        problem = _problem(client.post("/v1/passports", json=body), 403)
    assert "passports:issue" in problem["detail"]


@pytest.mark.parametrize(("content", "field", "status"), [
    (b"{not json", "", 400),
    (b"[1, 2]", "", 400),
    (json.dumps({"agent": "a", "agent_key": {}, "colour": "red"}).encode(), "colour", 400),
    (json.dumps({"agent_key": {}}).encode(), "agent", 400),
    (json.dumps({"agent": 7, "agent_key": {}}).encode(), "agent", 400),
    (json.dumps({"agent": "a", "agent_key": {}, "ttl": "long"}).encode(), "ttl", 400),
    (json.dumps({"agent": "a", "agent_key": {}, "ttl": 10**9}).encode(), "ttl", 400),
    (json.dumps({"agent": "a", "agent_key": {}, "scopes": [1]}).encode(), "scopes", 400),
    (json.dumps({"agent": "api-agent", "agent_key": {"kty": "OKP", "crv": "Ed25519", "x": "!!"}}).encode(),
     "agent_key", 400),
    (b"{" + b'"agent": "' + b"a" * 9000 + b'"}', None, 413),
])
def test_malformed_bodies_are_problems_naming_the_field(
        deployment: Deployment, active: str, content: bytes, field: str | None, status: int) -> None:
    with deployment.client("issuer") as client:
        answer = client.post("/v1/passports", content=content, headers={"content-type": "application/json"})
    _problem(answer, status, field)


def test_wrong_media_type_is_415(deployment: Deployment) -> None:
    with deployment.client("issuer") as client:
        _problem(client.post("/v1/passports", content=b"agent=a", headers={"content-type": "text/plain"}), 415)


def test_revoked_caller_is_refused(deployment: Deployment) -> None:
    with deployment.client("retired") as client:
        assert client.post("/v1/verify", json={"kind": "jwt", "token": "a.b.c"}).status_code == 200
    with deployment.client("admin") as client:
        assert client.post("/v1/revocations", json={"kind": "caller", "id": "retired"}).status_code == 201
    with deployment.client("retired") as client:
        problem = _problem(client.post("/v1/verify", json={"kind": "jwt", "token": "a.b.c"}), 403)
    assert "revoked" in problem["detail"]


def test_revoke_refuses_malformed_ids_and_writes_nothing(deployment: Deployment) -> None:
    with deployment.client("revoker") as client:
        _problem(client.post("/v1/revocations", json={"kind": "x509", "id": "not-hex"}), 400, "id")
        _problem(client.post("/v1/revocations", json={"kind": "jti", "id": "x" * 2000}), 400, "id")
        _problem(client.post("/v1/revocations", json={"kind": "planet", "id": "x"}), 400, "kind")
    with deployment.client("admin") as client:
        listed = client.get("/v1/dashboard").json()["revocations"]
    assert all(r["id"] not in ("not-hex", "x" * 2000) for r in listed)


def test_unknown_route_and_method_are_problems(deployment: Deployment) -> None:
    with deployment.client() as client:
        _problem(client.get("/v1/nothing"), 404)
        _problem(client.get("/v1/passports"), 405)


# -- revocation, certificates, receipts -------------------------------------------------------------


def test_revoked_jti_appears_in_the_signed_list_and_verify_refuses(
        deployment: Deployment, active: str, agent_signer: Any) -> None:
    token = _passport(deployment, active, agent_signer)
    jti = verify_passport(token, deployment.client().get("/.well-known/jwks.json").json()).jti
    with deployment.client("revoker") as client:
        assert client.post("/v1/revocations", json={"kind": "jti", "id": jti, "reason": "leaked"}).status_code == 201
    with deployment.client("verifier") as client:
        answer = client.post("/v1/verify", json={"kind": "passport", "token": token}).json()
    assert answer["allow"] is False and "TokenRevoked" in answer["checks_failed"]
    with deployment.client() as client:
        listed = client.get("/revocations.jwt")
    assert listed.headers["content-type"] == "application/jwt"
    payload = json.loads(base64.urlsafe_b64decode(listed.text.split(".")[1] + "=="))
    assert {"id": jti, "kind": "jti"}.items() <= next(e for e in payload["revoked"] if e["id"] == jti).items()


def test_certificate_from_csr_then_revoked_serial_is_in_the_crl(deployment: Deployment, agent_signer: Any) -> None:
    csr = create_csr(agent_signer, "CN=agent-cert", uris=["spiffe://test/agent"])
    with deployment.client("operator") as client:
        answer = client.post("/v1/certificates", json={"csr": to_pem(csr).decode()})
    assert answer.status_code == 201, answer.text
    certificate = x509.load_pem_x509_certificate(answer.json()["certificate"].encode())
    assert certificate.issuer == deployment.ca_certificate.subject
    with deployment.client("revoker") as client:
        assert client.post("/v1/revocations", json={"kind": "x509", "id": answer.json()["serial"],
                                                    "reason": "keyCompromise"}).status_code == 201
    with deployment.client() as client:
        crl = x509.load_der_x509_crl(client.get("/ca/crl").content)
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None


def test_csr_with_a_bad_signature_is_refused(deployment: Deployment, agent_signer: Any) -> None:
    der = bytearray(create_csr(agent_signer, "CN=tampered").public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)) + b"-----END CERTIFICATE REQUEST-----\n"
    with deployment.client("operator") as client:
        _problem(client.post("/v1/certificates", json={"csr": pem.decode()}), 400, "csr")
        _problem(client.post("/v1/certificates", json={"csr": "not a csr"}), 400, "csr")


def test_receipts_submit_and_verify_valid_then_tampered(
        deployment: Deployment, active: str, agent_signer: Any) -> None:
    passport = _passport(deployment, active, agent_signer)
    receipt = sign_execution(agent_signer, {"q": "balance"}, {"balance": 10}, agent=active)
    with deployment.client("operator") as client:
        submitted = client.post("/v1/receipts", json={"receipt": receipt.token, "passport": passport})
        valid = client.post("/v1/receipts/verify", json={"receipt": receipt.token, "passport": passport,
                                                         "output": {"value": {"balance": 10}}})
        tampered = client.post("/v1/receipts/verify", json={"receipt": receipt.token, "passport": passport,
                                                            "output": {"value": {"balance": 1000}}})
    assert submitted.status_code == 201 and submitted.json()["hash"] == receipt.hash
    assert valid.json()["status"] == "VALID"
    assert tampered.json() | {} and tampered.json()["status"] == "TAMPERED" and tampered.json()["differed"] == ["output"]


def test_lifecycle_refusals_change_nothing(deployment: Deployment) -> None:
    with deployment.client("operator") as client:
        assert client.post("/v1/agents", json={"agent": "skipper", "code_hash": CODE}).status_code == 201
        _problem(client.post("/v1/agents/skipper/advance", json={"to": "ACTIVE", "reason": "skip"}), 422, "to")
        _problem(client.post("/v1/agents", json={"agent": "skipper", "code_hash": CODE}), 409, "agent")
        _problem(client.post("/v1/agents", json={"agent": "../etc", "code_hash": CODE}), 400, "code_hash")
        history = client.get("/v1/agents/skipper/history").json()
        suspended = client.post("/v1/agents/skipper/suspend", json={"reason": "investigation"})
    assert [t["to"] for t in history["history"]] == ["INTAKE"]
    assert suspended.status_code == 201 and suspended.json()["stage"] == "SUSPENDED"


def test_every_write_is_in_the_audit_chain_with_the_caller(deployment: Deployment, active: str) -> None:
    with deployment.client("admin") as client:
        audit = client.get("/v1/dashboard").json()["audit"]
    assert audit["ok"] is True, audit
    log = SQLiteAuditLog(deployment.service.directory / "state.db.server.audit.db", read_only=True)
    try:
        contexts = [record.context for record in log.records()]
    finally:
        log.close()
    callers = {(c.get("caller"), c.get("op")) for c in contexts}
    assert ("operator", "stage-transition") in callers
    assert ("issuer", "issue-passport") in callers
    assert ("revoker", "revoke") in callers
    assert all(TOKENS["admin"] not in json.dumps(c) for c in contexts)


def test_logs_hold_no_secret_and_no_token_signature(deployment: Deployment, active: str, agent_signer: Any) -> None:
    token = _passport(deployment, active, agent_signer)
    with deployment.client("verifier") as client:
        client.post("/v1/verify", json={"kind": "passport", "token": token + "x"})
    log = deployment.service.log()
    assert '"logger": "keyplane.server.access"' in log
    for secret in TOKENS.values():
        assert secret not in log
    assert token.split(".")[2] not in log and token not in log
    assert PASSPORT_TYP  # the passport typ is what the log may name, never the token


def _audit_records(deployment: Deployment) -> int:
    log = SQLiteAuditLog(deployment.service.directory / "state.db.server.audit.db", read_only=True)
    try:
        return sum(1 for _ in log.records())
    finally:
        log.close()


def test_refused_requests_write_nothing(deployment: Deployment, active: str, agent_signer: Any) -> None:
    before = _audit_records(deployment)
    jwk = agent_signer.public_key.to_jwk()
    with deployment.client("issuer") as client:
        client.post("/v1/passports", json={"agent": active, "agent_key": jwk, "colour": "red"})
        client.post("/v1/passports", content=b"{" + b" " * 9000 + b"}", headers={"content-type": "application/json"})
        client.post("/v1/revocations", json={"kind": "jti", "id": "x"})  # wrong scope
    with deployment.client("operator") as client:
        client.post(f"/v1/agents/{active}/advance", json={"to": "INTAKE", "reason": "backwards"})
        client.post("/v1/certificates", json={"csr": "not a csr"})
        client.post("/v1/agents", json={"agent": "bad id!", "code_hash": CODE})
    assert _audit_records(deployment) == before


def test_group_revocation_refuses_every_member(deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("operator") as client:
        walk_to(client, "grouped-agent")
    token = _passport(deployment, "grouped-agent", agent_signer, groups=["team-red"])
    with deployment.client("revoker") as client:
        assert client.post("/v1/revocations", json={"kind": "grp", "id": "team-red", "reason": "breach"}).status_code == 201
    with deployment.client("verifier") as client:
        answer = client.post("/v1/verify", json={"kind": "passport", "token": token}).json()
    assert answer["allow"] is False and "team-red" in answer["reason"]
