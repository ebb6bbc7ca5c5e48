"""Composite JWS / JWT / JWKS (draft-ietf-jose-pq-composite-sigs), passports and action tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from signers import KeySpec
from signers.composite import CompositeAlgorithm, CompositeJWK, CompositeSigner, LocalSigner, composite_jwks, generate
from signers.errors import ConfigError, TokenInvalid
from signers.jose import JWKS, parse_jws, sign_jws, sign_jwt, verify_jwt
from signers.keys import b64url_decode, b64url_encode
from signers.local_keys import generate_private_key
from signers.passport import code_hash_of, issue_passport, sign_action, verify_action, verify_passport

V = CompositeAlgorithm
JOSE_VARIANTS = [v for v in CompositeAlgorithm if v.has_jose_name]


def _composite(variant: CompositeAlgorithm) -> CompositeSigner:
    return CompositeSigner(*generate(variant), variant)


def _claims() -> dict[str, object]:
    return {"sub": "agent-7", "exp": int(time.time()) + 300}


def _resign(token: str, header_changes: dict[str, object] | None = None, signature: bytes | None = None) -> str:
    header_b64, payload_b64, signature_b64 = token.split(".")
    if header_changes:
        header = json.loads(b64url_decode(header_b64)) | header_changes
        header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    return f"{header_b64}.{payload_b64}.{b64url_encode(signature) if signature is not None else signature_b64}"


def test_jose_names_are_the_drafts() -> None:
    assert sorted(v.jose_name for v in JOSE_VARIANTS) == sorted(
        ["ML-DSA-44-ES256", "ML-DSA-65-ES256", "ML-DSA-87-ES384", "ML-DSA-44-Ed25519", "ML-DSA-65-Ed25519"]
    )


@pytest.mark.parametrize("variant", JOSE_VARIANTS, ids=str)
def test_jwt_round_trip_through_a_jwks_file(variant: CompositeAlgorithm, tmp_path: Path) -> None:
    signer = _composite(variant)
    token = sign_jwt(signer, _claims())
    header = parse_jws(token).header
    assert header["alg"] == variant.jose_name and header["kid"] == signer.key_id
    # the JWS signature is the raw composite signature over the signing input
    jws = parse_jws(token)
    signer.public_key.verify(jws.signature, jws.signing_input)
    path = tmp_path / "jwks.json"
    composite_jwks(signer).write(path)
    (entry,) = json.loads(path.read_text())["keys"]
    assert entry == {"alg": variant.jose_name, "kty": "AKP", "pub": entry["pub"], "kid": signer.key_id}
    assert verify_jwt(token, JWKS.load(path)).kid == signer.key_id
    assert verify_jwt(token, json.loads(path.read_text())).claims["sub"] == "agent-7"


def test_mixed_key_set_keeps_both_kinds() -> None:
    composite = _composite(V.MLDSA65_ED25519_SHA512)
    classical = LocalSigner(generate_private_key(KeySpec.P256))
    key_set = JWKS.from_dict(composite_jwks(composite, classical).to_dict())
    assert classical.key_id in key_set and len(key_set.extension_keys) == 1
    verify_jwt(sign_jwt(composite, _claims()), key_set)
    verify_jwt(sign_jwt(classical, _claims()), key_set)
    merged = JWKS.of(key_set, LocalSigner(generate_private_key(KeySpec.ED25519)))  # sets merge with their composites
    verify_jwt(sign_jwt(composite, _claims()), merged)
    verify_jwt(sign_jwt(composite, _claims()), [key_set])


def test_tampered_or_mismatched_tokens_are_refused() -> None:
    signer = _composite(V.MLDSA65_ECDSA_P256_SHA512)
    other = _composite(V.MLDSA65_ECDSA_P256_SHA512)
    ed = _composite(V.MLDSA65_ED25519_SHA512)
    keys = composite_jwks(signer, ed)
    token = sign_jwt(signer, _claims())
    signature = parse_jws(token).signature
    size = V.MLDSA65_ECDSA_P256_SHA512.mldsa_signature_size
    foreign = parse_jws(sign_jwt(other, _claims())).signature
    bad = {
        "ML-DSA byte flipped": _resign(token, signature=bytes([signature[0] ^ 1]) + signature[1:]),
        "traditional byte flipped": _resign(token, signature=signature[:-1] + bytes([signature[-1] ^ 1])),
        "truncated": _resign(token, signature=signature[: size + 4]),
        "ML-DSA half only": _resign(token, signature=signature[:size]),
        "traditional half from another key": _resign(token, signature=signature[:size] + foreign[size:]),
        "halves swapped": _resign(token, signature=signature[size:] + signature[:size]),
        "alg of another variant, same kid": _resign(token, {"alg": "ML-DSA-65-Ed25519"}),
        "alg of another variant, kid of that key": _resign(token, {"alg": "ML-DSA-65-Ed25519", "kid": ed.key_id}),
        "unknown kid": _resign(token, {"kid": "nope"}),
        "pure ML-DSA alg": _resign(token, {"alg": "ML-DSA-65"}),
    }
    for why, forged in bad.items():
        with pytest.raises(TokenInvalid):
            verify_jwt(forged, keys)
            pytest.fail(why)
    with pytest.raises(TokenInvalid, match="not in the trusted"):
        verify_jwt(token, composite_jwks(other))
    with pytest.raises(TokenInvalid, match="accepted algorithms"):
        verify_jwt(token, keys, algorithms=["ML-DSA-65-Ed25519"])
    verify_jwt(token, keys, algorithms=["ML-DSA-65-ES256"])


def test_jwk_with_private_member_is_refused_and_alg_cannot_be_overridden() -> None:
    signer = _composite(V.MLDSA44_ED25519_SHA512)
    with pytest.raises(ConfigError, match="private"):
        verify_jwt(sign_jwt(signer, _claims()), {"keys": [{**signer.public_key.to_jwk(), "priv": "AAAA"}]})
    with pytest.raises(ConfigError):
        sign_jws(signer, b"x", alg="ML-DSA-65-Ed25519")
    with pytest.raises(ConfigError):
        CompositeJWK.from_dict({**signer.public_key.to_jwk(), "kid": 7})


def test_passport_and_action_token_with_a_composite_issuer(tmp_path: Path) -> None:
    issuer = _composite(V.MLDSA87_ECDSA_P384_SHA512)
    agent = LocalSigner(generate_private_key(KeySpec.ED25519))
    passport = issue_passport(issuer, sub="agent-7", name="Agent Seven", agent_key=agent.public_key,
                              code_hash=code_hash_of(b"agent code"), stage="production", trust_score=90,
                              scopes=["payments.send"])
    path = tmp_path / "issuer-jwks.json"
    composite_jwks(issuer).write(path)
    verified = verify_passport(passport, JWKS.load(path), required_scopes=["payments.send"])
    assert verified.agent_key == agent.public_key and verified.issuer_kid == issuer.key_id
    action = sign_action(issuer, "agent-7", "payments.send", {"amount": 10})
    assert verify_action(action, JWKS.load(path), "payments.send", {"amount": 10}).sub == "agent-7"
    with pytest.raises(TokenInvalid):
        verify_action(action, JWKS.load(path), "payments.send", {"amount": 11})
    with pytest.raises(TokenInvalid):
        verify_passport(passport, JWKS.of(agent))  # a set without the composite key
