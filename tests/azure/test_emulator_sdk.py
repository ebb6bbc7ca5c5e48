"""The emulator driven by the real azure-keyvault-keys client over HTTPS on loopback.

Nothing is mocked: the SDK's challenge-auth policy, retry policy, pagers and delete poller
run against the emulator's answers, and every signature is checked with `cryptography`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from conformance.emulators.azure_keyvault import Handle

from .conftest import StaticCredential, sdk_options

EC_CASES = [("P-256", "ES256", hashlib.sha256, ec.SECP256R1), ("P-384", "ES384", hashlib.sha384, ec.SECP384R1),
            ("P-256K", "ES256K", hashlib.sha256, ec.SECP256K1)]


def _ec_public(jwk: Any, curve: type[ec.EllipticCurve]) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"), curve()).public_key()


@pytest.mark.parametrize(("crv", "alg", "hasher", "curve"), EC_CASES, ids=[c[0] for c in EC_CASES])
def test_ec_create_sign_verify(
    azure_emulator: Handle, key_client: Any, name: str, crv: str, alg: str, hasher: Any, curve: Any
) -> None:
    from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm

    key = key_client.create_ec_key(name, curve=crv)
    assert key.key_type == "EC" and key.key.crv == crv and key.properties.version
    assert set(key.key_operations) == {"sign", "verify"}
    client = key_client.get_cryptography_client(name, key_version=key.properties.version)
    digest = hasher(b"azure emulator").digest()
    result = client.sign(alg, digest)
    size = {"P-256": 32, "P-384": 48, "P-256K": 32}[crv]
    assert len(result.signature) == 2 * size  # raw r||s, as Key Vault returns it
    assert result.key_id == key.id
    r, s = int.from_bytes(result.signature[:size], "big"), int.from_bytes(result.signature[size:], "big")
    h = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[hasher().name]
    _ec_public(key.key, curve).verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(h)))
    # A client whose token lacks keys/get gets 403 on its key fetch, so it verifies on the service.
    azure_emulator.add_token("verify-only", {"sign", "verify"})
    remote = CryptographyClient(key.id, StaticCredential("verify-only"), **sdk_options(azure_emulator))
    algorithm = SignatureAlgorithm(alg)
    assert remote.verify(algorithm, digest, result.signature).is_valid
    assert not remote.verify(algorithm, hasher(b"other").digest(), result.signature).is_valid


@pytest.mark.parametrize("alg", ["PS256", "PS384", "PS512", "RS256", "RS384", "RS512"])
def test_rsa_sign(key_client: Any, name: str, alg: str) -> None:
    key = key_client.create_rsa_key(name, size=2048)
    h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    d = hashes.Hash(h)
    d.update(b"rsa message")
    digest = d.finalize()
    result = key_client.get_cryptography_client(name, key_version=key.properties.version).sign(alg, digest)
    public = rsa.RSAPublicNumbers(int.from_bytes(key.key.e, "big"), int.from_bytes(key.key.n, "big")).public_key()
    pad = padding.PSS(padding.MGF1(h), h.digest_size) if alg.startswith("PS") else padding.PKCS1v15()
    assert len(result.signature) == 256
    public.verify(result.signature, digest, pad, Prehashed(h))


def test_get_latest_and_pinned_versions(key_client: Any, name: str) -> None:
    first = key_client.create_ec_key(name, curve="P-256")
    second = key_client.create_ec_key(name, curve="P-256")  # same name: a new version, as in Key Vault
    assert key_client.get_key(name).id == second.id
    assert key_client.get_key(name, first.properties.version).id == first.id
    versions = {p.version for p in key_client.list_properties_of_key_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    rotated = key_client.rotate_key(name)
    assert key_client.get_key(name).id == rotated.id and rotated.key.crv == "P-256"


def test_list_pages_through_next_link(key_client: Any) -> None:
    prefix = "page-"
    for i in range(30):  # more than one page of 25
        key_client.create_ec_key(f"{prefix}{i}", curve="P-256")
    names = [p.name for p in key_client.list_properties_of_keys(max_page_size=7)]
    assert sum(n.startswith(prefix) for n in names) == 30
    assert len(names) == len(set(names))


def test_delete_poller_deleted_key_and_purge(key_client: Any, name: str) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    key_client.create_rsa_key(name, size=2048)
    deleted = key_client.begin_delete_key(name).result()
    assert deleted.name == name and deleted.recovery_id.endswith(f"/deletedkeys/{name}")
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date > deleted.deleted_date
    assert key_client.get_deleted_key(name).key.kty == "RSA"
    assert name in {d.name for d in key_client.list_deleted_keys()}
    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name)
    with pytest.raises(ResourceExistsError):  # a soft-deleted name cannot be reused until purged
        key_client.create_ec_key(name, curve="P-256")
    key_client.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_deleted_key(name)
    key_client.create_ec_key(name, curve="P-256")


def test_recover_deleted_key(key_client: Any, name: str) -> None:
    key = key_client.create_ec_key(name, curve="P-384")
    key_client.begin_delete_key(name).wait()
    recovered = key_client.begin_recover_deleted_key(name).result()
    assert recovered.id == key.id


def test_unknown_key_is_404(key_client: Any) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError) as info:
        key_client.get_key("no-such-key")
    assert info.value.status_code == 404 and getattr(info.value.error, "code", None) == "KeyNotFound"


def test_wrong_token_is_401_after_the_challenge(azure_emulator: Handle) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.keyvault.keys import KeyClient

    before = azure_emulator.request_count
    client = KeyClient(azure_emulator.url, StaticCredential("wrong-token"), **sdk_options(azure_emulator))
    with pytest.raises(ClientAuthenticationError) as info:
        client.get_key("anything")
    assert info.value.status_code == 401
    assert "wrong-token" not in str(info.value)
    assert azure_emulator.request_count - before >= 2  # the bare challenge request, then the token


def test_token_without_permission_is_403(azure_emulator: Handle, key_client: Any, name: str) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.keys import KeyClient

    key_client.create_ec_key(name, curve="P-256")
    azure_emulator.add_token("read-only-token", {"get", "list"})
    reader = KeyClient(azure_emulator.url, StaticCredential("read-only-token"), **sdk_options(azure_emulator))
    assert reader.get_key(name).name == name
    with pytest.raises(HttpResponseError) as info:
        reader.create_ec_key(f"{name}-x", curve="P-256")
    assert info.value.status_code == 403 and getattr(info.value.error, "code", None) == "Forbidden"


def test_throttling_is_retried_honouring_retry_after(faults: Handle, key_client: Any, name: str) -> None:
    key_client.create_ec_key(name, curve="P-256")
    faults.fail_next(429, count=2, retry_after=0.1)
    before = faults.request_count
    assert key_client.get_key(name).name == name  # azure-core's RetryPolicy slept Retry-After and retried
    assert faults.request_count - before == 3


def test_sdk_refuses_plain_http_and_untrusted_certificates(azure_emulator: Handle) -> None:
    from azure.core.exceptions import ServiceRequestError
    from azure.keyvault.keys import KeyClient

    untrusted = KeyClient(azure_emulator.url, StaticCredential(azure_emulator.token), verify_challenge_resource=False,
                          retry_total=0)
    with pytest.raises(ServiceRequestError):
        untrusted.get_key("anything")
