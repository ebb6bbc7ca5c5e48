"""The gcpkms back end against the local KMS emulator, through the real google-cloud-kms client.

Everything goes over a gRPC channel on loopback; every signature is verified with
`cryptography` (PublicKey.verify).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from signers import errors
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.keys import PublicKey
from tests.fixtures.gcp import BAD_TOKEN_ENV, PROJECT, key_ring_uri
from tests.fixtures.ports import free_port
from tests.fixtures.stores import unique_name

gcp_kms = pytest.importorskip("backends.gcp_kms", reason="backends.gcp_kms failed to import")
kms_v1 = pytest.importorskip("google.cloud.kms_v1", reason="google-cloud-kms not installed (keyplane[gcp])")
grpc = pytest.importorskip("grpc", reason="grpcio not installed (keyplane[gcp])")

GcpKmsKeyStore = gcp_kms.GcpKmsKeyStore
gcp_retry = pytest.importorskip("backends.gcp_kms.retry", reason="backends.gcp_kms failed to import")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def p256(store: Any) -> Any:
    return store.create_key(unique_name("p256"), KeySpec.P256)


# -- the emulator speaks the real wire protocol -------------------------------------------------


def test_raw_sdk_client_signs_against_the_emulator(gcp_emulator: Any, gcp_token: str) -> None:
    from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport

    channel = grpc.insecure_channel(gcp_emulator.address)
    client = kms_v1.KeyManagementServiceClient(transport=KeyManagementServiceGrpcTransport(channel=channel))
    auth = [("authorization", f"Bearer {gcp_token}")]
    parent = f"projects/{PROJECT}/locations/global"
    ring = client.create_key_ring(parent=parent, key_ring_id=unique_name("raw"), key_ring={}, metadata=auth)
    key = client.create_crypto_key(parent=ring.name, crypto_key_id="k", metadata=auth, crypto_key={
        "purpose": "ASYMMETRIC_SIGN", "version_template": {"algorithm": "EC_SIGN_P384_SHA384"}})
    version = f"{key.name}/cryptoKeyVersions/1"
    state = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
    deadline = time.monotonic() + 10
    while client.get_crypto_key_version(name=version, metadata=auth).state != state.ENABLED:
        assert time.monotonic() < deadline, "version never became ENABLED"
    pem = client.get_public_key(name=version, metadata=auth)
    digest = hashlib.sha384(b"hello").digest()
    answer = client.asymmetric_sign(request={"name": version, "digest": {"sha384": digest},
                                             "digest_crc32c": gcp_kms._crc32c(digest)}, metadata=auth)
    assert answer.verified_digest_crc32c and answer.name == version
    assert answer.signature_crc32c == gcp_kms._crc32c(answer.signature)
    assert pem.pem_crc32c == gcp_kms._crc32c(pem.pem.encode())
    PublicKey.from_pem(pem.pem).verify(answer.signature, b"hello", SignatureAlgorithm.ES384)
    with pytest.raises(Exception) as excinfo:
        client.get_key_ring(name=ring.name, metadata=[("authorization", "Bearer nope")])
    assert type(excinfo.value).__name__ == "Unauthenticated"
    channel.close()


# -- every key spec ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(KeySpec), ids=str)
def test_create_open_sign_verify(store: Any, spec: KeySpec) -> None:
    signer = store.create_key(unique_name("spec"), spec)
    assert signer.algorithm is spec.default_algorithm
    assert signer.uri.endswith("/cryptoKeyVersions/1?" + store.uri.split("?", 1)[1])
    for message in (b"", b"x", os.urandom(4097)):
        signer.public_key.verify(signer.sign(message), message, signer.algorithm)
    again = store.open(signer.uri)
    assert again.key_id == signer.key_id == signer.public_key.key_id
    assert again.public_key == signer.public_key


@pytest.mark.parametrize("spec", [KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87], ids=str)
def test_mldsa_external_mu_signs_long_messages(store: Any, spec: KeySpec) -> None:
    signer = store.create_key(unique_name("mu"), spec)
    assert signer.gcp_algorithm.endswith("_EXTERNAL_MU")
    message = os.urandom(1 << 20)
    signature = signer.sign(message)
    assert len(signature) == spec.info.signature_size
    signer.public_key.verify(signature, message, signer.algorithm)


def test_pure_mldsa_and_ed25519_refuse_messages_over_64k(store: Any) -> None:
    pure = store.create_key(unique_name("pure"), KeySpec.ML_DSA_65, external_mu=False)
    assert pure.gcp_algorithm == "PQ_SIGN_ML_DSA_65"
    limit = os.urandom(64 * 1024)
    pure.public_key.verify(pure.sign(limit), limit, pure.algorithm)
    with pytest.raises(errors.AlgorithmNotSupported, match="external_mu=True"):
        pure.sign(limit + b"!")
    ed = store.create_key(unique_name("ed"), KeySpec.ED25519)
    ed.public_key.verify(ed.sign(limit), limit, ed.algorithm)
    with pytest.raises(errors.AlgorithmNotSupported, match="at most 65536 bytes"):
        ed.sign(limit + b"!")


@pytest.mark.parametrize(("spec", "algorithm", "gcp_algorithm"), [
    (KeySpec.RSA4096, SignatureAlgorithm.PS512, "RSA_SIGN_PSS_4096_SHA512"),
    (KeySpec.RSA2048, SignatureAlgorithm.RS256, "RSA_SIGN_PKCS1_2048_SHA256"),
    (KeySpec.RSA4096, SignatureAlgorithm.RS512, "RSA_SIGN_PKCS1_4096_SHA512"),
], ids=lambda v: str(v))
def test_rsa_algorithms(store: Any, spec: KeySpec, algorithm: SignatureAlgorithm, gcp_algorithm: str) -> None:
    signer = store.create_key(unique_name("rsa"), spec, algorithm=algorithm)
    assert (signer.algorithm, signer.gcp_algorithm) == (algorithm, gcp_algorithm)
    signer.public_key.verify(signer.sign(b"rsa"), b"rsa", algorithm)
    assert store.open(signer.uri).algorithm is algorithm  # the version's algorithm is fixed and reported
    with pytest.raises(errors.AlgorithmNotSupported, match="fixed"):
        store.open(signer.uri, algorithm=SignatureAlgorithm.PS256 if algorithm.is_pss is False else "RS256")


def test_algorithms_cloud_kms_lacks_are_refused(store: Any) -> None:
    with pytest.raises(errors.AlgorithmNotSupported):
        store.create_key(unique_name("x"), KeySpec.RSA2048, algorithm=SignatureAlgorithm.PS512)
    with pytest.raises(errors.AlgorithmNotSupported):
        store.create_key(unique_name("x"), KeySpec.RSA3072, algorithm=SignatureAlgorithm.RS384)


def test_every_cloud_kms_algorithm_is_in_the_table() -> None:
    known = {a.name for a in kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm}
    assert set(gcp_kms.ALGORITHMS) <= known
    from conformance.emulators import gcp_kms as emulator

    assert set(emulator.ALGORITHMS) == set(gcp_kms.ALGORITHMS)


def test_sign_is_one_round_trip(gcp_emulator: Any, p256: Any) -> None:
    before = gcp_emulator.calls
    p256.sign(b"one")
    after = gcp_emulator.calls
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {"AsymmetricSign": 1}


def test_sign_async_concurrently(p256: Any) -> None:
    async def many() -> list[bytes]:
        return await asyncio.gather(*(p256.sign_async(b"m%d" % i) for i in range(32)))

    for i, signature in enumerate(asyncio.run(many())):
        p256.public_key.verify(signature, b"m%d" % i, p256.algorithm)


# -- versions, rotation, listing, deletion ----------------------------------------------------


def test_rotate_pin_list_and_delete(store: Any) -> None:
    name = unique_name("rot")
    v1 = store.create_key(name, KeySpec.P256)
    with pytest.raises(errors.KeyExists):
        store.create_key(name, KeySpec.P256)
    v2 = store.rotate_key(name)
    assert v2.uri.split("?")[0].endswith(f"{name}/cryptoKeyVersions/2")
    assert v2.key_id != v1.key_id
    assert store.open(name).key_id == v2.key_id  # newest ENABLED version
    assert store.open(f"{name}/cryptoKeyVersions/1").key_id == v1.key_id  # pinned
    assert store.open(v1.uri).key_id == v1.key_id
    listed = {info.name: info for info in store.list_keys()}
    assert listed[name].version == "2" and listed[name].spec is KeySpec.P256 and listed[name].enabled
    store.delete_key(f"{name}/cryptoKeyVersions/2")  # one version
    assert store.open(name).key_id == v1.key_id
    with pytest.raises(errors.KeyNotFound, match="DESTROY_SCHEDULED"):
        store.open(v2.uri)
    with pytest.raises(errors.KeyNotFound):
        v2.sign(b"after destroy")
    store.delete_key(name)  # the rest
    with pytest.raises(errors.KeyNotFound):
        store.open(name)
    assert not {info.name: info for info in store.list_keys()}[name].enabled


def test_list_keys_pages_through_many_keys(gcp_emulator: Any) -> None:
    ring = unique_name("many")
    with GcpKmsKeyStore.from_uri(key_ring_uri(gcp_emulator.address, ring)) as s:
        names = {s.create_key(f"k{i:03d}", KeySpec.ED25519).uri.split("/cryptoKeys/")[1].split("/")[0]
                 for i in range(105)}
        assert {info.name for info in s.list_keys()} == names  # the emulator pages at 100


def test_open_by_uri_from_another_key_ring_is_refused(store: Any, gcp_emulator: Any) -> None:
    with pytest.raises(errors.ConfigError, match="not in key ring"):
        store.open(key_ring_uri(gcp_emulator.address, "elsewhere").split("?")[0] + "/cryptoKeys/k")


def test_signers_open_through_the_registry(gcp_store_uri: str, p256: Any) -> None:
    import signers

    signer = signers.open(p256.uri)
    signer.public_key.verify(signer.sign(b"registry"), b"registry", signer.algorithm)
    with signers.open_store(gcp_store_uri) as s:
        assert isinstance(s, GcpKmsKeyStore)


# -- integrity: a damaged answer is never a signature -----------------------------------------


@pytest.mark.parametrize("damage", ["crc32c", "signature_crc32c", "verified_crc32c", "name", "signature"])
def test_damaged_sign_answer_is_refused(gcp_emulator: Any, p256: Any, damage: str) -> None:
    gcp_emulator.corrupt_next = damage
    with pytest.raises(errors.BackendUnavailable, match="no signature returned"):
        p256.sign(b"integrity")
    assert gcp_emulator.corrupt_next is None  # the emulator really damaged that answer
    p256.public_key.verify(p256.sign(b"integrity"), b"integrity", p256.algorithm)


def test_request_damaged_in_transit_is_backend_unavailable(gcp_emulator: Any, p256: Any) -> None:
    gcp_emulator.corrupt_next = "request"
    with pytest.raises(errors.BackendUnavailable, match="checksum"):
        p256.sign(b"integrity")
    assert gcp_emulator.corrupt_next is None


def test_corrupt_next_crc32c_flag(gcp_emulator: Any, store: Any) -> None:
    ed = store.create_key(unique_name("crc"), KeySpec.ED25519)  # data_crc32c path
    gcp_emulator.corrupt_next_crc32c = True
    with pytest.raises(errors.BackendUnavailable, match="CRC32C"):
        ed.sign(b"integrity")
    ed.public_key.verify(ed.sign(b"integrity"), b"integrity", ed.algorithm)


def test_damaged_public_key_is_refused(gcp_emulator: Any, store: Any, p256: Any) -> None:
    gcp_emulator.corrupt_next = "public_key_crc32c"
    with pytest.raises(errors.BackendUnavailable, match="CRC32C"):
        store.open(p256.uri)


def test_emulator_refuses_a_request_whose_checksum_is_wrong(gcp_emulator: Any, gcp_token: str, p256: Any) -> None:
    channel = grpc.insecure_channel(gcp_emulator.address)
    stub = channel.unary_unary("/google.cloud.kms.v1.KeyManagementService/AsymmetricSign",
                               request_serializer=kms_v1.AsymmetricSignRequest.serialize,
                               response_deserializer=kms_v1.AsymmetricSignResponse.deserialize)
    digest = hashlib.sha256(b"x").digest()
    request = kms_v1.AsymmetricSignRequest(name=p256.version_name, digest={"sha256": digest},
                                           digest_crc32c=gcp_kms._crc32c(digest) ^ 1)
    with pytest.raises(grpc.RpcError) as excinfo:
        stub(request, metadata=[("authorization", f"Bearer {gcp_token}")])
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["no-such-key", "no-such-key/cryptoKeyVersions/1"])
def test_unknown_key(store: Any, missing: str) -> None:
    with pytest.raises(errors.KeyNotFound):
        store.open(missing)


def test_wrong_token_is_authentication_failed(gcp_emulator: Any) -> None:
    uri = key_ring_uri(gcp_emulator.address, "tests", BAD_TOKEN_ENV)
    with GcpKmsKeyStore.from_uri(uri) as s, pytest.raises(errors.AuthenticationFailed) as excinfo:
        list(s.list_keys())
    assert os.environ[BAD_TOKEN_ENV] not in str(excinfo.value)


def test_missing_token_is_authentication_failed(gcp_emulator: Any) -> None:
    uri = f"gcpkms://projects/{PROJECT}/locations/global/keyRings/tests?endpoint={gcp_emulator.address}&insecure=true"
    with GcpKmsKeyStore.from_uri(uri) as s, pytest.raises(errors.AuthenticationFailed):
        s.open("anything")


def test_other_project_is_permission_denied(gcp_emulator: Any) -> None:
    uri = key_ring_uri(gcp_emulator.address, "r", project="someone-else")
    with GcpKmsKeyStore.from_uri(uri) as s, pytest.raises(errors.PermissionDenied):
        s.create_key("k", KeySpec.P256)


def test_unreachable_is_backend_unavailable() -> None:
    uri = key_ring_uri(f"127.0.0.1:{free_port()}", "r") + "&timeout=3"
    with GcpKmsKeyStore.from_uri(uri) as s, pytest.raises(errors.BackendUnavailable) as excinfo:
        s.open("k")
    assert excinfo.value.cause is not None and excinfo.value.__cause__ is excinfo.value.cause


def test_unavailable_is_retried(gcp_emulator: Any, p256: Any) -> None:
    gcp_emulator.fail_next(grpc.StatusCode.UNAVAILABLE, 2)
    p256.public_key.verify(p256.sign(b"retry"), b"retry", p256.algorithm)
    gcp_emulator.fail_next(grpc.StatusCode.UNAVAILABLE, gcp_retry.ATTEMPTS)
    with pytest.raises(errors.BackendUnavailable):
        p256.sign(b"retry")


def test_create_is_not_retried_on_deadline(gcp_emulator: Any, store: Any) -> None:
    store.ensure_key_ring()
    gcp_emulator.fail_next(grpc.StatusCode.DEADLINE_EXCEEDED, 1)
    with pytest.raises(errors.BackendUnavailable):
        store.create_key(unique_name("dl"), KeySpec.P256)


@pytest.mark.parametrize("uri", [
    "gcpkms://projects/p/locations/l",
    "gcpkms://projects/p/locations/l/keyRings/r?endpoint=127.0.0.1:1&colour=blue",
    "gcpkms://projects/p/locations/l/keyRings/r?insecure=true",
    "gcpkms://projects/p/locations/l/keyRings/r?endpoint=127.0.0.1:1&insecure=maybe",
    "gcpkms://projects/p/locations/l/keyRings/r?endpoint=127.0.0.1:1&insecure=true&timeout=-1",
    "gcpkms://projects/p/locations/l/keyRings/r?endpoint=127.0.0.1:1&insecure=true&token-source=env:KP_UNSET_VAR",
    "awskms:///alias/x",
])
def test_bad_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(errors.ConfigError):
        GcpKmsKeyStore.from_uri(uri)


def test_bad_names_are_config_errors(store: Any) -> None:
    for name in ("", "a/b", "x" * 64, "k/cryptoKeyVersions/x"):
        with pytest.raises(errors.ConfigError):
            store.open(name)


def test_store_and_key_uris_round_trip(gcp_emulator: Any, gcp_store_uri: str, p256: Any) -> None:
    from_key = GcpKmsKeyStore.from_uri(p256.uri)
    assert from_key.uri == GcpKmsKeyStore.from_uri(gcp_store_uri).uri == gcp_store_uri
    assert from_key.open(p256.uri).key_id == p256.key_id
    triple = gcp_store_uri.replace("gcpkms://projects/", "gcpkms:///projects/")
    assert GcpKmsKeyStore.from_uri(triple).key_ring == from_key.key_ring
    from_key.close()
    with pytest.raises(errors.ConfigError, match="closed"):
        from_key.open(p256.uri)


# -- secrets -----------------------------------------------------------------------------------


def test_token_never_shows(gcp_emulator: Any, gcp_token: str, store: Any, p256: Any,
                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts = [repr(store), str(store), store.uri, repr(p256), p256.uri]
    signer = store.open(p256.uri)
    signer.sign(b"logged")
    with GcpKmsKeyStore.from_uri(key_ring_uri(gcp_emulator.address, "tests", BAD_TOKEN_ENV)) as bad:
        texts.append(repr(bad))
        with pytest.raises(errors.AuthenticationFailed) as excinfo:
            bad.open("k")
    texts += [str(excinfo.value), repr(excinfo.value), str(excinfo.value.__cause__)]
    texts += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    for text in texts:
        assert gcp_token not in text
        assert os.environ[BAD_TOKEN_ENV] not in text


def test_import_is_lazy() -> None:
    code = ("import sys, backends.gcp_kms, signers; "
            "bad = [m for m in ('google.cloud.kms_v1', 'grpc', 'google.auth') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# -- keyplane emulator gcp --------------------------------------------------------------------


def test_emulator_command_serves_until_interrupted(tmp_path: Any) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "signers.cli", "emulator", "gcp", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # blocks until the server prints its address (or exits)
        assert f"127.0.0.1:{port}" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
        uri = f"gcpkms://projects/demo/locations/global/keyRings/demo?endpoint=127.0.0.1:{port}&insecure=true"
        with GcpKmsKeyStore.from_uri(uri) as s:
            signer = s.create_key("cli", KeySpec.ED25519)
            signer.public_key.verify(signer.sign(b"cli"), b"cli", signer.algorithm)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- other ways in: an injected client, TLS with a static token, Application Default Credentials --


def test_injected_client(gcp_emulator: Any, gcp_token: str) -> None:
    """A caller-built client (own channel, own auth) is used as is, and not closed by the store."""
    from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport

    fields = ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    details_type = collections.namedtuple("details_type", fields)  # type: ignore[misc]

    class Auth(grpc.UnaryUnaryClientInterceptor):  # type: ignore[name-defined]
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            values = {f: getattr(details, f, None) for f in fields}
            values["metadata"] = [*(details.metadata or ()), ("authorization", f"Bearer {gcp_token}")]
            return continuation(details_type(**values), request)

    channel = grpc.intercept_channel(grpc.insecure_channel(gcp_emulator.address), Auth())
    client = kms_v1.KeyManagementServiceClient(transport=KeyManagementServiceGrpcTransport(channel=channel))
    store = GcpKmsKeyStore(f"projects/{PROJECT}/locations/global/keyRings/injected", client=client)
    signer = store.create_key("k", KeySpec.SECP256K1)
    signer.public_key.verify(signer.sign(b"injected"), b"injected", signer.algorithm)
    store.close()
    assert client.get_key_ring(name=store.key_ring).name == store.key_ring  # still open: the caller's
    channel.close()


def test_tls_endpoint_with_static_token_is_backend_unavailable_when_closed(gcp_token: str) -> None:
    uri = (f"gcpkms://projects/{PROJECT}/locations/global/keyRings/r?endpoint=127.0.0.1:{free_port()}"
           "&token-source=env:KEYPLANE_TEST_GCP_TOKEN&timeout=3")
    with GcpKmsKeyStore.from_uri(uri) as s, pytest.raises(errors.BackendUnavailable) as excinfo:
        s.open("k")
    assert gcp_token not in str(excinfo.value)


def test_no_application_default_credentials_is_authentication_failed(tmp_path: Any) -> None:
    code = ("from backends.gcp_kms import GcpKmsKeyStore\n"
            "from signers.errors import AuthenticationFailed\n"
            "try:\n"
            "    GcpKmsKeyStore.from_uri('gcpkms://projects/p/locations/global/keyRings/r')\n"
            "except AuthenticationFailed as e:\n"
            "    print('AuthenticationFailed', e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_"))}
    env.update(HOME=str(tmp_path), NO_GCE_CHECK="True", CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("AuthenticationFailed"), out.stdout + out.stderr
