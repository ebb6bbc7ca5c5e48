"""Token attacks from the hardening issue (items 5, 6, 7, 9, 10): each passed or crashed before the fix.

- expiry switched off by a NaN / infinite leeway or now; huge or list-valued claims crashing;
- the same action token or proof of possession accepted twice;
- a passport, action token or revocation list accepted as a plain JWT; an agent-signed
  action token for another subject;
- canonical JSON that is not RFC 8785; JWKs spelled non-canonically; an AKP JWK without alg;
  an Ed25519 JWKS that joserfc will not match to our Ed25519-labelled tokens;
- a 100k-character subject.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from signers.errors import ConfigError, TokenInvalid, TokenReplayed
from signers.jose import JWK, JWKS, canonical_json, sign_jws, sign_jwt, verify_jwt
from signers.keys import b64url_decode, b64url_encode
from signers.passport import (
    code_hash_of,
    issue_passport,
    make_challenge,
    prove_possession,
    sign_action,
    verify_action,
    verify_passport,
    verify_possession,
)
from signers.revocation import MemoryRevocationStore, issue_revocation_list
from signers.tokens.replay import MemoryReplayCache, SQLiteReplayCache

NOW = 1_900_000_000


def expired_token(signer: Any) -> str:
    return sign_jwt(signer, {"sub": "x", "exp": NOW - 3600})


def passport_for(keys: dict[str, Any], **overrides: Any) -> str:
    claims: dict[str, Any] = {"sub": "agent-1", "name": "Agent", "agent_key": keys["agent"].public_key,
                              "code_hash": code_hash_of(b"code"), "stage": "dev", "trust_score": 50}
    claims.update(overrides)
    return issue_passport(keys["ed25519"], **claims)


# -- item 5: expiry that turns off, claims that crash ----------------------------------------


@pytest.mark.parametrize("leeway", [float("nan"), float("inf"), -1.0])
def test_non_finite_or_negative_leeway_is_refused(keys: dict[str, Any], leeway: float) -> None:
    signer = keys["ed25519"]
    token = expired_token(signer)
    with pytest.raises(ConfigError, match="leeway"):
        verify_jwt(token, signer, now=NOW, leeway=leeway)
    with pytest.raises(ConfigError, match="leeway"):
        verify_passport(passport_for(keys), signer, leeway=leeway)
    with pytest.raises(ConfigError, match="leeway"):
        verify_action(sign_action(signer, "a", "pay", {}), signer, "pay", {}, leeway=leeway)


@pytest.mark.parametrize("now", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_now_is_refused(keys: dict[str, Any], now: float) -> None:
    signer = keys["ed25519"]
    with pytest.raises(ConfigError):
        verify_jwt(expired_token(signer), signer, now=now)
    with pytest.raises(ConfigError):
        sign_action(signer, "a", "pay", {}, now=now)
    with pytest.raises(ConfigError):
        issue_revocation_list(signer, MemoryRevocationStore(), issuer="i", ttl=float("nan"))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_huge_integer_times_are_token_invalid(keys: dict[str, Any], claim: str) -> None:
    signer = keys["ed25519"]
    body = json.dumps({"sub": "x", "exp": NOW + 60, claim: 0}).replace(f'"{claim}": 0', f'"{claim}": {10**400}')
    with pytest.raises(TokenInvalid, match="NumericDate"):
        verify_jwt(sign_jws(signer, body.encode()), signer, now=NOW)


@pytest.mark.parametrize("name", ["iss", "sub", "jti"])
def test_list_valued_string_claims_are_token_invalid(keys: dict[str, Any], name: str) -> None:
    signer = keys["ed25519"]
    token = sign_jwt(signer, {"exp": NOW + 60, name: ["a", "b"]})
    with pytest.raises(TokenInvalid, match=f"claim '{name}' must be a string"):
        verify_jwt(token, signer, now=NOW, issuer="a")


# -- item 6: replay --------------------------------------------------------------------------


def test_single_use_action_token_verifies_once(keys: dict[str, Any], tmp_path: Path) -> None:
    signer = keys["ed25519"]
    token = sign_action(signer, "agent-1", "pay", {"amount": 5})
    with SQLiteReplayCache(tmp_path / "replay.db") as cache:
        assert verify_action(token, signer, "pay", {"amount": 5}, single_use=True, replay_cache=cache).jti
        with pytest.raises(TokenReplayed):
            verify_action(token, signer, "pay", {"amount": 5}, single_use=True, replay_cache=cache)
    # The default cache (SQLite; $KEYPLANE_REPLAY_CACHE here) is durable across opens.
    other = sign_action(signer, "agent-1", "pay", {"amount": 6})
    verify_action(other, signer, "pay", {"amount": 6}, single_use=True)
    with pytest.raises(TokenReplayed):
        verify_action(other, signer, "pay", {"amount": 6}, single_use=True)
    # A refused verification does not burn the token.
    third = sign_action(signer, "agent-1", "pay", {"amount": 7})
    with pytest.raises(TokenInvalid):
        verify_action(third, signer, "pay", {"amount": 8}, single_use=True)
    verify_action(third, signer, "pay", {"amount": 7}, single_use=True)


def test_single_use_is_atomic_across_threads(keys: dict[str, Any], tmp_path: Path) -> None:
    signer = keys["ed25519"]
    token = sign_action(signer, "agent-1", "pay", {"amount": 5})
    cache = SQLiteReplayCache(tmp_path / "replay.db")
    barrier, outcomes = threading.Barrier(8), []

    def attempt() -> None:
        barrier.wait(timeout=30)
        try:
            verify_action(token, signer, "pay", {"amount": 5}, single_use=True, replay_cache=cache)
            outcomes.append("ok")
        except TokenReplayed:
            outcomes.append("replayed")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    cache.close()
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


def test_proof_of_possession_answers_its_challenge_once(keys: dict[str, Any]) -> None:
    passport = verify_passport(passport_for(keys), keys["ed25519"])
    challenge = make_challenge("https://verifier.test")
    proof = prove_possession(keys["agent"], challenge, sub="agent-1")
    cache = MemoryReplayCache()
    verify_possession(proof, passport, challenge, replay_cache=cache)
    with pytest.raises(TokenReplayed):
        verify_possession(proof, passport, challenge, replay_cache=cache)
    second = make_challenge("https://verifier.test")
    verify_possession(prove_possession(keys["agent"], second), passport, second)  # the default cache
    with pytest.raises(TokenReplayed):
        verify_possession(prove_possession(keys["agent"], second), passport, second)


# -- item 7: token type confusion ------------------------------------------------------------


def test_generic_verifier_refuses_keyplane_typed_tokens(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    typed = {
        "passport+jwt": passport_for(keys),
        "action+jwt": sign_action(signer, "agent-1", "pay", {}),
        "revocation-list+jwt": issue_revocation_list(signer, MemoryRevocationStore(), issuer="i"),
    }
    for typ, token in typed.items():
        with pytest.raises(TokenInvalid, match="RFC 8725"):
            verify_jwt(token, signer)
        assert verify_jwt(token, signer, typ=typ, require=()).claims
    assert verify_jwt(sign_jwt(signer, {"exp": int(time.time()) + 60}), signer).claims


def test_agent_signed_action_for_another_subject_is_refused(keys: dict[str, Any]) -> None:
    passport = verify_passport(passport_for(keys), keys["ed25519"])
    own = sign_action(keys["agent"], "agent-1", "pay", {"amount": 1})
    assert verify_action(own, passport, "pay", {"amount": 1}).sub == "agent-1"
    forged = sign_action(keys["agent"], "agent-2", "pay", {"amount": 1})  # the agent acting for someone else
    with pytest.raises(TokenInvalid, match="subject mismatch"):
        verify_action(forged, passport, "pay", {"amount": 1})


# -- item 9: canonical JSON and JWK input ----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [{"\U0001f600": 1, "\uffff": 2, "a": 3}, {"n": [0, -1, 2**53 - 1]}, {"f": [0.1, 1e21, 1e-7, -0.0, 5e-324]},
     {"s": "\u2028\u0000\"\\/é"}, {"nested": {"z": [], "a": {}}}],
)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_json_refuses_what_rfc8785_cannot_represent() -> None:
    for value in ({"n": 2**53}, {"f": float("nan")}, {1: "non-string key"}):
        with pytest.raises(ConfigError):
            canonical_json(value)


def _mutated(jwk: dict[str, str], member: str, data: bytes) -> dict[str, str]:
    return {**jwk, member: b64url_encode(data)}


def test_ec_coordinates_must_have_the_full_field_size(keys: dict[str, Any]) -> None:
    jwk = keys["p256"].public_key.to_jwk()
    x = b64url_decode(jwk["x"])
    for bad in (b"\x00" + x, x[1:] if x[0] == 0 else x[:-1]):
        with pytest.raises(ConfigError, match="exactly 32 bytes"):
            JWK.from_dict(_mutated(jwk, "x", bad))


def test_rsa_members_must_be_minimal(keys: dict[str, Any]) -> None:
    jwk = keys["rsa2048"].public_key.to_jwk()
    with pytest.raises(ConfigError, match="leading zero"):
        JWK.from_dict(_mutated(jwk, "n", b"\x00" + b64url_decode(jwk["n"])))
    with pytest.raises(ConfigError, match="minimal"):
        JWK.from_dict(_mutated(jwk, "e", b"\x00\x01\x00\x01"))
    assert JWK.from_dict(jwk).public_key == keys["rsa2048"].public_key


def test_akp_alg_is_required_and_case_sensitive(keys: dict[str, Any]) -> None:
    jwk = keys["mldsa65"].public_key.to_jwk()
    no_alg = {k: v for k, v in jwk.items() if k != "alg"}
    with pytest.raises(ConfigError, match="RFC 9964"):
        JWK.from_dict(no_alg)
    with pytest.raises(ConfigError, match="RFC 9964"):  # not silently skipped in a set
        JWKS.from_dict({"keys": [no_alg]})
    lower = {**jwk, "alg": "ml-dsa-65"}
    with pytest.raises(Exception, match="case-sensitive"):
        JWK.from_dict(lower)
    assert len(JWKS.from_dict({"keys": [lower]})) == 0
    assert JWK.from_dict(jwk).public_key == keys["mldsa65"].public_key


def test_joserfc_matches_our_ed25519_tokens_against_our_jwks(keys: dict[str, Any]) -> None:
    from joserfc import jwt as joserfc_jwt
    from joserfc.jwk import KeySet

    signer = keys["ed25519"]
    token = sign_jwt(signer, {"sub": "x", "exp": int(time.time()) + 60}, alg="Ed25519")
    exported = JWKS.of(signer, alg="Ed25519").to_dict()
    assert exported["keys"][0]["alg"] == "Ed25519"
    decoded = joserfc_jwt.decode(token, KeySet.import_key_set(exported), algorithms=["Ed25519"])
    assert decoded.claims["sub"] == "x"
    assert verify_jwt(token, exported).claims["sub"] == "x"  # and we read our own export back
    assert JWKS.of(signer).to_dict()["keys"][0]["alg"] == "EdDSA"  # the default name is unchanged
    with pytest.raises(ConfigError):
        JWKS.of(keys["p256"], alg="Ed25519")


# -- item 10: a 100k-character subject -------------------------------------------------------


def test_a_huge_subject_is_a_typed_error(keys: dict[str, Any]) -> None:
    huge = "x" * 100_000
    with pytest.raises(ConfigError, match="at most 1024"):
        passport_for(keys, sub=huge)
    with pytest.raises(ConfigError, match="at most 1024"):
        sign_action(keys["ed25519"], huge, "pay", {})
    claims = {"sub": huge, "name": "n", "cnf": {"jwk": keys["agent"].public_key.to_jwk()}, "jti": "j",
              "code_hash": code_hash_of(b"c"), "stage": "dev", "trust_score": 1, "scopes": [],
              "iat": int(time.time()), "exp": int(time.time()) + 60}
    token = sign_jwt(keys["ed25519"], claims, typ="passport+jwt")
    with pytest.raises(TokenInvalid) as caught:
        verify_passport(token, keys["ed25519"])
    assert len(str(caught.value)) < 300  # the message never echoes the subject


def test_other_numbers_that_would_switch_a_check_off(keys: dict[str, Any], tmp_path: Path) -> None:
    passport = verify_passport(passport_for(keys), keys["ed25519"])
    challenge = make_challenge("https://verifier.test")
    stale = type(challenge)(challenge.nonce, challenge.audience, float("nan"))  # a hand-made challenge
    with pytest.raises(ConfigError, match="issued_at"):
        verify_possession(prove_possession(keys["agent"], challenge), passport, stale)
    with pytest.raises(ConfigError, match="max_age"):
        verify_possession(prove_possession(keys["agent"], challenge), passport, challenge, max_age=float("nan"))
    with pytest.raises(ConfigError, match="min_trust_score"):
        verify_passport(passport_for(keys), keys["ed25519"], min_trust_score=float("nan"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        SQLiteReplayCache(tmp_path / "r.db", timeout=float("nan"))
