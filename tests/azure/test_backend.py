"""The azurekms back end: keyplane's store and signers over the real SDK, against the emulator.

Every signature is verified with `cryptography` (PublicKey.verify). Failures are produced by
the emulator for real (wrong token, missing permission, 429/503 answers, a closed port), so
the error translation is exercised through the SDK's own pipeline.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from backends.azure_keyvault import AzureKeyVaultKeyStore, AzureKeyVaultSigner
from conformance.emulators.azure_keyvault import Handle
from signers import errors
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.signature_format import ecdsa_der_to_raw
from tests.fixtures.azure import BAD_TOKEN_ENV, azure_uri
from tests.fixtures.ports import free_port

from .conftest import StaticCredential

SUPPORTED = [KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096]


@pytest.mark.parametrize("spec", SUPPORTED, ids=[s.value for s in SUPPORTED])
def test_create_sign_verify_every_spec(store: AzureKeyVaultKeyStore, name: str, spec: KeySpec) -> None:
    signer = store.create_key(name, spec)
    assert signer.public_key.spec is spec and signer.algorithm is spec.default_algorithm
    for message in (b"", b"x", os.urandom(4097)):
        signature = signer.sign(message)
        signer.public_key.verify(signature, message, signer.algorithm)
    if spec.family.value == "EC":
        assert signature[0] == 0x30  # DER, converted from Key Vault's r||s
    else:
        assert len(signature) == spec.info.rsa_bits // 8  # type: ignore[operator]


@pytest.mark.parametrize("alg", ["PS384", "PS512", "RS256", "RS384", "RS512"])
def test_rsa_algorithms(store: AzureKeyVaultKeyStore, name: str, alg: str) -> None:
    store.create_key(name, KeySpec.RSA2048)
    signer = store.open(name, alg)
    assert signer.algorithm is SignatureAlgorithm(alg) and f"algorithm={alg}" in signer.uri
    signer.public_key.verify(signer.sign(b"message"), b"message", signer.algorithm)
    again = store.open(signer.uri)  # the algorithm travels in the key URI
    assert again.algorithm is signer.algorithm


def test_large_message_sends_only_the_digest(store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, "P-256")
    message = b"\xab" * (1 << 20)
    signer.public_key.verify(signer.sign(message), message, signer.algorithm)


def test_open_latest_pinned_and_rotate(store: AzureKeyVaultKeyStore, name: str) -> None:
    first = store.create_key(name, "P-384")
    rotated = store.rotate_key(name)
    assert isinstance(rotated, AzureKeyVaultSigner)
    assert rotated.version != first.version and rotated.key_id != first.key_id
    assert store.open(name).key_id == rotated.key_id  # latest
    pinned = store.open(first.uri)  # the URI pins the version
    assert pinned.key_id == first.key_id and pinned.version == first.version
    assert store.open(f"{name}/{first.version}").key_id == first.key_id
    pinned.public_key.verify(pinned.sign(b"old"), b"old", pinned.algorithm)


def test_key_uri_round_trip_in_a_fresh_store(store: AzureKeyVaultKeyStore, azure_store_uri: str, name: str) -> None:
    signer = store.create_key(name, "secp256k1")
    assert signer.algorithm is SignatureAlgorithm.ES256K
    with AzureKeyVaultKeyStore.from_uri(signer.uri) as other:
        assert other.open(signer.uri).key_id == signer.key_id


def test_create_existing_name_is_key_exists(store: AzureKeyVaultKeyStore, name: str) -> None:
    store.create_key(name, "P-256")
    with pytest.raises(errors.KeyExists):
        store.create_key(name, "P-256")


def test_list_and_delete(store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, "P-256")
    names = {info.name: info for info in store.list_keys()}
    assert name in names and names[name].uri.startswith("azurekms://")
    store.delete_key(name)
    with pytest.raises(errors.KeyNotFound):
        store.open(name)
    with pytest.raises(errors.KeyNotFound):
        store.open(signer.uri)
    with pytest.raises(errors.KeyExists):  # soft-deleted: the name is held until purged
        store.create_key(name, "P-256")
    with pytest.raises(errors.KeyNotFound):
        store.delete_key(name)


def test_delete_with_purge_frees_the_name(azure_emulator: Handle, name: str) -> None:
    with AzureKeyVaultKeyStore.from_uri(azure_uri(azure_emulator, purge="true")) as purging:
        purging.create_key(name, "P-256")
        purging.delete_key(name)
        purging.create_key(name, "P-384")


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87])
def test_specs_azure_lacks_are_refused_with_the_reason(store: AzureKeyVaultKeyStore, name: str, spec: KeySpec) -> None:
    assert spec not in store.capabilities.key_specs
    with pytest.raises(errors.AlgorithmNotSupported, match="Azure Key Vault does not offer"):
        store.create_key(name, spec)


def test_wrong_algorithm_for_key(store: AzureKeyVaultKeyStore, name: str) -> None:
    store.create_key(name, "P-256")
    with pytest.raises(errors.AlgorithmNotSupported):
        store.open(name, "ES384")


def test_unknown_key(store: AzureKeyVaultKeyStore) -> None:
    with pytest.raises(errors.KeyNotFound):
        store.open("no-such-key")
    with pytest.raises(errors.KeyNotFound):
        store.open("no-such-key/0123456789abcdef0123456789abcdef")


def test_wrong_token_is_authentication_failed(azure_emulator: Handle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with AzureKeyVaultKeyStore.from_uri(azure_uri(azure_emulator, BAD_TOKEN_ENV)) as bad:
        with pytest.raises(errors.AuthenticationFailed) as info:
            bad.open("anything")
        with pytest.raises(errors.AuthenticationFailed):
            list(bad.list_keys())
    secret = os.environ[BAD_TOKEN_ENV]
    assert secret not in str(info.value) and secret not in repr(bad) and secret not in bad.uri
    assert secret not in caplog.text and azure_emulator.token not in caplog.text


def test_injected_credential_wins(azure_emulator: Handle, azure_store_uri: str, name: str) -> None:
    bad_uri = azure_uri(azure_emulator, BAD_TOKEN_ENV)
    with AzureKeyVaultKeyStore.from_uri(bad_uri, credential=StaticCredential(azure_emulator.token)) as s:
        s.create_key(name, "P-256").sign(b"ok")


def test_missing_permission_is_permission_denied(azure_emulator: Handle, store: AzureKeyVaultKeyStore,
                                                 name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create_key(name, "P-256")
    azure_emulator.add_token("get-only", {"get", "list"})
    monkeypatch.setenv("KEYPLANE_TEST_AZURE_READER", "get-only")
    with AzureKeyVaultKeyStore.from_uri(azure_uri(azure_emulator, "KEYPLANE_TEST_AZURE_READER")) as reader:
        signer = reader.open(name)
        with pytest.raises(errors.PermissionDenied):
            signer.sign(b"not allowed")
        with pytest.raises(errors.PermissionDenied):
            reader.create_key(f"{name}-2", "P-256")


def test_throttled_sign_is_retried(faults: Handle, store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, "P-256")
    faults.fail_next(429, count=2, retry_after=0.05)
    signer.public_key.verify(signer.sign(b"retried"), b"retried", signer.algorithm)
    faults.fail_next(429, count=1)  # no Retry-After: sign is still retried (backoff), as it is safe to repeat
    signer.sign(b"retried again")


def test_persistent_5xx_is_backend_unavailable(faults: Handle, store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, "P-256")
    faults.fail_next(503, count=100, retry_after=0.05)
    with pytest.raises(errors.BackendUnavailable) as info:
        signer.sign(b"never")
    assert info.value.cause is not None and info.value.__cause__ is info.value.cause
    faults.clear_faults()
    signer.sign(b"fine again")


def test_huge_retry_after_is_bounded(faults: Handle, azure_emulator: Handle, name: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.azure_keyvault.client.MAX_RETRY_AFTER", 0.2)  # the real bound is 30 s
    with AzureKeyVaultKeyStore.from_uri(azure_uri(azure_emulator, retries="1")) as s:
        s.create_key(name, "P-256")
        faults.fail_next(429, count=5, retry_after=3600)
        started = time.monotonic()
        with pytest.raises(errors.BackendUnavailable):
            s.open(name)
        assert time.monotonic() - started < 30


def test_unreachable_vault_is_backend_unavailable(azure_emulator: Handle) -> None:
    port = free_port()
    uri = f"azurekms://127.0.0.1:{port}?ca-bundle={azure_emulator.ca_pem_path}&token-source=env:{BAD_TOKEN_ENV}"
    started = time.monotonic()
    with AzureKeyVaultKeyStore.from_uri(uri) as s, pytest.raises(errors.BackendUnavailable):
        s.open("k")
    assert time.monotonic() - started < 10


# -- URIs and configuration ---------------------------------------------------------------


@pytest.mark.parametrize(("uri", "url", "managed"), [
    ("azurekms://myvault.vault.azure.net", "https://myvault.vault.azure.net", False),
    ("azurekms://myvault.vault.azure.net/ca", "https://myvault.vault.azure.net", False),
    ("azurekms://myvault.vault.azure.net/ca/0f3d9e91aa", "https://myvault.vault.azure.net", False),
    ("azurekms://myhsm.managedhsm.azure.net/ca", "https://myhsm.managedhsm.azure.net", True),
])
def test_uri_forms(uri: str, url: str, managed: bool) -> None:
    store = AzureKeyVaultKeyStore.from_uri(uri, credential=StaticCredential("unused"))
    assert store.vault_url == url and store.managed_hsm is managed and store.hsm is managed
    assert store.uri == url.replace("https://", "azurekms://")
    assert store._locate(uri if uri.count("/") > 2 else f"{uri}/k")[0] in ("ca", "k")


@pytest.mark.parametrize("uri", [
    "azurekms:///ca",
    "azurekms://v.vault.azure.net?bogus=1",
    "azurekms://v.vault.azure.net?credential=magic",
    "azurekms://v.vault.azure.net?timeout=soon",
    "azurekms://v.vault.azure.net?token-source=env:KEYPLANE_TEST_UNSET_VARIABLE",
    "awskms:///alias/x",
])
def test_bad_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(errors.ConfigError):
        AzureKeyVaultKeyStore.from_uri(uri)


def test_bad_names_and_foreign_uris(store: AzureKeyVaultKeyStore) -> None:
    for bad in ("under_score", "a/b/c", "", "other.vault:x"):
        with pytest.raises(errors.ConfigError):
            store.open(bad)
    with pytest.raises(errors.ConfigError):
        store.open("azurekms://elsewhere.vault.azure.net/k")


def test_emulator_token_stays_out_of_reprs(store: AzureKeyVaultKeyStore, azure_emulator: Handle, name: str) -> None:
    signer = store.create_key(name, "P-256")
    for text in (repr(store), str(store.uri), repr(signer), signer.uri, repr(store._credential), repr(azure_emulator)):
        assert azure_emulator.token not in text


def test_der_signature_converts_back_to_raw(store: AzureKeyVaultKeyStore, name: str) -> None:
    signer = store.create_key(name, "P-384")
    assert len(ecdsa_der_to_raw(signer.sign(b"m"), 48)) == 96


def test_import_is_lazy() -> None:
    code = "import backends.azure_keyvault, sys; print(any(m.startswith('azure') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sign_async(store: AzureKeyVaultKeyStore, name: str) -> None:
    import asyncio

    signer = store.create_key(name, "P-256")

    async def many() -> list[bytes]:
        return await asyncio.gather(*(signer.sign_async(b"m%d" % i) for i in range(64)))

    for i, signature in enumerate(asyncio.run(many())):
        signer.public_key.verify(signature, b"m%d" % i, signer.algorithm)


def test_managed_hsm_and_premium_hsm_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Managed HSM only takes EC-HSM / RSA-HSM keys; ``?hsm=true`` asks for them on any host."""
    from conformance.emulators import azure_keyvault

    with azure_keyvault.start(managed_hsm=True) as hsm:
        monkeypatch.setenv("KEYPLANE_TEST_AZURE_HSM_TOKEN", hsm.token)
        with AzureKeyVaultKeyStore.from_uri(azure_uri(hsm, "KEYPLANE_TEST_AZURE_HSM_TOKEN", hsm="true")) as s:
            for spec in (KeySpec.P256, KeySpec.SECP256K1, KeySpec.RSA2048):
                signer = s.create_key(f"hsm-{spec.value.lower()}", spec)
                signer.public_key.verify(signer.sign(b"hsm"), b"hsm", signer.algorithm)
                assert s._client.get_key(f"hsm-{spec.value.lower()}").key_type.value.endswith("-HSM")
            rotated = s.rotate_key("hsm-p-256")
            assert s._client.get_key("hsm-p-256", rotated.version).key_type.value == "EC-HSM"
        with AzureKeyVaultKeyStore.from_uri(azure_uri(hsm, "KEYPLANE_TEST_AZURE_HSM_TOKEN")) as plain, \
                pytest.raises(errors.ConfigError, match="Managed HSM"):
            plain.create_key("software-key", KeySpec.P256)


def test_rotate_keeps_hsm_protection(store: AzureKeyVaultKeyStore, name: str) -> None:
    store.create_key(name, KeySpec.RSA3072, hsm=True, tags={"team": "ca"})
    rotated = store.rotate_key(name)
    key = store._client.get_key(name, rotated.version)
    assert key.key_type.value == "RSA-HSM" and key.properties.tags == {"team": "ca"}
    assert rotated.public_key.spec is KeySpec.RSA3072
