"""The Transit back end against a real OpenBao dev server: every spec and algorithm, URIs, errors."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

import signers
from backends.vault_transit import VaultTransitKeyStore, VaultTransitSigner
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyExists,
    KeyNotFound,
    PermissionDenied,
)
from tests.fixtures.openbao import BAD_TOKEN_ENV, OpenBaoServer, store_uri
from tests.fixtures.ports import free_port

from .conftest import root_call

SPECS = [KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096,
         KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87]
MESSAGES = [b"", b"keyplane", os.urandom(1 << 20)]


@pytest.fixture(scope="module")
def signers_by_spec(openbao_store_uri: str) -> dict[KeySpec, VaultTransitSigner]:
    store = VaultTransitKeyStore.from_uri(openbao_store_uri)
    return {spec: store.create_key(f"spec-{spec.value.lower()}-{uuid.uuid4().hex[:6]}", spec) for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_every_algorithm_of_every_spec_verifies_with_cryptography(
    spec: KeySpec, signers_by_spec: dict[KeySpec, VaultTransitSigner], store: VaultTransitKeyStore
) -> None:
    created = signers_by_spec[spec]
    assert created.public_key.spec is spec and created.version == 1
    for algorithm in spec.algorithms:  # PS256..PS512 and RS256..RS512 for RSA keys
        signer = store.open(created.name, algorithm)
        for message in MESSAGES:
            signature = signer.sign(message)
            signer.public_key.verify(signature, message, algorithm)  # cryptography underneath
            with pytest.raises(InvalidSignature):
                signer.public_key.verify(signature, message + b"!", algorithm)
        size = spec.info.signature_size
        if size is not None:
            assert len(signature) == size


def test_pss_salt_is_the_hash_length(signers_by_spec: dict[KeySpec, VaultTransitSigner]) -> None:
    """OpenBao's default PSS salt is the maximum; PS256 means salt = 32 bytes. Check with cryptography directly."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    signer = signers_by_spec[KeySpec.RSA2048]
    signature = signer.sign(b"salt")
    key = signer.public_key.key
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, b"salt", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())


def test_public_key_matches_the_servers_and_key_id_is_stable(
    signers_by_spec: dict[KeySpec, VaultTransitSigner], store: VaultTransitKeyStore
) -> None:
    for signer in signers_by_spec.values():
        again = store.open(signer.uri)
        assert again.public_key == signer.public_key and again.key_id == signer.key_id
        assert store.public_keys(signer.name) == {1: signer.public_key}
        assert signers.open(signer.uri).key_id == signer.key_id  # through the registry, as users do


def test_capabilities_detect_mldsa_from_the_servers_own_description(store: VaultTransitKeyStore) -> None:
    caps = signers.capabilities_of(store)
    assert {KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87} <= caps.key_specs
    assert KeySpec.SECP256K1 not in caps.key_specs and caps.implements("rotate") and caps.prehash


def test_unsupported_spec_names_what_transit_offers(store: VaultTransitKeyStore, key_name: str) -> None:
    with pytest.raises(AlgorithmNotSupported, match="secp256k1"):
        store.create_key(key_name, KeySpec.SECP256K1)


def test_a_non_signing_key_is_refused(openbao_server: OpenBaoServer, store: VaultTransitKeyStore,
                                      key_name: str) -> None:
    root_call(openbao_server, "POST", f"/v1/transit/keys/{key_name}", {"type": "aes256-gcm96"})
    with pytest.raises(AlgorithmNotSupported, match="aes256-gcm96"):
        store.open(key_name)
    assert key_name not in {k.name for k in store.list_keys()}


def test_create_list_delete(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, "P-256")
    with pytest.raises(KeyExists):
        store.create_key(key_name, KeySpec.P256)
    listed = {k.name: k for k in store.list_keys()}
    assert listed[key_name].spec is KeySpec.P256 and listed[key_name].key_id == signer.key_id
    assert listed[key_name].version == "1"
    store.delete_key(key_name)  # deletion_allowed is set first
    with pytest.raises(KeyNotFound):
        store.open(key_name)
    with pytest.raises(KeyNotFound):
        store.delete_key(key_name)
    with pytest.raises(KeyNotFound):
        signer.sign(b"gone")


def test_create_with_a_non_default_algorithm(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, KeySpec.RSA2048, algorithm="RS256")
    assert signer.algorithm is SignatureAlgorithm.RS256 and "algorithm=RS256" in signer.uri
    signer.public_key.verify(signer.sign(b"m"), b"m", SignatureAlgorithm.RS256)
    assert store.open(signer.uri).algorithm is SignatureAlgorithm.RS256
    with pytest.raises(AlgorithmNotSupported):
        store.create_key(key_name + "x", KeySpec.P256, algorithm="RS256")
    with pytest.raises(ConfigError, match="unknown create option"):
        store.create_key(key_name + "y", KeySpec.P256, exportable=True)


def test_uri_forms(openbao_server: OpenBaoServer, openbao_store_uri: str, key_name: str,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    signer = signers.open_store(openbao_store_uri).create_key(key_name, KeySpec.ED25519)
    assert signer.uri.startswith(f"hashivault://{key_name}?addr={openbao_server.addr}&mount=transit&")
    assert "version=1" in signer.uri and openbao_server.token not in signer.uri
    # openbao: with BAO_* variables, hashivault: with VAULT_*; the URI query wins over both.
    monkeypatch.setenv("BAO_ADDR", openbao_server.addr)
    monkeypatch.setenv("BAO_TOKEN", openbao_server.token)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    via_bao = signers.open(f"openbao://{key_name}")
    assert via_bao.key_id == signer.key_id and "token-source=env:BAO_TOKEN" in via_bao.uri
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")  # for hashivault: VAULT_ first ...
    monkeypatch.setenv("VAULT_TOKEN", "wrong")
    assert signers.open(f"hashivault://{key_name}?addr={openbao_server.addr}&token-source=env:BAO_TOKEN").key_id \
        == signer.key_id  # ... but the query wins
    assert signers.open(f"hashivault:///{key_name}?addr={openbao_server.addr}&token-source=env:BAO_TOKEN").key_id \
        == signer.key_id
    path = openbao_server._workdir / "token"
    path.write_text(openbao_server.token + "\n")
    assert signers.open(f"openbao://{key_name}?addr={openbao_server.addr}&token-source=file:{path}").key_id \
        == signer.key_id


@pytest.mark.parametrize("uri, match", [
    ("hashivault://k?token-source=env:X&addr=ftp://x", "addr must be"),
    ("hashivault://k?addr=http://127.0.0.1:1&token-value=abc", "token-value"),
    ("hashivault://k?addr=http://127.0.0.1:1&token-source=env:KEYPLANE_TEST_VAULT_TOKEN&colour=red", "unknown"),
    ("hashivault://k?addr=http://127.0.0.1:1&token-source=env:KEYPLANE_TEST_VAULT_TOKEN&timeout=-1", "timeout"),
    ("hashivault://k?addr=http://127.0.0.1:1&token-source=env:KEYPLANE_TEST_VAULT_TOKEN&ca-cert=/nonexistent",
     "ca-cert"),
    ("hashivault://k?addr=http://127.0.0.1:1&token-source=env:KEYPLANE_TEST_VAULT_TOKEN&mount=../x", "mount"),
    ("hashivault://?addr=http://127.0.0.1:1&token-source=env:KEYPLANE_TEST_NO_SUCH_VARIABLE", "not set"),
])
def test_bad_uris_are_config_errors(uri: str, match: str, openbao_server: OpenBaoServer) -> None:
    with pytest.raises(ConfigError, match=match):
        VaultTransitKeyStore.from_uri(uri)


def test_missing_token_and_address_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="no server address"):
        VaultTransitKeyStore.from_uri("hashivault://k")
    with pytest.raises(ConfigError, match="no token"):
        VaultTransitKeyStore.from_uri("openbao://k?addr=http://127.0.0.1:1")


def test_bad_names_and_versions(store: VaultTransitKeyStore, key_name: str) -> None:
    for bad in ("../sys/seal", "a/b", "-x", "x-", ""):
        with pytest.raises(ConfigError):
            store.open(bad)
    store.create_key(key_name, KeySpec.ED25519)
    with pytest.raises(ConfigError, match="version"):
        store.open(f"hashivault://{key_name}?version=0")
    with pytest.raises(KeyNotFound, match="no version 7"):
        store.open(f"hashivault://{key_name}?version=7")
    with pytest.raises(ConfigError, match="different addr"):
        store.open(f"hashivault://{key_name}?addr=http://10.0.0.1:8200")


def test_unknown_key_is_key_not_found(store: VaultTransitKeyStore) -> None:
    with pytest.raises(KeyNotFound):
        store.open("no-such-key")


def test_unknown_mount_is_reported(openbao_server: OpenBaoServer) -> None:
    store = VaultTransitKeyStore.from_uri(store_uri(openbao_server).replace("mount=transit", "mount=nowhere"))
    for call in (lambda: store.open("anything"), lambda: list(store.list_keys())):
        with pytest.raises(ConfigError, match="mount"):
            call()


def test_bad_token_is_authentication_failed_everywhere(openbao_server: OpenBaoServer,
                                                       signers_by_spec: dict[KeySpec, VaultTransitSigner]) -> None:
    bad = VaultTransitKeyStore.from_uri(store_uri(openbao_server, BAD_TOKEN_ENV))
    name = signers_by_spec[KeySpec.ED25519].name
    with pytest.raises(AuthenticationFailed):
        bad.open(name)
    with pytest.raises(AuthenticationFailed):
        list(bad.list_keys())
    with pytest.raises(AuthenticationFailed):
        bad.create_key("never", KeySpec.P256)


def _token_with_policy(server: OpenBaoServer, policy: str, **options: object) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    root_call(server, "PUT", f"/v1/sys/policies/acl/{name}", {"policy": policy})
    created = root_call(server, "POST", "/v1/auth/token/create", {"policies": [name], "ttl": "10m", **options})
    return str(created["auth"]["client_token"])


def test_a_valid_token_without_the_grant_is_permission_denied(
    openbao_server: OpenBaoServer, signers_by_spec: dict[KeySpec, VaultTransitSigner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """403 for a token that exists: PermissionDenied (told apart from a bad token by lookup-self)."""
    monkeypatch.setenv("KEYPLANE_TEST_READONLY_TOKEN", _token_with_policy(
        openbao_server, 'path "transit/keys/*" { capabilities = ["read"] }'))
    store = VaultTransitKeyStore.from_uri(store_uri(openbao_server, "KEYPLANE_TEST_READONLY_TOKEN"))
    signer = store.open(signers_by_spec[KeySpec.P256].name)  # reading is allowed
    with pytest.raises(PermissionDenied):
        signer.sign(b"not allowed")
    with pytest.raises(PermissionDenied):
        store.create_key("never", KeySpec.P256)


def test_a_token_that_may_sign_signs(openbao_server: OpenBaoServer,
                                     signers_by_spec: dict[KeySpec, VaultTransitSigner],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYPLANE_TEST_SIGN_TOKEN", _token_with_policy(
        openbao_server, 'path "transit/keys/*" { capabilities = ["read"] }\n'
                        'path "transit/sign/*" { capabilities = ["update"] }'))
    store = VaultTransitKeyStore.from_uri(store_uri(openbao_server, "KEYPLANE_TEST_SIGN_TOKEN"))
    signer = store.open(signers_by_spec[KeySpec.P384].name)
    signer.public_key.verify(signer.sign(b"least privilege"), b"least privilege")


def test_unreachable_server_is_backend_unavailable(openbao_server: OpenBaoServer) -> None:
    uri = f"hashivault://?addr=http://127.0.0.1:{free_port()}&token-source=env:KEYPLANE_TEST_VAULT_TOKEN"
    store = VaultTransitKeyStore.from_uri(uri)
    with pytest.raises(BackendUnavailable) as caught:
        store.open("anything")
    assert caught.value.cause is not None and caught.value.__cause__ is caught.value.cause


def test_the_token_never_shows(openbao_server: OpenBaoServer, openbao_store_uri: str, key_name: str,
                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = VaultTransitKeyStore.from_uri(openbao_store_uri)
    signer = store.create_key(key_name, KeySpec.ED25519)
    signer.sign(b"x")
    texts = [repr(store), str(store.uri), repr(signer), signer.uri, repr(store.connection)]
    bad = VaultTransitKeyStore.from_uri(store_uri(openbao_server, BAD_TOKEN_ENV))
    for failing in (lambda: bad.open(key_name), lambda: store.open("missing-key"),
                    lambda: VaultTransitKeyStore.from_uri(openbao_store_uri.replace(
                        openbao_server.addr, f"http://127.0.0.1:{free_port()}")).open(key_name)):
        with pytest.raises(Exception) as caught:
            failing()
        texts += [str(caught.value), repr(caught.value), str(caught.value.__cause__)]
    texts += [record.getMessage() for record in caplog.records]
    for token in (openbao_server.token, os.environ[BAD_TOKEN_ENV]):
        assert not any(token in text for text in texts)


def test_concurrent_signing_from_eight_threads(signers_by_spec: dict[KeySpec, VaultTransitSigner]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    signer = signers_by_spec[KeySpec.P256]
    messages = [f"message {i}".encode() for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        signatures = list(pool.map(signer.sign, messages))
    for message, signature in zip(messages, signatures, strict=True):
        signer.public_key.verify(signature, message)


async def _sign_async(signer: VaultTransitSigner) -> bytes:
    return await signer.sign_async(b"async")


def test_sign_async(signers_by_spec: dict[KeySpec, VaultTransitSigner]) -> None:
    import asyncio

    signer = signers_by_spec[KeySpec.ED25519]
    signer.public_key.verify(asyncio.run(_sign_async(signer)), b"async")


def test_mldsa_create_lets_the_servers_answer_decide(openbao_store_uri: str, key_name: str) -> None:
    """Told the server speaks HashiCorp's ``ml-dsa`` first, OpenBao refuses that name and the OpenBao name is used."""
    store = VaultTransitKeyStore.from_uri(openbao_store_uri)
    store._offered = frozenset({"ed25519", "ml-dsa"})  # as a HashiCorp server would describe itself
    assert [p["type"] for p in store._create_parameters(KeySpec.ML_DSA_65)] == ["ml-dsa", "mldsa-65"]
    signer = store.create_key(key_name, KeySpec.ML_DSA_65)
    signer.public_key.verify(signer.sign(b"pq"), b"pq")


def test_key_type_list_parsing_for_both_servers() -> None:
    from backends.vault_wire import types_from_help as _types_from_help

    def help_reply(description: str, **extra: object) -> dict[str, object]:
        properties = {"type": {"description": description}, **extra}
        return {"openapi": {"components": {"schemas": {"CreateKeyRequest": {"properties": properties}}}}}

    openbao = help_reply('"ecdsa-p256", "ed25519", "rsa-2048", "mldsa-44", "mldsa-65", "mldsa-87" (asymmetric)')
    assert {"mldsa-44", "mldsa-65", "mldsa-87", "ed25519"} <= (_types_from_help(openbao) or set())
    hashicorp = help_reply('"ed25519", "rsa-4096", "ml-dsa" (asymmetric)', parameter_set={"type": "string"})
    assert "ml-dsa" in (_types_from_help(hashicorp) or set())
    assert "ml-dsa" not in (_types_from_help(help_reply('"ed25519", "ml-dsa"')) or set())
    assert _types_from_help({"help": "no openapi here"}) is None
