"""Agent passports, action tokens and proof of possession, with every refusal's typed error."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from signers import TokenExpired, TokenInvalid, TokenRevoked
from signers.errors import ConfigError
from signers.jose import JWKS, parse_jws, sign_jwt
from signers.keys import b64url_decode, b64url_encode
from signers.passport import (
    ACTION_TYP,
    PASSPORT_TYP,
    code_hash_of,
    issue_passport,
    make_challenge,
    params_hash,
    prove_possession,
    sign_action,
    verify_action,
    verify_passport,
    verify_possession,
)
from signers.revocation import MemoryRevocationStore, RevocationList, issue_revocation_list

CODE = b"def main():\n    pay()\n"
ISS = "https://issuer.test"


def passport_for(issuer: Any, agent: Any, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "sub": "agent:payments-1", "name": "Payments agent", "agent_key": agent.public_key,
        "code_hash": code_hash_of(CODE), "stage": "production", "trust_score": 82,
        "scopes": ["payments:send", "payments:read"], "ttl": 3600, "iss": ISS,
    }
    args.update(overrides)
    return issue_passport(issuer, **args)


def tamper(token: str, **changes: Any) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(b64url_decode(body))
    claims.update(changes)
    return f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}"


# -- passports ---------------------------------------------------------------------------


@pytest.mark.parametrize("issuer_name", ["mldsa65", "ed25519"])
def test_passport_verifies_offline_from_a_jwks_file_alone(
    keys: dict[str, Any], tmp_path: Path, issuer_name: str
) -> None:
    """The must-show: a separate Python process with only the JWKS file and the token accepts it."""
    issuer, agent = keys[issuer_name], keys["agent"]
    token = passport_for(issuer, agent)
    jwks_file = tmp_path / "issuer-jwks.json"
    JWKS.of(issuer).write(jwks_file)
    (tmp_path / "passport.jwt").write_text(token)
    code = (
        "import json, sys\n"
        "from signers.jose import JWKS\n"
        "from signers.passport import verify_passport\n"
        "keys = JWKS.load(sys.argv[1])\n"
        "p = verify_passport(open(sys.argv[2]).read(), keys, issuer='https://issuer.test')\n"
        "print(json.dumps({'sub': p.sub, 'agent': p.agent_key.key_id, 'alg': p.claims and 'ok'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(jwks_file), str(tmp_path / "passport.jwt")],
                         check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert json.loads(out.stdout) == {"sub": "agent:payments-1", "agent": agent.key_id, "alg": "ok"}
    assert parse_jws(token).header["alg"] == issuer.algorithm.jose_name
    assert json.loads(jwks_file.read_text())["keys"][0]["kty"] == ("AKP" if issuer_name == "mldsa65" else "OKP")


def test_passport_contents(keys: dict[str, Any]) -> None:
    issuer, agent = keys["mldsa65"], keys["agent"]
    token = passport_for(issuer, agent, aud="bank", jti="passport-1", now=time.time())
    header = parse_jws(token).header
    assert header["typ"] == PASSPORT_TYP and header["kid"] == issuer.key_id
    p = verify_passport(token, JWKS.of(issuer), audience="bank", issuer=ISS, required_scopes=["payments:send"],
                        min_trust_score=80, code_hash=code_hash_of(CODE))
    assert (p.sub, p.name, p.stage, p.trust_score, p.jti) == ("agent:payments-1", "Payments agent", "production", 82,
                                                              "passport-1")
    assert p.agent_key == agent.public_key and p.scopes == ("payments:send", "payments:read")
    assert p.claims["cnf"] == {"jwk": agent.public_key.to_jwk()}  # RFC 7800
    assert p.code_hash == code_hash_of(CODE) and p.issuer_kid == issuer.key_id and p.has_scope("payments:read")
    assert (p.expires_at - p.issued_at).total_seconds() == 3600
    for claim in ("iat", "nbf", "exp", "jti"):
        assert claim in p.claims


def test_revoked_passport(keys: dict[str, Any]) -> None:
    issuer = keys["ed25519"]
    revocations = MemoryRevocationStore()
    token = passport_for(issuer, keys["agent"], jti="p-9")
    assert verify_passport(token, issuer, revocations=revocations).jti == "p-9"
    revocations.revoke("p-9", reason="agent decommissioned")
    with pytest.raises(TokenRevoked, match="revoked"):
        verify_passport(token, issuer, revocations=revocations)
    # The same through a signed list an offline verifier downloaded.
    offline = RevocationList.load(issue_revocation_list(issuer, revocations, issuer=ISS), JWKS.of(issuer), issuer=ISS)
    with pytest.raises(TokenRevoked, match="revoked"):
        verify_passport(token, issuer, revocations=offline)


def test_expired_passport(keys: dict[str, Any]) -> None:
    token = passport_for(keys["ed25519"], keys["agent"], ttl=60, now=time.time() - 3600)
    with pytest.raises(TokenExpired, match="expired"):
        verify_passport(token, keys["ed25519"])


def test_tampered_passport(keys: dict[str, Any]) -> None:
    issuer = keys["mldsa65"]
    token = passport_for(issuer, keys["agent"])
    for change in ({"trust_score": 100}, {"scopes": ["admin"]}, {"cnf": {"jwk": keys["other-agent"].public_key.to_jwk()}}):
        with pytest.raises(TokenInvalid, match="signature does not verify"):
            verify_passport(tamper(token, **change), issuer)


def test_passport_signed_by_an_untrusted_issuer(keys: dict[str, Any]) -> None:
    token = passport_for(keys["p256"], keys["agent"])
    with pytest.raises(TokenInvalid, match="not in the trusted key set"):
        verify_passport(token, JWKS.of(keys["mldsa65"], keys["ed25519"]))


def test_alg_confusion_on_a_passport(keys: dict[str, Any]) -> None:
    """A passport whose header claims another algorithm than the issuer key's is refused."""
    issuer = keys["ed25519"]
    token = passport_for(issuer, keys["agent"])
    _, body, sig = token.split(".")
    header = {**parse_jws(token).header, "alg": "ES256"}
    with pytest.raises(TokenInvalid, match="algorithm mismatch"):
        verify_passport(f"{b64url_encode(json.dumps(header).encode())}.{body}.{sig}", issuer)
    header["alg"] = "HS256"
    with pytest.raises(TokenInvalid, match="HMAC"):
        verify_passport(f"{b64url_encode(json.dumps(header).encode())}.{body}.{sig}", issuer)


def test_other_token_types_are_not_passports(keys: dict[str, Any]) -> None:
    issuer = keys["ed25519"]
    action = sign_action(issuer, "agent:payments-1", "pay", {"to": "bob"})
    with pytest.raises(TokenInvalid, match="wrong token type"):
        verify_passport(action, issuer)
    passport = passport_for(issuer, keys["agent"])
    with pytest.raises(TokenInvalid, match="wrong token type"):
        verify_action(passport, issuer, "pay", {"to": "bob"})


def test_passport_policy_checks(keys: dict[str, Any]) -> None:
    issuer = keys["ed25519"]
    token = passport_for(issuer, keys["agent"])
    with pytest.raises(TokenInvalid, match="required scope"):
        verify_passport(token, issuer, required_scopes=["admin"])
    with pytest.raises(TokenInvalid, match="below the required 90"):
        verify_passport(token, issuer, min_trust_score=90)
    with pytest.raises(TokenInvalid, match="code_hash does not match"):
        verify_passport(token, issuer, code_hash=code_hash_of(b"other code"))
    with pytest.raises(TokenInvalid, match="issuer mismatch"):
        verify_passport(token, issuer, issuer="https://evil.test")
    with pytest.raises(TokenInvalid, match="audience mismatch"):
        verify_passport(passport_for(issuer, keys["agent"], aud="bank"), issuer, audience="shop")


@pytest.mark.parametrize(
    ("claim", "value", "message"),
    [
        ("trust_score", 101, "trust_score"),
        ("trust_score", "high", "trust_score"),
        ("trust_score", True, "trust_score"),
        ("scopes", "payments", "scopes"),
        ("code_hash", "md5:abc", "code_hash"),
        ("cnf", {"x5t": "abc"}, "cnf"),
        ("cnf", {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AA"}}, "cnf.jwk"),
        ("cnf", {"jwk": {"kty": "oct", "k": "AA"}}, "cnf.jwk"),
        ("name", "", "name"),
        ("exp", 1e300, "out of range"),
    ],
)
def test_malformed_passport_claims_are_invalid(keys: dict[str, Any], claim: str, value: Any, message: str) -> None:
    """Even correctly signed, a passport with a bad claim is refused (a buggy issuer must not pass)."""
    issuer = keys["ed25519"]
    claims = json.loads(b64url_decode(passport_for(issuer, keys["agent"]).split(".")[1]))
    claims[claim] = value
    with pytest.raises(TokenInvalid, match=message):
        verify_passport(sign_jwt(issuer, claims, typ=PASSPORT_TYP), issuer)
    del claims[claim]
    with pytest.raises(TokenInvalid, match="required claim"):
        verify_passport(sign_jwt(issuer, claims, typ=PASSPORT_TYP), issuer)


@pytest.mark.parametrize(
    "override",
    [{"trust_score": 101}, {"trust_score": -1}, {"trust_score": 5.5}, {"code_hash": "abc"}, {"sub": ""},
     {"scopes": [1]}, {"ttl": 0}, {"extra_claims": {"sub": "x"}}],
)
def test_issue_refuses_bad_input(keys: dict[str, Any], override: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        passport_for(keys["ed25519"], keys["agent"], **override)


def test_code_hash_accepts_bare_hex(keys: dict[str, Any]) -> None:
    bare = code_hash_of(CODE).removeprefix("sha256:")
    token = passport_for(keys["ed25519"], keys["agent"], code_hash=bare)
    assert verify_passport(token, keys["ed25519"], code_hash=bare).code_hash == code_hash_of(CODE)


# -- action tokens -----------------------------------------------------------------------


PARAMS = {"to": "acct-4711", "amount": "25.00", "currency": "EUR"}


@pytest.mark.parametrize("name", ["mldsa65", "ed25519", "p256", "rsa2048"])
def test_action_token_round_trip(keys: dict[str, Any], name: str) -> None:
    signer = keys[name]
    token = sign_action(signer, "agent:payments-1", "payments.send", PARAMS, iss=ISS, aud="bank", passport_jti="p-1")
    assert parse_jws(token).header["typ"] == ACTION_TYP
    reordered = {"currency": "EUR", "amount": "25.00", "to": "acct-4711"}
    grant = verify_action(token, JWKS.of(signer), "payments.send", reordered, issuer=ISS, audience="bank",
                          subject="agent:payments-1")
    assert grant.sub == "agent:payments-1" and grant.params_hash == params_hash(PARAMS)
    assert grant.claims["passport_jti"] == "p-1"
    assert 290 <= (grant.expires_at.timestamp() - time.time()) <= 301  # 300 s by default


@pytest.mark.parametrize("change", [{"to": "acct-6666"}, {"amount": "2500.00"}, {"memo": "x"}, {"currency": None}])
def test_changing_a_parameter_breaks_the_action_token(keys: dict[str, Any], change: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = sign_action(signer, "agent:payments-1", "payments.send", PARAMS)
    altered = {k: v for k, v in {**PARAMS, **change}.items() if v is not None}
    with pytest.raises(TokenInvalid, match="params mismatch"):
        verify_action(token, signer, "payments.send", altered)


def test_action_mismatch_tamper_revoke_expire(keys: dict[str, Any]) -> None:
    signer = keys["mldsa65"]
    revocations = MemoryRevocationStore()
    token = sign_action(signer, "agent:payments-1", "payments.send", PARAMS, jti="a-1")
    with pytest.raises(TokenInvalid, match="action mismatch"):
        verify_action(token, signer, "payments.refund", PARAMS)
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        verify_action(tamper(token, params_hash=params_hash({**PARAMS, "to": "x"})), signer, "payments.send",
                      {**PARAMS, "to": "x"})
    with pytest.raises(TokenInvalid, match="subject mismatch"):
        verify_action(token, signer, "payments.send", PARAMS, subject="agent:other")
    revocations.revoke("a-1", reason="user cancelled")
    with pytest.raises(TokenRevoked, match="revoked"):
        verify_action(token, signer, "payments.send", PARAMS, revocations=revocations)
    old = sign_action(signer, "agent:payments-1", "payments.send", PARAMS, now=time.time() - 600)
    with pytest.raises(TokenExpired, match="expired"):
        verify_action(old, signer, "payments.send", PARAMS)


def test_action_signed_by_the_agent_verifies_against_its_passport_key(keys: dict[str, Any]) -> None:
    """An agent may sign its own action tokens; the verifier trusts the key its passport names."""
    issuer, agent = keys["mldsa65"], keys["agent"]
    passport = verify_passport(passport_for(issuer, agent), issuer)
    token = sign_action(agent, passport.sub, "payments.send", PARAMS, passport_jti=passport.jti)
    assert verify_action(token, passport.agent_key, "payments.send", PARAMS, subject=passport.sub).sub == passport.sub
    with pytest.raises(TokenInvalid):
        verify_action(token, issuer, "payments.send", PARAMS)


def test_sign_action_refuses_bad_input(keys: dict[str, Any]) -> None:
    for args in (("", "pay", {}), ("sub", "", {}), ("sub", "pay", ["not", "a", "mapping"]),
                 ("sub", "pay", {"x": float("nan")})):
        with pytest.raises(ConfigError):
            sign_action(keys["ed25519"], *args)


# -- proof of possession -----------------------------------------------------------------


def test_proof_of_possession(keys: dict[str, Any]) -> None:
    issuer, agent = keys["mldsa65"], keys["agent"]
    passport = verify_passport(passport_for(issuer, agent), JWKS.of(issuer))
    challenge = make_challenge("https://bank.test")
    proof = prove_possession(agent, challenge, sub=passport.sub)
    verify_possession(proof, passport, challenge)


def test_proof_by_another_key_is_refused(keys: dict[str, Any]) -> None:
    """A thief holding the passport but not the agent's key cannot answer the challenge."""
    passport = verify_passport(passport_for(keys["mldsa65"], keys["agent"]), keys["mldsa65"])
    challenge = make_challenge("https://bank.test")
    stolen = prove_possession(keys["other-agent"], challenge, sub=passport.sub)
    with pytest.raises(TokenInvalid):
        verify_possession(stolen, passport, challenge)
    # Relabelling the thief's proof with the agent's kid does not help either.
    _, body, sig = stolen.split(".")
    header = {**parse_jws(stolen).header, "kid": keys["agent"].key_id}
    with pytest.raises(TokenInvalid, match="algorithm mismatch"):
        verify_possession(f"{b64url_encode(json.dumps(header).encode())}.{body}.{sig}", passport, challenge)


def test_proof_for_another_challenge_audience_or_agent_is_refused(keys: dict[str, Any]) -> None:
    agent = keys["agent"]
    passport = verify_passport(passport_for(keys["ed25519"], agent), keys["ed25519"])
    challenge = make_challenge("https://bank.test")
    replay = prove_possession(agent, make_challenge("https://bank.test"))
    with pytest.raises(TokenInvalid, match="nonce mismatch"):
        verify_possession(replay, passport, challenge)
    elsewhere = prove_possession(agent, make_challenge("https://shop.test"))
    with pytest.raises(TokenInvalid, match="audience mismatch"):
        verify_possession(elsewhere, passport, challenge)
    wrong_sub = prove_possession(agent, challenge, sub="agent:someone-else")
    with pytest.raises(TokenInvalid, match="sub mismatch"):
        verify_possession(wrong_sub, passport, challenge)


def test_expired_challenge_or_proof(keys: dict[str, Any]) -> None:
    agent = keys["agent"]
    passport = verify_passport(passport_for(keys["ed25519"], agent), keys["ed25519"])
    old = make_challenge("https://bank.test", now=time.time() - 3600)
    with pytest.raises(TokenExpired, match="challenge"):
        verify_possession(prove_possession(agent, old), passport, old)
    challenge = make_challenge("https://bank.test")
    stale_proof = prove_possession(agent, challenge, ttl=10, now=time.time() - 120)
    with pytest.raises(TokenExpired, match="expired"):
        verify_possession(stale_proof, passport, challenge)
