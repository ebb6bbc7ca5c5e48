"""Key import (BYOK): every input form loads to the right key, and an imported key signs like a created one.

The ML-DSA seeds of Wycheproof's ``mldsa_*_sign_seed_test.json`` (vendored in tests/vectors/)
must give exactly the published public key: FIPS 204 KeyGen from the seed, through
`load_private_key` and through the file store's `import_key`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, mldsa, rsa

from backends.file import FileKeyStore
from signers import AlgorithmNotSupported, ConfigError, KeyExists, KeySpec
from signers.key_import import load_private_key
from signers.keys import PublicKey, b64url_encode
from signers.local_keys import generate_private_key
from signers.signer import ImportingKeyStore

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"
LEVELS = {"44": KeySpec.ML_DSA_44, "65": KeySpec.ML_DSA_65, "87": KeySpec.ML_DSA_87}
SPECS = [KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048,
         KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87]


def seed_groups() -> list[tuple[str, KeySpec, dict[str, Any]]]:
    cases = []
    for level, spec in LEVELS.items():
        path = VECTORS / f"mldsa_{level}_sign_seed_test.json.gz"
        data = json.loads(gzip.decompress(path.read_bytes()))
        for number, group in enumerate(data["testGroups"]):
            cases.append((f"{spec.value}-group{number}", spec, group))
    return cases


SEED_GROUPS = seed_groups()


def test_the_vectors_are_there() -> None:
    assert sum(1 for _, _, g in SEED_GROUPS if g.get("publicKey")) >= 60


@pytest.mark.parametrize(("case", "spec", "group"), SEED_GROUPS, ids=[c for c, _, _ in SEED_GROUPS])
def test_wycheproof_ml_dsa_seed_gives_the_published_public_key(
    case: str, spec: KeySpec, group: dict[str, Any], file_store: FileKeyStore
) -> None:
    seed = bytes.fromhex(group.get("privateSeed") or "")
    published = group.get("publicKey")
    if not published:  # the groups for malformed seeds: refused, never a key
        assert len(seed) != 32, case
        with pytest.raises(ConfigError, match="32 bytes"):
            load_private_key(seed, "seed", spec=spec)
        return
    key = load_private_key(seed, "seed", spec=spec)
    assert key.public_key().public_bytes_raw().hex() == published  # type: ignore[union-attr]
    if group.get("privateKeyPkcs8"):
        from_pkcs8 = load_private_key(bytes.fromhex(group["privateKeyPkcs8"]), "der")
        assert from_pkcs8.public_key().public_bytes_raw().hex() == published  # type: ignore[union-attr]
    signer = file_store.import_key(f"w-{case.lower()}", key)
    assert signer.public_key.to_raw().hex() == published
    signer.public_key.verify(signer.sign(b"imported"), b"imported")
    reopened = file_store.open(f"w-{case.lower()}")
    assert reopened.public_key.to_raw().hex() == published


def _pkcs8(key: Any, password: bytes | None = None, encoding: Any = serialization.Encoding.PEM) -> bytes:
    encryption: Any = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    data: bytes = key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, encryption)
    return data


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_pkcs8_pem_and_der_plain_and_encrypted(spec: KeySpec) -> None:
    key = generate_private_key(spec)
    expected = PublicKey(key.public_key())
    for data, form, password in ((_pkcs8(key), "pem", None), (_pkcs8(key), None, None),
                                 (_pkcs8(key, encoding=serialization.Encoding.DER), "der", None),
                                 (_pkcs8(key, encoding=serialization.Encoding.DER), None, None),
                                 (_pkcs8(key, b"pw"), "pem", b"pw"),
                                 (_pkcs8(key, b"pw", serialization.Encoding.DER), "der", b"pw")):
        assert PublicKey(load_private_key(data, form, password=password).public_key()) == expected
    with pytest.raises(ConfigError, match="encrypted"):
        load_private_key(_pkcs8(key, b"pw"), "pem")
    with pytest.raises(ConfigError):
        load_private_key(_pkcs8(key, b"pw"), "pem", password=b"wrong")


def private_jwk(key: Any) -> dict[str, str]:
    public = PublicKey(key.public_key()).to_jwk(kid=False)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return {**public, "d": b64url_encode(key.private_bytes_raw())}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        return {**public, "d": b64url_encode(key.private_numbers().private_value.to_bytes(size, "big"))}
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()

        def enc(v: int) -> str:
            return b64url_encode(v.to_bytes((v.bit_length() + 7) // 8, "big"))

        return {**public, "d": enc(n.d), "p": enc(n.p), "q": enc(n.q), "dp": enc(n.dmp1), "dq": enc(n.dmq1),
                "qi": enc(n.iqmp)}
    return {**public, "priv": b64url_encode(key.private_bytes_raw())}


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_private_jwk(spec: KeySpec) -> None:
    key = generate_private_key(spec)
    jwk = private_jwk(key)
    expected = PublicKey(key.public_key())
    assert PublicKey(load_private_key(json.dumps(jwk).encode(), "jwk").public_key()) == expected
    other = private_jwk(generate_private_key(spec))
    mixed = {**jwk, **{k: other[k] for k in ("x", "y", "n", "pub") if k in other}}
    with pytest.raises(ConfigError, match=r"do not belong|malformed"):
        load_private_key(json.dumps(mixed).encode(), "jwk")


def test_rsa_jwk_with_only_n_e_d() -> None:
    key = rsa.generate_private_key(65537, 2048)
    jwk = {k: v for k, v in private_jwk(key).items() if k in ("kty", "n", "e", "d")}
    assert PublicKey(load_private_key(json.dumps(jwk).encode()).public_key()) == PublicKey(key.public_key())


def test_ec_jwk_d_of_the_wrong_size_is_refused() -> None:
    jwk = private_jwk(ec.generate_private_key(ec.SECP256R1()))
    jwk["d"] = b64url_encode(b"\x00" + base64.urlsafe_b64decode(jwk["d"] + "=="))
    with pytest.raises(ConfigError, match="32 bytes"):
        load_private_key(json.dumps(jwk).encode(), "jwk")


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + value


def _rfc9881(oid: str, private: bytes) -> bytes:
    algorithm = _tlv(0x30, _tlv(0x06, bytes.fromhex(oid)))
    return _tlv(0x30, _tlv(0x02, b"\x00") + algorithm + _tlv(0x04, private))


def _expanded_like(key: Any, size: int) -> bytes:
    """An expanded key that agrees with `key` on rho and tr (what can be checked without key expansion)."""
    pk = key.public_key().public_bytes_raw()
    return pk[:32] + os.urandom(32) + hashlib.shake_256(pk).digest(64) + os.urandom(size - 128)


def test_rfc9881_seed_both_and_expanded_forms() -> None:
    oid, size = "608648016503040312", 4032  # ML-DSA-65
    seed = os.urandom(32)
    key = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
    expected = PublicKey(key.public_key())
    seed_form = _rfc9881(oid, _tlv(0x80, seed))
    assert PublicKey(load_private_key(seed_form, "der").public_key()) == expected
    both = _rfc9881(oid, _tlv(0x30, _tlv(0x04, seed) + _tlv(0x04, _expanded_like(key, size))))
    assert PublicKey(load_private_key(both, "der").public_key()) == expected
    pem = b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(both) + b"-----END PRIVATE KEY-----\n"
    assert PublicKey(load_private_key(pem).public_key()) == expected
    other = mldsa.MLDSA65PrivateKey.generate()
    disagree = _rfc9881(oid, _tlv(0x30, _tlv(0x04, seed) + _tlv(0x04, _expanded_like(other, size))))
    with pytest.raises(ConfigError, match="do not agree"):
        load_private_key(disagree, "der")
    with pytest.raises(ConfigError, match="4032 bytes"):
        load_private_key(_rfc9881(oid, _tlv(0x30, _tlv(0x04, seed) + _tlv(0x04, b"\0" * 100))), "der")
    with pytest.raises(AlgorithmNotSupported, match="expandedKey-only"):
        load_private_key(_rfc9881(oid, _tlv(0x04, _expanded_like(key, size))), "der")


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x03\x02\x01", b"{", b"[]", b'{"kty": "EC"}',
                                  b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", b"\xff" * 40])
def test_garbage_is_a_config_error(data: bytes) -> None:
    with pytest.raises((ConfigError, AlgorithmNotSupported)):
        load_private_key(data)
    with pytest.raises(ConfigError):
        load_private_key(data, "nope")


def test_a_seed_needs_its_spec_and_unsupported_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="spec"):
        load_private_key(os.urandom(32), "seed")
    with pytest.raises(ConfigError, match="ML-DSA or Ed25519"):
        load_private_key(os.urandom(32), "seed", spec="P-256")
    p521 = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(AlgorithmNotSupported):
        load_private_key(_pkcs8(p521))
    with pytest.raises(AlgorithmNotSupported):
        load_private_key(_pkcs8(dsa.generate_private_key(2048)))
    with pytest.raises(ConfigError, match="not the"):
        load_private_key(_pkcs8(ec.generate_private_key(ec.SECP256R1())), spec="P-384")


def test_file_store_import_signs_verifies_and_refuses_a_taken_name(file_store: FileKeyStore) -> None:
    assert isinstance(file_store, ImportingKeyStore)
    key = generate_private_key(KeySpec.RSA2048)
    signer = file_store.import_key("imported", key, "PS384")
    assert signer.algorithm.value == "PS384"
    assert file_store.open("imported").algorithm.value == "PS384"
    signer.public_key.verify(signer.sign(b"m"), b"m", signer.algorithm)
    before = (file_store.directory / "imported.pem").read_bytes()
    with pytest.raises(KeyExists):
        file_store.import_key("imported", generate_private_key(KeySpec.P256))
    assert (file_store.directory / "imported.pem").read_bytes() == before
    with pytest.raises(ConfigError):
        file_store.import_key("bad", b"not a key")
    with pytest.raises(AlgorithmNotSupported):
        file_store.import_key("p521", ec.generate_private_key(ec.SECP521R1()))
