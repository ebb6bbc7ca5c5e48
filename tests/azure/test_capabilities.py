"""Azure's optional capabilities against the emulator over HTTPS, through the real SDK.

Rotation, disable / enable, import (Key Vault's import endpoint), digest signing; a key
replaced under the same name is never signed with; a refused TLS certificate is a
ConfigError naming ca-bundle, not a retried outage.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from backends.azure_keyvault import AzureKeyVaultKeyStore
from conformance.emulators.azure_keyvault import Handle
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError, KeyDisabled, KeyExists, KeyNotFound
from signers.signer import (
    DigestSigner,
    DisablingKeyStore,
    ImportingKeyStore,
    RotatingKeyStore,
    capabilities_of,
)
from tests.fixtures.azure import TOKEN_ENV, azure_uri


def test_protocols_are_discovered(store: AzureKeyVaultKeyStore) -> None:
    caps = capabilities_of(store)
    assert {"rotate", "disable", "import", "sign-digest"} <= caps.protocols
    assert caps.deletion == "soft"
    assert isinstance(store, RotatingKeyStore | DisablingKeyStore | ImportingKeyStore)


def test_sign_digest_is_not_hashed_again(store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    assert isinstance(signer, DigestSigner)
    digest = hashlib.sha3_256(b"any 32-byte hash will do").digest()  # not SHA-256 of anything we send
    signature = signer.sign_digest(digest)
    key = signer.public_key.key
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    with pytest.raises(ConfigError, match="32-byte"):
        signer.sign_digest(digest[:31])


@pytest.mark.parametrize("alg", ["PS256", "RS384"])
def test_sign_digest_rsa(store: AzureKeyVaultKeyStore, name: str, alg: str) -> None:
    signer = store.create_key(name, KeySpec.RSA2048, algorithm=alg)
    h = SignatureAlgorithm(alg).hash_algorithm()
    digest = hashlib.new(h.name, b"message").digest()
    signature = signer.sign_digest(digest)
    pad = padding.PSS(padding.MGF1(h), h.digest_size) if alg.startswith("PS") else padding.PKCS1v15()
    key = signer.public_key.key
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, digest, pad, utils.Prehashed(h))
    assert signer.sign(b"message") and signer.public_key.is_valid(signer.sign(b"message"), b"message", signer.algorithm)


def test_disable_and_enable(store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    rotated = store.rotate_key(name)
    store.disable_key(name)
    for s in (signer, rotated):  # every version refuses
        with pytest.raises(KeyDisabled):
            s.sign(b"x")
    with pytest.raises(KeyDisabled):
        store.open(name)
    assert [k.enabled for k in store.list_keys() if k.name == name] == [False]
    store.enable_key(name)
    for s in (signer, rotated):
        assert s.public_key.is_valid(s.sign(b"x"), b"x", s.algorithm)
    with pytest.raises(KeyNotFound):
        store.disable_key("no-such-key-here")


def test_rotate_key_takes_an_algorithm(store: AzureKeyVaultKeyStore, name: str) -> None:
    first = store.create_key(name, KeySpec.RSA2048)
    second = store.rotate_key(name, SignatureAlgorithm.RS256)
    assert second.algorithm is SignatureAlgorithm.RS256 and second.version != first.version
    assert second.public_key != first.public_key
    for s in (first, second):
        assert s.public_key.is_valid(s.sign(b"m"), b"m", s.algorithm)


@pytest.mark.parametrize("make", [
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: ec.generate_private_key(ec.SECP256K1()),
    lambda: rsa.generate_private_key(65537, 2048),
], ids=["P-256", "P-384", "secp256k1", "RSA-2048"])
def test_import_key_signs_like_a_created_one(store: AzureKeyVaultKeyStore, name: str, make: object) -> None:
    private = make()  # type: ignore[operator]
    signer = store.import_key(name, private)
    assert signer.public_key.to_der() == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signer.public_key.is_valid(signer.sign(b"imported"), b"imported", signer.algorithm)
    again = store.open(name)
    assert again.public_key == signer.public_key
    with pytest.raises(KeyExists):
        store.import_key(name, private)


def test_import_refuses_what_azure_cannot_hold(store: AzureKeyVaultKeyStore, name: str) -> None:
    with pytest.raises(AlgorithmNotSupported, match="Ed25519"):
        store.import_key(name, ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ConfigError):
        store.import_key(name, b"not a key")
    with pytest.raises(KeyNotFound):
        store.open(name)  # nothing was stored


def test_key_replaced_under_the_same_name_is_not_signed_with(azure_emulator: Handle, name: str) -> None:
    """Delete + purge + re-create under the same name: the old signer refuses, never signs with the new key."""
    with AzureKeyVaultKeyStore.from_uri(azure_uri(azure_emulator, purge="true")) as store:
        old = store.create_key(name, KeySpec.P256)
        store.delete_key(name)
        new = store.create_key(name, KeySpec.P256)
        assert new.public_key != old.public_key
        with pytest.raises(KeyNotFound):
            old.sign(b"after the replacement")
        assert new.public_key.is_valid(new.sign(b"m"), b"m", new.algorithm)


def test_untrusted_tls_certificate_is_a_config_error_naming_ca_bundle(azure_emulator: Handle) -> None:
    uri = f"azurekms://{azure_emulator.url.removeprefix('https://')}?token-source=env:{TOKEN_ENV}&retries=3"
    before = azure_emulator.request_count
    started = time.monotonic()
    with AzureKeyVaultKeyStore.from_uri(uri) as store, pytest.raises(ConfigError, match="ca-bundle") as caught:
        store.open("anything")
    assert time.monotonic() - started < 5  # not retried with back-off
    assert azure_emulator.token not in str(caught.value)
    assert azure_emulator.request_count == before  # no request got through the handshake


@pytest.mark.parametrize("attribute", ["timeout=abc", "retries=1.5", "timeout=nan", "hsm=maybe", "credential=x"])
def test_bad_uri_values_name_the_attribute(attribute: str) -> None:
    name = attribute.split("=")[0]
    with pytest.raises(ConfigError, match=name):
        AzureKeyVaultKeyStore.from_uri(f"azurekms://v.vault.azure.net?token-source=env:{TOKEN_ENV}&{attribute}")

