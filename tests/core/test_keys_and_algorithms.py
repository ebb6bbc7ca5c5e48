"""PublicKey encodings, RFC 7638 thumbprints, algorithm tables and signature-format helpers."""

from __future__ import annotations

import json

import pytest

from signers import (
    AlgorithmNotSupported,
    ConfigError,
    InvalidSignature,
    KeyFamily,
    KeySpec,
    PublicKey,
    SignatureAlgorithm,
)
from signers.local_keys import generate_private_key, sign_with_private_key
from signers.signature_format import curve_size, ecdsa_der_to_raw, ecdsa_raw_to_der


@pytest.fixture(scope="module")
def keys() -> dict[KeySpec, object]:
    return {spec: generate_private_key(spec) for spec in KeySpec if spec not in (KeySpec.RSA3072, KeySpec.RSA4096)}


def test_rfc7638_example_thumbprint() -> None:
    # RFC 7638 section 3.1's example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert PublicKey.from_jwk(jwk).key_id == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("spec", [s for s in KeySpec if s not in (KeySpec.RSA3072, KeySpec.RSA4096)], ids=str)
def test_encodings_round_trip_and_id_is_stable(spec: KeySpec, keys: dict[KeySpec, object]) -> None:
    pk = PublicKey(keys[spec].public_key())  # type: ignore[attr-defined]
    assert pk.spec is spec and pk.family is spec.family
    for other in (PublicKey.from_der(pk.to_der()), PublicKey.from_pem(pk.to_pem()), PublicKey.from_jwk(pk.to_jwk()),
                  PublicKey.from_jwk(json.dumps(pk.to_jwk()))):
        assert other == pk and other.key_id == pk.key_id
    jwk = pk.to_jwk(alg=spec.default_algorithm)
    assert jwk["kty"] == spec.family.jwk_kty and jwk["kid"] == pk.key_id
    if spec.family is KeyFamily.MLDSA:
        assert jwk["alg"] == spec.value and PublicKey.from_raw_mldsa(spec, pk.to_raw()) == pk


def test_private_jwk_members_are_refused(keys: dict[KeySpec, object]) -> None:
    jwk = PublicKey(keys[KeySpec.P256].public_key()).to_jwk()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="private"):
        PublicKey.from_jwk({**jwk, "d": "AAAA"})


@pytest.mark.parametrize("bad", ["not json", "[]", {"kty": "oct", "k": "AA"}, {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
                                 {"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}, {"kty": "OKP", "crv": "Ed25519"},
                                 {"kty": "AKP", "alg": "ML-DSA-65", "pub": "AAAA"}])
def test_bad_jwks_are_typed_errors(bad: object) -> None:
    with pytest.raises((ConfigError, AlgorithmNotSupported)):
        PublicKey.from_jwk(bad)  # type: ignore[arg-type]


def test_verify_refuses_algorithm_that_does_not_fit_the_key(keys: dict[KeySpec, object]) -> None:
    key = keys[KeySpec.P256]
    pk = PublicKey(key.public_key())  # type: ignore[attr-defined]
    sig = sign_with_private_key(key, SignatureAlgorithm.ES256, b"m")  # type: ignore[arg-type]
    pk.verify(sig, b"m")
    with pytest.raises(AlgorithmNotSupported):
        pk.verify(sig, b"m", SignatureAlgorithm.ES384)
    with pytest.raises(InvalidSignature):
        pk.verify(b"garbage", b"m")
    assert not pk.is_valid(sig, b"n")


def test_rsa_pss_and_pkcs1_are_not_interchangeable(keys: dict[KeySpec, object]) -> None:
    key = keys[KeySpec.RSA2048]
    pk = PublicKey(key.public_key())  # type: ignore[attr-defined]
    pss = sign_with_private_key(key, SignatureAlgorithm.PS256, b"m")  # type: ignore[arg-type]
    pk.verify(pss, b"m", SignatureAlgorithm.PS256)
    for other in (SignatureAlgorithm.RS256, SignatureAlgorithm.PS384):
        with pytest.raises(InvalidSignature):
            pk.verify(pss, b"m", other)


def test_algorithm_tables_are_consistent() -> None:
    for spec in KeySpec:
        assert spec.default_algorithm in spec.algorithms
        assert KeySpec.parse(spec.value) is spec and KeySpec.parse(spec.value.lower().replace("-", "_")) is spec
    for alg in SignatureAlgorithm:
        assert SignatureAlgorithm.parse(alg.value) is alg and SignatureAlgorithm.parse(alg.jose_name) is alg
        assert alg.specs and all(s.family is alg.family for s in alg.specs)
    assert SignatureAlgorithm.parse("EdDSA") is SignatureAlgorithm.ED25519
    assert SignatureAlgorithm.ML_DSA_65.x509_oid == "2.16.840.1.101.3.4.3.18"
    with pytest.raises(AlgorithmNotSupported):
        KeySpec.parse("RSA-1024")
    with pytest.raises(AlgorithmNotSupported):
        SignatureAlgorithm.parse("HS256")


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1], ids=str)
def test_ecdsa_raw_der_conversion(spec: KeySpec, keys: dict[KeySpec, object]) -> None:
    key = keys[spec]
    der = sign_with_private_key(key, spec.default_algorithm, b"m")  # type: ignore[arg-type]
    raw = ecdsa_der_to_raw(der, curve_size(spec))
    assert len(raw) == 2 * curve_size(spec)
    assert ecdsa_raw_to_der(raw) == der
    with pytest.raises(InvalidSignature):
        ecdsa_raw_to_der(raw[:-1])
    with pytest.raises(InvalidSignature):
        ecdsa_der_to_raw(b"\x30\x00junk", 32)
