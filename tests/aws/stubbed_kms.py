"""AWS KMS key types moto lacks (Ed25519, ML-DSA), judged with botocore's Stubber.

The Stubber sits on the store's own boto3 client and checks every request against the
shapes the AWS KMS API reference documents (KeySpec, SigningAlgorithm, MessageType RAW /
EXTERNAL_MU, a 64-byte mu); the responses carry real keys and real signatures made by
`cryptography`, which the back end must hand back unchanged and which must verify.

Each scenario returns a one-line account of what it proved (or raises), so the same code
serves the pytest cases (test_stubbed.py) and the "stubbed" rows of the conformance report.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization

from backends.aws_kms import AwsKmsKeyStore, AwsKmsSigner, KeyDisabled
from signers.algorithms import KeyFamily, KeySpec
from signers.errors import AlgorithmNotSupported, KeyNotFound
from signers.local_keys import PrivateKey, generate_private_key

REGION = "us-east-1"
ACCOUNT = "111122223333"
STUBBED_SPECS = (KeySpec.ED25519, KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87)
AWS_KEY_SPEC = {KeySpec.ED25519: "ECC_NIST_EDWARDS25519", KeySpec.ML_DSA_44: "ML_DSA_44",
                KeySpec.ML_DSA_65: "ML_DSA_65", KeySpec.ML_DSA_87: "ML_DSA_87"}
AWS_ALGORITHMS = {KeySpec.ED25519: ["ED25519_SHA_512", "ED25519_PH_SHA_512"]}
MU_SIZE = 64


@dataclass
class RemoteKey:
    """What the stubbed "service" holds: a real private key and the ids AWS would give it."""

    spec: KeySpec
    private: PrivateKey
    key_id: str
    alias: str

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.key_id}"

    @property
    def public_der(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def algorithm(self) -> str:
        return "ED25519_SHA_512" if self.spec is KeySpec.ED25519 else "ML_DSA_SHAKE_256"

    def metadata(self, state: str = "Enabled") -> dict[str, Any]:
        return {"KeyId": self.key_id, "Arn": self.arn, "KeyState": state, "Enabled": state == "Enabled",
                "KeyUsage": "SIGN_VERIFY", "KeySpec": AWS_KEY_SPEC[self.spec],
                "SigningAlgorithms": AWS_ALGORITHMS.get(self.spec, ["ML_DSA_SHAKE_256"])}

    def get_public_key(self) -> dict[str, Any]:
        return {"KeyId": self.arn, "PublicKey": self.public_der, "KeySpec": AWS_KEY_SPEC[self.spec],
                "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": AWS_ALGORITHMS.get(self.spec, ["ML_DSA_SHAKE_256"])}


def new_remote_key(spec: KeySpec, alias: str = "stubbed") -> RemoteKey:
    return RemoteKey(spec, generate_private_key(spec), _uuid(), f"alias/{alias}")


def _uuid() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def external_mu(public_raw: bytes, message: bytes) -> bytes:
    """FIPS 204 mu for pure ML-DSA with an empty context, from hashlib (independent of the back end).

    tr = SHAKE256(pk, 64); mu = SHAKE256(tr || 0x00 || 0x00 || M, 64).
    """
    tr = hashlib.shake_256(public_raw).digest(64)
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(MU_SIZE)


def expected_request(key: RemoteKey, message: bytes) -> tuple[dict[str, Any], bytes]:
    """(the Sign request AWS documents for `message`, a real signature for it)."""
    if key.spec.family is KeyFamily.MLDSA and not 1 <= len(message) <= 4096:
        mu = external_mu(key.private.public_key().public_bytes_raw(), message)  # type: ignore[union-attr]
        assert len(mu) == MU_SIZE
        request = {"KeyId": key.arn, "Message": mu, "MessageType": "EXTERNAL_MU", "SigningAlgorithm": key.algorithm}
        return request, key.private.sign_mu(mu)  # type: ignore[union-attr]
    request = {"KeyId": key.arn, "Message": message, "MessageType": "RAW", "SigningAlgorithm": key.algorithm}
    return request, key.private.sign(message)  # type: ignore[call-arg]


@contextmanager
def stubbed_store() -> Iterator[tuple[AwsKmsKeyStore, Stubber]]:
    """A real store whose client answers from the Stubber; nothing leaves the process."""
    store = AwsKmsKeyStore.from_uri(f"awskms:///?region={REGION}")
    with Stubber(store.client) as stubber:
        yield store, stubber
        stubber.assert_no_pending_responses()
    store.close()


def stub_open(stubber: Stubber, key: RemoteKey, ref: str) -> None:
    stubber.add_response("describe_key", {"KeyMetadata": key.metadata()}, {"KeyId": ref})
    stubber.add_response("get_public_key", key.get_public_key(), {"KeyId": key.arn})


def stub_sign(stubber: Stubber, key: RemoteKey, request: dict[str, Any], signature: bytes) -> None:
    stubber.add_response("sign", {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": key.algorithm},
                         request)


@contextmanager
def stubbed_signer(spec: KeySpec) -> Iterator[tuple[RemoteKey, AwsKmsKeyStore, Stubber, AwsKmsSigner]]:
    """A new remote key of `spec` and (key, store, stubber, signer): the signer opened by alias via the Stubber."""
    key = new_remote_key(spec)
    with stubbed_store() as (store, stubber):
        stub_open(stubber, key, key.alias)
        yield key, store, stubber, store.open(key.alias)


# -- scenarios (each returns what it proved) --------------------------------------------------


def scenario_create(spec: KeySpec) -> str:
    key = new_remote_key(spec, "agent-ca")
    with stubbed_store() as (store, stubber):
        stubber.add_client_error("describe_key", "NotFoundException", "Alias is not found.", 400,
                                 expected_params={"KeyId": key.alias})
        stubber.add_response(
            "create_key", {"KeyMetadata": key.metadata()},
            {"KeyUsage": "SIGN_VERIFY", "KeySpec": AWS_KEY_SPEC[spec], "Tags": [{"TagKey": "team", "TagValue": "a"}]},
        )
        stubber.add_response("create_alias", {}, {"AliasName": key.alias, "TargetKeyId": key.key_id})
        stub_open(stubber, key, key.alias)
        signer = store.create_key("agent-ca", spec, tags={"team": "a"})
    _same_key(signer, key)
    return (f"CreateKey KeyUsage=SIGN_VERIFY KeySpec={AWS_KEY_SPEC[spec]}, CreateAlias, "
            f"DescribeKey + GetPublicKey (DER SPKI) -> {signer.public_key.spec.value}, RFC 7638 key_id")


def scenario_open(spec: KeySpec) -> str:
    key = new_remote_key(spec)
    with stubbed_store() as (store, stubber):
        for ref in (key.alias, key.key_id, key.arn):
            stub_open(stubber, key, ref)
            _same_key(store.open(ref), key)
    return "open by alias, key id and ARN: same public key and key_id"


def scenario_sign(spec: KeySpec, sizes: tuple[int, ...] = (1, 32, 4096)) -> str:
    """Sign every size through the documented request shape; the returned signature must verify."""
    return signed_messages(spec, sizes)[2]


def signed_messages(spec: KeySpec, sizes: tuple[int, ...]) -> tuple[AwsKmsSigner, list[tuple[bytes, bytes]], str]:
    """(signer, [(message, signature)], what was proved) for messages of `sizes`, through the Stubber."""
    shapes, pairs = [], []
    with stubbed_signer(spec) as (key, _store, stubber, signer):
        for size in sizes:
            message = os.urandom(size)
            request, signature = expected_request(key, message)
            stub_sign(stubber, key, request, signature)
            got = signer.sign(message)
            if got != signature:
                raise AssertionError(f"{size} B: the back end changed the signature KMS returned")
            signer.public_key.verify(got, message, signer.algorithm)
            pairs.append((message, got))
            shapes.append(f"{_size(size)} {request['MessageType']}"
                          + (f" (mu {len(request['Message'])} B)" if request["MessageType"] == "EXTERNAL_MU" else ""))
    detail = f"{key.algorithm}: " + ", ".join(shapes) + "; signatures by cryptography returned unchanged and verify"
    return signer, pairs, detail


def scenario_ed25519_limits() -> str:
    """Pure Ed25519 is RAW-only on KMS: an empty or >4096-byte message is refused before any request."""
    with stubbed_signer(KeySpec.ED25519) as (_key, _store, _stubber, signer):
        for size in (0, 4097, 1 << 20):
            try:
                signer.sign(os.urandom(size))
            except AlgorithmNotSupported:
                continue
            raise AssertionError(f"Ed25519 over {size} B did not raise AlgorithmNotSupported")
    return "0 B, 4097 B and 1 MiB refused with AlgorithmNotSupported, no Sign sent (KMS has only RAW pure Ed25519)"


def scenario_states(spec: KeySpec) -> str:
    with stubbed_signer(spec) as (key, store, stubber, signer):
        request, _ = expected_request(key, b"m")
        stubber.add_client_error("sign", "DisabledException", f"{key.arn} is disabled.", 400, expected_params=request)
        stubber.add_client_error("sign", "KMSInvalidStateException", f"{key.arn} is pending deletion.", 400,
                                 expected_params=request)
        stubber.add_client_error("describe_key", "NotFoundException", "not found", 400,
                                 expected_params={"KeyId": "alias/gone"})
        _expect(KeyDisabled, signer.sign, b"m")
        _expect(KeyNotFound, signer.sign, b"m")
        _expect(KeyNotFound, store.open, "gone")
    return "DisabledException -> KeyDisabled, pending deletion -> KeyNotFound, NotFoundException -> KeyNotFound"


def sizes_for(spec: KeySpec) -> tuple[int, ...]:
    """The harness's message sizes, minus what pure Ed25519 cannot take on KMS (proved refused instead)."""
    return (1, 32, 4096) if spec is KeySpec.ED25519 else (0, 1, 32, 4096, 4097, 1 << 20)


def scenario_delete(spec: KeySpec) -> str:
    """delete_key: the alias goes, deletion is scheduled (7 days), and the key is then KeyNotFound."""
    key = new_remote_key(spec)
    with stubbed_store() as (store, stubber):
        stubber.add_response("describe_key", {"KeyMetadata": key.metadata()}, {"KeyId": key.alias})
        stubber.add_response("list_aliases", {"Aliases": [{"AliasName": key.alias, "TargetKeyId": key.key_id}],
                                              "Truncated": False}, {"KeyId": key.key_id})
        stubber.add_response("delete_alias", {}, {"AliasName": key.alias})
        stubber.add_response("schedule_key_deletion", {"KeyId": key.arn, "KeyState": "PendingDeletion",
                                                       "PendingWindowInDays": 7},
                             {"KeyId": key.key_id, "PendingWindowInDays": 7})
        stubber.add_response("describe_key", {"KeyMetadata": key.metadata("PendingDeletion")}, {"KeyId": key.arn})
        store.delete_key(key.alias)
        _expect(KeyNotFound, store.open, key.arn)
    return "DeleteAlias + ScheduleKeyDeletion(PendingWindowInDays=7); open after delete raises KeyNotFound"


def scenario_list(spec: KeySpec) -> str:
    key = new_remote_key(spec, "listed")
    with stubbed_store() as (store, stubber):
        stubber.add_response("list_aliases", {"Aliases": [{"AliasName": key.alias, "TargetKeyId": key.key_id}],
                                              "Truncated": False}, {})
        stubber.add_response("list_keys", {"Keys": [{"KeyId": key.key_id, "KeyArn": key.arn}], "Truncated": False}, {})
        stubber.add_response("describe_key", {"KeyMetadata": key.metadata()}, {"KeyId": key.key_id})
        listed = list(store.list_keys())
    if [(i.name, i.spec) for i in listed] != [("listed", spec)]:
        raise AssertionError(f"list_keys gave {listed}")
    return f"ListAliases + ListKeys + DescribeKey: found as 'listed' ({spec.value})"


def scenario_async(spec: KeySpec) -> str:
    with stubbed_signer(spec) as (key, _store, stubber, signer):
        request, signature = expected_request(key, b"async")
        stub_sign(stubber, key, request, signature)
        got = asyncio.run(signer.sign_async(b"async"))
    signer.public_key.verify(got, b"async", signer.algorithm)
    return "sign_async sends the same RAW request and the signature verifies"


SCENARIOS: dict[str, Callable[[KeySpec], str]] = {
    "create": scenario_create,
    "open": scenario_open,
    "sign-verify": lambda spec: scenario_sign(spec, sizes_for(spec)),
    "errors": scenario_states,
    "delete": scenario_delete,
    "list-keys": scenario_list,
    "async": scenario_async,
}


def _same_key(signer: AwsKmsSigner, key: RemoteKey) -> None:
    if signer.public_key.to_der() != key.public_der or signer.key_arn != key.arn:
        raise AssertionError("opened a different key than the service holds")
    if signer.public_key.spec is not key.spec or signer.algorithm is not key.spec.default_algorithm:
        raise AssertionError(f"{signer.public_key.spec} / {signer.algorithm} for a {key.spec} key")


def _expect(error: type[Exception], call: Callable[..., Any], *args: Any) -> None:
    try:
        call(*args)
    except error:
        return
    raise AssertionError(f"{call.__name__}{args!r} did not raise {error.__name__}")


def _size(size: int) -> str:
    return "1 MiB" if size == 1 << 20 else f"{size} B"


__all__ = ["SCENARIOS", "STUBBED_SPECS", "expected_request", "external_mu", "scenario_ed25519_limits",
           "scenario_sign", "stubbed_store"]
