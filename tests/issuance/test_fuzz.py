"""Hypothesis fuzzing of the token parser and verifiers: garbage in, TokenError out, never a crash.

Mutated tokens must also never verify: the canonical-base64url rule leaves exactly one
spelling of a valid token, so any change is a refusal.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from signers import TokenError
from signers.jose import JWKS, parse_jws, sign_jws, sign_jwt, verify_jwt
from signers.keys import b64url_encode
from signers.passport import verify_action, verify_passport
from signers.revocation import MemoryRevocationStore, RevocationList

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def all_verifiers(token: Any, jwks: JWKS) -> None:
    """Run the token through every entry point; each may only raise TokenError."""
    revocations = MemoryRevocationStore()
    for check in (
        lambda: parse_jws(token),
        lambda: verify_jwt(token, jwks, audience="svc", revocations=revocations),
        lambda: verify_passport(token, jwks, revocations=revocations),
        lambda: verify_action(token, jwks, "pay", {"to": "bob"}),
        lambda: RevocationList.load(token, jwks, issuer="i"),
    ):
        with contextlib.suppress(TokenError):
            check()


@pytest.fixture(scope="module")
def fuzz_keys(request: pytest.FixtureRequest) -> tuple[Any, JWKS]:
    keys = request.getfixturevalue("keys")
    return keys["p256"], JWKS.of(keys["p256"], keys["ed25519"], keys["mldsa44"])


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(fuzz_keys: tuple[Any, JWKS], data: bytes) -> None:
    all_verifiers(data, fuzz_keys[1])


@FUZZ
@given(text=st.text(max_size=400))
def test_random_text(fuzz_keys: tuple[Any, JWKS], text: str) -> None:
    all_verifiers(text, fuzz_keys[1])


@FUZZ
@given(parts=st.lists(st.text(alphabet=B64URL + ".=+/", max_size=80), min_size=1, max_size=5))
def test_random_dotted_base64(fuzz_keys: tuple[Any, JWKS], parts: list[str]) -> None:
    all_verifiers(".".join(parts), fuzz_keys[1])


@FUZZ
@given(header=JSON_VALUES, payload=JSON_VALUES, signature=st.binary(max_size=200))
def test_well_formed_segments_with_random_json(
    fuzz_keys: tuple[Any, JWKS], header: Any, payload: Any, signature: bytes
) -> None:
    token = ".".join(b64url_encode(json.dumps(p).encode()) for p in (header, payload)) + "." + b64url_encode(signature)
    all_verifiers(token, fuzz_keys[1])


@FUZZ
@given(header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk", "x"]), JSON_VALUES, max_size=6),
       claims=st.dictionaries(st.sampled_from(["exp", "nbf", "iat", "aud", "iss", "jti", "sub", "cnf", "scopes",
                                               "trust_score", "action", "params_hash", "revoked"]), JSON_VALUES))
def test_really_signed_tokens_with_hostile_headers_and_claims(
    fuzz_keys: tuple[Any, JWKS], header: dict[str, Any], claims: dict[str, Any]
) -> None:
    signer, jwks = fuzz_keys
    safe = {k: v for k, v in header.items() if k not in ("alg", "kid", "b64", "crit")}
    token = sign_jws(signer, json.dumps(claims).encode(), header=safe)
    all_verifiers(token, jwks)


@FUZZ
@given(data=st.data())
def test_mutated_tokens_never_verify(fuzz_keys: tuple[Any, JWKS], data: st.DataObject) -> None:
    signer, jwks = fuzz_keys
    token = sign_jwt(signer, {"sub": "agent-1", "aud": "svc", "exp": 4_000_000_000, "jti": "j"})
    chars = list(token)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        i = data.draw(st.integers(0, len(chars) - 1))
        if op == "replace":
            chars[i] = data.draw(st.sampled_from(B64URL + "."))
        elif op == "insert":
            chars.insert(i, data.draw(st.sampled_from(B64URL + ".")))
        elif len(chars) > 1:
            del chars[i]
    mutated = "".join(chars)
    assume(mutated != token)
    with pytest.raises(TokenError):
        verify_jwt(mutated, jwks, audience="svc")


def _valid_passport_claims(agent: Any) -> dict[str, Any]:
    return {"iss": "https://issuer.test", "sub": "agent-1", "iat": 1_800_000_000, "nbf": 1_800_000_000,
            "exp": 4_000_000_000, "jti": "p-1", "name": "A", "cnf": {"jwk": agent.public_key.to_jwk()},
            "code_hash": "sha256:" + "ab" * 32, "stage": "prod", "trust_score": 50, "scopes": ["pay"],
            "action": "pay", "params_hash": "x", "revoked": []}


@FUZZ
@given(name=st.sampled_from(["iat", "nbf", "exp", "jti", "name", "cnf", "code_hash", "stage", "trust_score", "scopes",
                             "sub", "iss", "action", "params_hash", "revoked"]),
       value=JSON_VALUES | st.sampled_from([1e300, -1e300, 10**30, {"jwk": {"kty": "AKP", "alg": "ML-DSA-65"}},
                                            {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"}}]))
def test_signed_passports_with_one_hostile_claim(
    fuzz_keys: tuple[Any, JWKS], name: str, value: Any
) -> None:
    signer, jwks = fuzz_keys
    claims = _valid_passport_claims(signer)
    claims[name] = value
    token = sign_jwt(signer, claims, typ="passport+jwt")
    all_verifiers(token, jwks)
    for typ in ("action+jwt", "revocation-list+jwt"):
        all_verifiers(sign_jwt(signer, claims, typ=typ), jwks)
