"""Interop: tokens we sign verify with PyJWT and joserfc, and theirs verify with ours.

Keys come from the file back end; PyJWT and joserfc get only the public key (as a
`cryptography` object or a JWK), and sign with their own local keys for the other way.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from signers import PublicKey, TokenInvalid
from signers.jose import JWKS, sign_jwt, verify_jwt

# (our key name, JOSE alg) for every classical algorithm both libraries implement.
CLASSICAL = [
    ("ed25519", "EdDSA"),
    ("p256", "ES256"),
    ("p384", "ES384"),
    ("secp256k1", "ES256K"),
    ("rsa2048", "PS256"),
    ("rsa2048-rs256", "RS256"),
]
# joserfc warns that RFC 9864 deprecates "EdDSA"; writing it is still what PyJWT needs.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
_JOSERFC_KEYS: dict[str, Any] = {"OKP": OKPKey, "EC": ECKey, "RSA": RSAKey}


def fresh_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "https://issuer.test", "sub": "agent-1", "aud": "svc", "iat": now, "nbf": now, "exp": now + 300,
            "jti": str(uuid.uuid4())}


@pytest.mark.parametrize(("name", "alg"), CLASSICAL)
def test_pyjwt_verifies_ours(keys: dict[str, Any], name: str, alg: str) -> None:
    signer = keys[name]
    claims = fresh_claims()
    token = sign_jwt(signer, claims)
    decoded = pyjwt.decode(token, signer.public_key.key, algorithms=[alg], audience="svc", issuer="https://issuer.test")
    assert decoded == claims
    assert pyjwt.get_unverified_header(token)["kid"] == signer.key_id
    # PyJWT also resolves our key from our JWKS by kid.
    jwk_set = pyjwt.PyJWKSet.from_dict(JWKS.of(signer).to_dict())
    assert pyjwt.decode(token, jwk_set[signer.key_id].key, algorithms=[alg], audience="svc") == claims


@pytest.mark.parametrize(("name", "alg"), CLASSICAL)
def test_joserfc_verifies_ours(keys: dict[str, Any], name: str, alg: str) -> None:
    signer = keys[name]
    claims = fresh_claims()
    token = sign_jwt(signer, claims)
    jwk = JWKS.of(signer).to_dict()["keys"][0]
    key = _JOSERFC_KEYS[jwk["kty"]].import_key(jwk)
    decoded = joserfc_jwt.decode(token, key, algorithms=[alg])
    assert decoded.claims == claims
    assert decoded.header["kid"] == signer.key_id


def test_joserfc_verifies_our_rfc9864_ed25519(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = sign_jwt(signer, fresh_claims(), alg="Ed25519")
    key = OKPKey.import_key(signer.public_key.to_jwk())
    assert joserfc_jwt.decode(token, key, algorithms=["Ed25519"]).header["alg"] == "Ed25519"


def _local_key(alg: str) -> Any:
    if alg in ("EdDSA", "Ed25519"):
        return ed25519.Ed25519PrivateKey.generate()
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES256K": ec.SECP256K1()}[alg]
        return ec.generate_private_key(curve)
    return _RSA_KEY


_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "ES384", "ES256K", "PS256", "RS256"])
def test_we_verify_pyjwt(alg: str) -> None:
    private = _local_key(alg)
    public = PublicKey(private.public_key())
    claims = fresh_claims()
    with_kid = pyjwt.encode(claims, private, algorithm=alg, headers={"kid": public.key_id})
    assert verify_jwt(with_kid, JWKS.of(public), audience="svc").claims == claims
    without_kid = pyjwt.encode(claims, private, algorithm=alg)
    assert verify_jwt(without_kid, public, audience="svc").algorithm.jose_name in (alg, "EdDSA")
    # ...and a PyJWT token signed by another key is still refused.
    other = PublicKey(_local_key(alg).public_key()) if alg != "PS256" and alg != "RS256" else None
    if other is not None:
        with pytest.raises(TokenInvalid):
            verify_jwt(without_kid, other, audience="svc")


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519", "ES256", "ES384", "ES256K", "PS256", "RS256"])
def test_we_verify_joserfc(alg: str) -> None:
    private = _local_key(alg)
    public = PublicKey(private.public_key())
    kty = {"Ed": "OKP", "ES": "EC", "PS": "RSA", "RS": "RSA"}[alg[:2]]
    key = _JOSERFC_KEYS[kty].import_key(private)
    claims = fresh_claims()
    token = joserfc_jwt.encode({"alg": alg, "kid": public.key_id}, claims, key, algorithms=[alg])
    verified = verify_jwt(token, JWKS.of(public), audience="svc")
    assert verified.claims == claims
    assert verified.header["alg"] == alg


def test_pyjwt_hs256_token_is_refused_by_us(keys: dict[str, Any]) -> None:
    """PyJWT will happily make an HS256 token keyed with a public key's PEM; we refuse it."""
    public = keys["ed25519"].public_key
    token = pyjwt.encode(fresh_claims(), "a-shared-secret-that-is-long-enough-32b", algorithm="HS256",
                         headers={"kid": public.key_id})
    with pytest.raises(TokenInvalid, match="HMAC"):
        verify_jwt(token, public, audience="svc")
