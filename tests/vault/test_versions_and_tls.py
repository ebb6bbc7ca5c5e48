"""Key versions (rotation, pinning, numeric order) and TLS (CA bundle) against real OpenBao servers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import signers
from backends.vault_transit import VaultTransitKeyStore
from signers.algorithms import KeySpec
from signers.errors import ConfigError, InvalidSignature, KeyNotFound
from tests.fixtures.openbao import OpenBaoServer, find_bao


def test_a_signature_made_with_version_1_verifies_after_rotation(store: VaultTransitKeyStore, key_name: str) -> None:
    v1 = store.create_key(key_name, KeySpec.P256)
    signature = v1.sign(b"signed before rotation")
    v2 = v1.rotate()
    assert (v1.version, v2.version) == (1, 2) and v1.key_id != v2.key_id
    assert v2.uri.endswith("version=2") and v1.uri.endswith("version=1")
    # Verification picks the version's public key.
    assert store.verify(key_name, b"signed before rotation", signature) == 1
    assert store.verify(key_name, b"signed before rotation", signature, version=1) == 1
    with pytest.raises(InvalidSignature):
        store.verify(key_name, b"signed before rotation", signature, version=2)
    v2.public_key.verify(v2.sign(b"after"), b"after")
    assert store.verify(key_name, b"after", v2.sign(b"after")) == 2
    # The old signer keeps its version; opening without a version follows the latest.
    v1.public_key.verify(v1.sign(b"still v1"), b"still v1")
    assert store.open(key_name).version == 2
    assert store.open(v1.uri).version == 1 and store.open(v1.uri).key_id == v1.key_id


def test_transit_signature_text_names_its_version(openbao_server: OpenBaoServer, store: VaultTransitKeyStore,
                                                  key_name: str) -> None:
    from .conftest import root_call

    store.create_key(key_name, KeySpec.ED25519).rotate()
    reply = root_call(openbao_server, "POST", f"/v1/transit/sign/{key_name}", {"input": "aGk=", "key_version": 1})
    text = reply["data"]["signature"]
    assert text.startswith("vault:v1:")
    assert store.verify(key_name, b"hi", text) == 1
    with pytest.raises(InvalidSignature):
        store.verify(key_name, b"hi", text.replace("vault:v1:", "vault:v2:"))


def test_a_token_signed_with_version_1_verifies_after_rotation(store: VaultTransitKeyStore, key_name: str) -> None:
    jose = pytest.importorskip("signers.jose", reason="signers.jose is not in this checkout")
    v1 = store.create_key(key_name, KeySpec.ED25519)
    token = jose.sign_jwt(v1, {"sub": "agent-7", "exp": int(time.time()) + 300})
    v2 = v1.rotate()
    newer = jose.sign_jwt(v2, {"sub": "agent-7", "exp": int(time.time()) + 300})
    jwks = store.jwks(key_name)  # one JWK per version; the token's kid picks its version
    assert [k["kid"] for k in jwks["keys"]] == [v2.key_id, v1.key_id]
    assert jose.verify_jwt(token, jwks).kid == v1.key_id
    assert jose.verify_jwt(newer, jwks).kid == v2.key_id


def test_versions_sort_numerically(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, KeySpec.ED25519)
    for _ in range(10):
        signer = signer.rotate()
    assert signer.version == 11
    keys = store.public_keys(key_name)
    assert list(keys) == list(range(1, 12))  # 10 after 9, not after 1
    info = {k.name: k for k in store.list_keys()}[key_name]
    assert info.version == "11" and info.extra["versions"] == list(range(1, 12))
    assert store.open(key_name).version == 11
    ten = store.open(f"hashivault://{key_name}?version=10")
    assert ten.version == 10 and ten.public_key == keys[10]
    ten.public_key.verify(ten.sign(b"ten"), b"ten")
    assert store.verify(key_name, b"ten", ten.sign(b"ten")) == 10


# -- TLS ---------------------------------------------------------------------------------

TLS_TOKEN_ENV = "KEYPLANE_TEST_TLS_TOKEN"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[OpenBaoServer]:
    try:
        server = OpenBaoServer(find_bao(), tls=True)
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def test_https_with_the_servers_ca_bundle(tls_server: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TLS_TOKEN_ENV, tls_server.token)
    base = f"hashivault://?addr={tls_server.addr}&token-source=env:{TLS_TOKEN_ENV}"
    with pytest.raises(ConfigError, match="certificate verification"):
        VaultTransitKeyStore.from_uri(base).open("anything")  # certifi does not know the dev CA
    store = VaultTransitKeyStore.from_uri(f"{base}&ca-cert={tls_server.ca_cert}")
    signer = store.create_key("over-tls", KeySpec.P384)
    signer.public_key.verify(signer.sign(b"tls"), b"tls")  # the sign path (urllib3) trusts the same CA
    assert f"ca-cert={tls_server.ca_cert}" in signer.uri
    # The CA may also come from the environment, as for the vault / bao CLIs.
    monkeypatch.setenv("BAO_CACERT", str(tls_server.ca_cert))
    assert signers.open(f"openbao://over-tls?addr={tls_server.addr}&token-source=env:{TLS_TOKEN_ENV}").key_id \
        == signer.key_id
    with pytest.raises(KeyNotFound):
        store.open("absent")


def test_client_certificate_options_reach_the_handshake(tls_server: OpenBaoServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev server does not ask for a client certificate, so this proves the files load and are used."""
    monkeypatch.setenv(TLS_TOKEN_ENV, tls_server.token)
    folder = tls_server.ca_cert.parent
    base = f"hashivault://?addr={tls_server.addr}&token-source=env:{TLS_TOKEN_ENV}&ca-cert={tls_server.ca_cert}"
    store = VaultTransitKeyStore.from_uri(
        f"{base}&client-cert={folder / 'vault-cert.pem'}&client-key={folder / 'vault-key.pem'}")
    store.create_key("mtls", KeySpec.ED25519).sign(b"x")
    with pytest.raises(ConfigError, match="client-key given without client-cert"):
        VaultTransitKeyStore.from_uri(f"{base}&client-key={folder / 'vault-key.pem'}")
