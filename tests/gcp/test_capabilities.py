"""Cloud KMS's optional capabilities against the gRPC emulator, through the real google-cloud-kms client.

Rotation with one signature, disable / enable (version state), digest signing; a key whose
versions were destroyed is never signed with; URI numbers are typed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError, KeyDisabled, KeyExists, KeyNotFound
from signers.signer import DigestSigner, DisablingKeyStore, RotatingKeyStore, capabilities_of
from tests.fixtures.gcp import TOKEN_ENV
from tests.fixtures.stores import unique_name

gcp_kms = pytest.importorskip("backends.gcp_kms", reason="backends.gcp_kms failed to import (keyplane[gcp])")
emulator = pytest.importorskip("conformance.emulators.gcp_kms", reason="the GCP emulator needs keyplane[gcp]")
GcpKmsKeyStore = gcp_kms.GcpKmsKeyStore


def test_protocols_are_discovered(store: Any) -> None:
    caps = capabilities_of(store)
    assert {"rotate", "disable", "sign-digest"} <= caps.protocols
    assert "import" not in caps.protocols  # Cloud KMS import jobs are not implemented: not claimed
    assert caps.deletion == "scheduled"
    assert isinstance(store, RotatingKeyStore) and isinstance(store, DisablingKeyStore)


def test_sign_digest_ecdsa_is_not_hashed_again(store: Any, gcp_emulator: Any) -> None:
    signer = store.create_key(unique_name("dg"), KeySpec.SECP256K1)
    assert isinstance(signer, DigestSigner)
    digest = hashlib.sha3_256(b"an Ethereum-style Keccak-sized digest").digest()
    signature = signer.sign_digest(digest)
    key = signer.public_key.key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    before = gcp_emulator.calls.get("AsymmetricSign", 0)
    with pytest.raises(ConfigError, match="32-byte"):
        signer.sign_digest(digest + b"\x00")
    assert gcp_emulator.calls.get("AsymmetricSign", 0) == before  # refused before any request


def test_sign_digest_rsa_pkcs1(store: Any) -> None:
    signer = store.create_key(unique_name("dgr"), KeySpec.RSA2048, algorithm="RS256")
    digest = hashlib.sha256(b"m").digest()
    key = signer.public_key.key
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signer.sign_digest(digest), digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.ML_DSA_44])
def test_sign_digest_refused_without_a_digest_form(store: Any, spec: KeySpec) -> None:
    signer = store.create_key(unique_name("nd"), spec)
    with pytest.raises(AlgorithmNotSupported):
        signer.sign_digest(bytes(32))


def test_disable_and_enable(store: Any) -> None:
    name = unique_name("dis")
    signer = store.create_key(name, KeySpec.P256)
    rotated = store.rotate_key(name)
    store.disable_key(name)
    for s in (signer, rotated):
        with pytest.raises(KeyDisabled):
            s.sign(b"x")
    with pytest.raises(KeyDisabled):
        store.open(name)
    with pytest.raises(KeyDisabled):
        store.open(signer.uri)  # the pinned version
    store.enable_key(name)
    for s in (signer, rotated):
        assert s.public_key.is_valid(s.sign(b"x"), b"x", s.algorithm)
    assert store.open(name).version_name == rotated.version_name
    with pytest.raises(KeyNotFound):
        store.disable_key(unique_name("missing"))


def test_rotate_key_with_the_one_signature(store: Any, gcp_emulator: Any) -> None:
    name = unique_name("rot")
    first = store.create_key(name, KeySpec.RSA2048, algorithm="PS256")
    second = store.rotate_key(name, SignatureAlgorithm.PS256)
    assert second.version != first.version and second.public_key != first.public_key
    before = gcp_emulator.calls.get("CreateCryptoKeyVersion", 0)
    with pytest.raises(AlgorithmNotSupported):
        store.rotate_key(name, "RS256")  # a key's versions share its template's algorithm
    assert gcp_emulator.calls.get("CreateCryptoKeyVersion", 0) == before  # refused before making a version
    for s in (first, second):
        assert s.public_key.is_valid(s.sign(b"m"), b"m", s.algorithm)


def test_destroyed_key_is_never_signed_with_and_its_name_stays_taken(store: Any) -> None:
    name = unique_name("gone")
    old = store.create_key(name, KeySpec.P256)
    store.delete_key(name)
    with pytest.raises(KeyNotFound):
        old.sign(b"after deletion")
    with pytest.raises(KeyNotFound):
        store.open(name)
    with pytest.raises(KeyExists):
        store.create_key(name, KeySpec.P256)  # Cloud KMS never re-uses a key name


@pytest.mark.parametrize("attribute", ["timeout=abc", "timeout=inf", "timeout=0", "insecure=perhaps"])
def test_bad_uri_values_name_the_attribute(attribute: str) -> None:
    with pytest.raises(ConfigError, match=attribute.split("=")[0]):
        GcpKmsKeyStore.from_uri(f"gcpkms://projects/p/locations/l/keyRings/r?endpoint=127.0.0.1:1&{attribute}")


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory, gcp_token: str) -> Iterator[Any]:
    """A second emulator serving TLS under a throwaway CA (its ca.pem in a temp dir)."""
    directory = tmp_path_factory.mktemp("gcp-tls")
    handle = emulator.start("127.0.0.1", 0, token=gcp_token, tls_dir=str(directory))
    handle.ca_pem_path = str(directory / "ca.pem")  # type: ignore[attr-defined]
    try:
        yield handle
    finally:
        handle.stop()


def _tls_uri(handle: Any, extra: str = "") -> str:
    return (f"gcpkms://projects/keyplane-test/locations/global/keyRings/tls?endpoint={handle.address}"
            f"&token-source=env:{TOKEN_ENV}&timeout=20{extra}")


def test_untrusted_tls_certificate_is_a_config_error_naming_ca_bundle(tls_emulator: Any) -> None:
    with GcpKmsKeyStore.from_uri(_tls_uri(tls_emulator)) as store, pytest.raises(ConfigError, match="ca-bundle"):
        store.create_key(unique_name("tls"), KeySpec.P256)
    assert tls_emulator.calls == {}  # nothing got through the handshake


def test_ca_bundle_trusts_a_private_endpoint(tls_emulator: Any) -> None:
    with GcpKmsKeyStore.from_uri(_tls_uri(tls_emulator, f"&ca-bundle={tls_emulator.ca_pem_path}")) as store:
        signer = store.create_key(unique_name("tls"), KeySpec.P256)
        assert signer.public_key.is_valid(signer.sign(b"over TLS"), b"over TLS", signer.algorithm)
