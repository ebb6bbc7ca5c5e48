"""The AWS KMS back end against moto's KMS server over real HTTP (see tests/fixtures/moto.py).

Every signature is verified with `cryptography` through PublicKey.verify. The wire is
observed with botocore's own event hooks (nothing is mocked): what goes out is what
moto answers.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.aws_kms import AwsKmsKeyStore, AwsKmsSigner, KeyDisabled
from signers import errors
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.signer import DigestSigner, DisablingKeyStore, RotatingKeyStore
from tests.fixtures.moto import REGION, WRONG_SECRET_PROFILE, MotoKms
from tests.fixtures.ports import free_port

MOTO_SPECS = [KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096]
SIZES = [0, 1, 4096, 4097, 1 << 20]
ROOT = Path(__file__).resolve().parents[2]


class SignRecorder:
    """Records every Sign request's parameters through botocore's event system."""

    def __init__(self, store: AwsKmsKeyStore) -> None:
        self.requests: list[dict[str, Any]] = []
        self._events = store.client.meta.events
        self._events.register("provide-client-params.kms.Sign", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    def close(self) -> None:
        self._events.unregister("provide-client-params.kms.Sign", self._record)


@pytest.fixture
def recorder(store: AwsKmsKeyStore) -> Iterator[SignRecorder]:
    rec = SignRecorder(store)
    yield rec
    rec.close()


# -- signing -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", MOTO_SPECS, ids=str)
def test_every_length_signs_and_verifies(store: AwsKmsKeyStore, name: str, spec: KeySpec, recorder: SignRecorder) -> None:
    signer = store.create_key(name, spec)
    for size in SIZES:
        message = os.urandom(size)
        signature = signer.sign(message)
        signer.public_key.verify(signature, message, signer.algorithm)
    shapes = [(r["MessageType"], len(r["Message"])) for r in recorder.requests]
    digest_size = signer.algorithm.hash_algorithm().digest_size
    # Empty and long messages are hashed here; the wire never carries more than 4096 bytes.
    assert shapes == [("DIGEST", digest_size), ("RAW", 1), ("RAW", 4096), ("DIGEST", digest_size),
                      ("DIGEST", digest_size)]
    assert {r["KeyId"] for r in recorder.requests} == {signer.key_arn}


def test_one_mebibyte_with_p256(store: AwsKmsKeyStore, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    message = os.urandom(1 << 20)
    signature = signer.sign(message)
    signer.public_key.verify(signature, message, SignatureAlgorithm.ES256)
    with pytest.raises(Exception, match="does not verify"):
        signer.public_key.verify(signature, message[:-1] + bytes([message[-1] ^ 1]), SignatureAlgorithm.ES256)


@pytest.mark.parametrize("algorithm", [a for a in SignatureAlgorithm if KeySpec.RSA2048 in a.specs], ids=str)
def test_every_rsa_algorithm(store: AwsKmsKeyStore, name: str, algorithm: SignatureAlgorithm) -> None:
    signer = store.create_key(name, KeySpec.RSA2048, algorithm=algorithm)
    assert signer.algorithm is algorithm
    for message in (b"short", os.urandom(5000)):
        signature = signer.sign(message)
        assert len(signature) == 256
        signer.public_key.verify(signature, message, algorithm)


def test_algorithm_from_uri_and_mismatch(store: AwsKmsKeyStore, name: str) -> None:
    signer = store.create_key(name, KeySpec.RSA2048)
    pkcs1 = store.open(signer.uri.replace("?", "?algorithm=RS384&"))
    assert pkcs1.algorithm is SignatureAlgorithm.RS384
    pkcs1.public_key.verify(pkcs1.sign(b"m"), b"m", SignatureAlgorithm.RS384)
    with pytest.raises(errors.AlgorithmNotSupported):
        store.open(name, SignatureAlgorithm.ES256)


# -- keys: create, open, list, delete, disable --------------------------------------------


def test_open_by_id_alias_arn_and_uri(store: AwsKmsKeyStore, moto_server: MotoKms, name: str) -> None:
    created = store.create_key(name, KeySpec.P256)
    assert created.uri == f"awskms://127.0.0.1:{moto_server.port}/alias/{name}?region={REGION}"
    key_id = created.key_arn.rsplit("/", 1)[1]
    ways = [name, f"alias/{name}", key_id, created.key_arn, created.uri,
            f"awskms://127.0.0.1:{moto_server.port}/{key_id}?region={REGION}"]
    for way in ways:
        opened = store.open(way)
        assert (opened.key_id, opened.key_arn, opened.public_key) == (created.key_id, created.key_arn, created.public_key)
    by_arn = store.open(created.key_arn)
    assert by_arn.uri == f"awskms://127.0.0.1:{moto_server.port}/{created.key_arn}"  # the ARN carries the region
    # A key URI alone opens the store and the key (what the harness's child processes do).
    import signers

    signer = signers.open(created.uri)
    assert isinstance(signer, AwsKmsSigner) and signer.key_id == created.key_id
    signer.public_key.verify(signer.sign(b"via signers.open"), b"via signers.open")


def test_create_sets_usage_spec_description_tags(store: AwsKmsKeyStore, moto_server: MotoKms, name: str) -> None:
    signer = store.create_key(name, KeySpec.P384, description="keyplane test", tags={"team": "agents", "n": 1})
    client = moto_server.client()
    metadata = client.describe_key(KeyId=signer.key_arn)["KeyMetadata"]
    assert (metadata["KeyUsage"], metadata["KeySpec"], metadata["Description"]) == (
        "SIGN_VERIFY", "ECC_NIST_P384", "keyplane test")
    tags = client.list_resource_tags(KeyId=signer.key_arn)["Tags"]
    assert sorted((t["TagKey"], t["TagValue"]) for t in tags) == [("n", "1"), ("team", "agents")]


def test_create_without_alias(store: AwsKmsKeyStore, moto_server: MotoKms) -> None:
    signer = store.create_key(None, KeySpec.P256)
    key_id = signer.key_arn.rsplit("/", 1)[1]
    assert signer.uri == f"awskms://127.0.0.1:{moto_server.port}/{key_id}?region={REGION}"


def test_taken_alias_is_key_exists_and_leaves_no_key(store: AwsKmsKeyStore, moto_server: MotoKms, name: str) -> None:
    store.create_key(name, KeySpec.P256)
    client = moto_server.client()
    before = len(client.list_keys()["Keys"])
    with pytest.raises(errors.KeyExists):
        store.create_key(name, KeySpec.P256)
    assert len(client.list_keys()["Keys"]) == before


@pytest.mark.parametrize("bad", ["bad name!", "alias/aws/reserved"])
def test_invalid_alias_refused(store: AwsKmsKeyStore, bad: str) -> None:
    with pytest.raises(errors.ConfigError):
        store.create_key(bad, KeySpec.P256)


def test_list_names_specs_and_hides_deleted(store: AwsKmsKeyStore, name: str) -> None:
    signer = store.create_key(name, KeySpec.SECP256K1)
    listed = {info.name: info for info in store.list_keys()}
    assert listed[name].spec is KeySpec.SECP256K1
    assert listed[name].uri == signer.uri and listed[name].enabled
    assert listed[name].extra["arn"] == signer.key_arn
    store.delete_key(name)
    assert name not in {info.name for info in store.list_keys()}


def test_delete_schedules_deletion_and_frees_the_name(store: AwsKmsKeyStore, moto_server: MotoKms, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    store.delete_key(name)
    metadata = moto_server.client().describe_key(KeyId=signer.key_arn)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    for way in (name, signer.key_arn):
        with pytest.raises(errors.KeyNotFound):
            store.open(way)
    with pytest.raises(errors.KeyNotFound, match="scheduled for deletion"):
        signer.sign(b"too late")
    with pytest.raises(errors.KeyNotFound):
        store.delete_key(name)
    again = store.create_key(name, KeySpec.P256)  # the alias went with the delete
    assert again.key_arn != signer.key_arn


def test_disabled_key_is_a_typed_error_until_enabled(store: AwsKmsKeyStore, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    store.disable_key(name)
    with pytest.raises(KeyDisabled, match="disabled"):
        signer.sign(b"m")
    with pytest.raises(KeyDisabled, match="Disabled"):
        store.open(name)
    assert isinstance(KeyDisabled("x"), errors.PermissionDenied)
    assert not {i.name: i for i in store.list_keys()}[name].enabled
    store.enable_key(name)
    signer.public_key.verify(signer.sign(b"m"), b"m")


def test_signer_keeps_its_key_when_the_alias_moves(store: AwsKmsKeyStore, moto_server: MotoKms, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    other = store.create_key(None, KeySpec.P256)
    moto_server.client().update_alias(AliasName=f"alias/{name}", TargetKeyId=other.key_arn)
    signer.public_key.verify(signer.sign(b"m"), b"m")  # still the key whose public key it cached
    assert store.open(name).key_id == other.key_id


@pytest.mark.parametrize(
    "missing",
    ["no-such-alias", "alias/no-such-alias", "11111111-2222-3333-4444-555555555555",
     "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555", "not a key"],
)
def test_unknown_key_is_key_not_found(store: AwsKmsKeyStore, missing: str) -> None:
    with pytest.raises(errors.KeyNotFound):
        store.open(missing)


@pytest.mark.parametrize("foreign", ["awskms://127.0.0.1:1/alias/x?region=us-east-1",
                                     "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"])
def test_key_from_another_endpoint_or_region_refused(store: AwsKmsKeyStore, foreign: str) -> None:
    with pytest.raises(errors.ConfigError):
        store.open(foreign)


def test_ed25519_plain_moto_lacks_is_served_by_the_aws_emulator(store: AwsKmsKeyStore) -> None:
    """moto 5.2.5 refuses ECC_NIST_EDWARDS25519; `keyplane emulator aws` (the fixture) serves it as AWS does."""
    signer = store.create_key(None, KeySpec.ED25519)
    signer.public_key.verify(signer.sign(b"m" * 100), b"m" * 100, signer.algorithm)


# -- errors ------------------------------------------------------------------------------


def test_wrong_secret_is_authentication_failed(moto_store_uri: str, moto_server: MotoKms) -> None:
    store = AwsKmsKeyStore.from_uri(f"{moto_store_uri}&profile={WRONG_SECRET_PROFILE}")
    with pytest.raises(errors.AuthenticationFailed) as caught:
        list(store.list_keys())
    assert moto_server.secret_access_key not in str(caught.value)


def test_unknown_access_key_is_authentication_failed(moto_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    with pytest.raises(errors.AuthenticationFailed, match="credentials rejected"):
        AwsKmsKeyStore.from_uri(moto_store_uri).open("anything")


def test_no_credentials_is_authentication_failed(moto_store_uri: str, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(errors.AuthenticationFailed):
        AwsKmsKeyStore.from_uri(moto_store_uri).open("anything")


def test_policy_without_sign_is_permission_denied(store: AwsKmsKeyStore, moto_store_uri: str, moto_server: MotoKms,
                                                  name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create_key(name, KeySpec.P256)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_server.readonly_access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_server.readonly_secret_access_key)
    readonly = AwsKmsKeyStore.from_uri(moto_store_uri).open(name)  # DescribeKey + GetPublicKey are allowed
    with pytest.raises(errors.PermissionDenied, match="AccessDenied"):
        readonly.sign(b"m")


def test_unknown_profile_and_missing_region_are_config_errors(moto_server: MotoKms,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.ConfigError):
        AwsKmsKeyStore.from_uri(f"awskms://127.0.0.1:{moto_server.port}/?profile=nobody")
    assert AwsKmsKeyStore.from_uri(f"awskms://127.0.0.1:{moto_server.port}/").region == REGION  # from AWS_REGION
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(errors.ConfigError, match="region"):
        AwsKmsKeyStore.from_uri(f"awskms://127.0.0.1:{moto_server.port}/")


def test_unreachable_is_backend_unavailable() -> None:
    store = AwsKmsKeyStore.from_uri(f"awskms://127.0.0.1:{free_port()}/?region={REGION}&max-attempts=2")
    with pytest.raises(errors.BackendUnavailable) as caught:
        store.open("anything")
    assert caught.value.cause is not None and caught.value.__cause__ is caught.value.cause


class FailingKms(http.server.ThreadingHTTPServer):
    """A loopback HTTP server answering every KMS call with one fixed error; counts the attempts."""

    def __init__(self, status: int, error_type: str) -> None:
        self.attempts = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.attempts += 1
                body = json.dumps({"__type": error_type, "message": "try later"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.mark.parametrize(("status", "error_type"), [(400, "ThrottlingException"), (500, "KMSInternalException"),
                                                     (503, "ServiceUnavailableException")])
def test_throttling_and_5xx_are_retried_then_backend_unavailable(status: int, error_type: str) -> None:
    server = FailingKms(status, error_type)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"awskms://127.0.0.1:{server.server_address[1]}/?region={REGION}&max-attempts=3"
        with pytest.raises(errors.BackendUnavailable, match=error_type) as caught:
            AwsKmsKeyStore.from_uri(uri).open("anything")
        assert server.attempts == 3  # standard retry mode: the first try and two retries
        assert caught.value.retryable
    finally:
        server.shutdown()
        server.server_close()


def test_secrets_stay_out_of_reprs(store: AwsKmsKeyStore, moto_server: MotoKms, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    for text in (repr(store), str(store.uri), repr(signer), signer.uri):
        assert moto_server.secret_access_key not in text and moto_server.access_key_id not in text


# -- import weight -----------------------------------------------------------------------


def test_boto3_is_not_imported_by_signers_or_the_back_end_module() -> None:
    code = ("import sys, signers, backends.aws_kms; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_boto3_is_not_imported_by_keyplane_help() -> None:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run([sys.executable, "-c", "import sys; from signers.cli import main; sys.argv=['keyplane', "
                           "'--help']; main()"], cwd=ROOT, env=env, capture_output=True, text=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert done.returncode == 0, done.stderr[-2000:]
    assert not imported & {"boto3", "botocore"}


def test_endpoint_and_region_from_the_aws_environment(store: AwsKmsKeyStore, moto_server: MotoKms, name: str,
                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    signer = store.create_key(name, KeySpec.P256)
    config = tmp_path / "config"
    config.write_text(f"[profile ci]\nregion = {REGION}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_server.endpoint)
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_PROFILE", "ci")  # from the env, the profile still lets env credentials win
    via_env = AwsKmsKeyStore.from_uri("awskms:///")  # endpoint from env, region from the profile
    assert via_env.region == REGION
    assert via_env.open(name).key_id == signer.key_id


@pytest.mark.parametrize(("spec", "algorithm"), [(KeySpec.P256, "ES256"), (KeySpec.P384, "ES384"),
                                                 (KeySpec.RSA2048, "PS256"), (KeySpec.RSA2048, "RS384")])
def test_sign_digest_sends_the_digest_once(store: AwsKmsKeyStore, name: str, spec: KeySpec, algorithm: str,
                                           recorder: SignRecorder) -> None:
    import hashlib

    signer = store.create_key(name, spec, algorithm=algorithm)
    assert isinstance(signer, DigestSigner)
    digest = hashlib.new(str(signer.algorithm.hash_name), b"message").digest()
    signer.public_key.verify(signer.sign_digest(digest), b"message", signer.algorithm)
    assert recorder.requests[-1]["MessageType"] == "DIGEST" and recorder.requests[-1]["Message"] == digest
    with pytest.raises(errors.ConfigError, match="digest"):
        signer.sign_digest(digest[:-1])


def test_lifecycle_protocols_and_scheduled_deletion(store: AwsKmsKeyStore) -> None:
    assert isinstance(store, DisablingKeyStore) and not isinstance(store, RotatingKeyStore)
    assert store.capabilities.deletion == "scheduled"
    assert AwsKmsKeyStore.signer_class is AwsKmsSigner
