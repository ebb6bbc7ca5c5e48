"""BYOK into AWS KMS: the documented import flow (botocore Stubber; moto has no import) and moto's honest refusal."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.stub import ANY
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backends.aws_kms import AwsKmsKeyStore
from signers.algorithms import KeySpec
from signers.errors import AlgorithmNotSupported, ConfigError
from signers.local_keys import generate_private_key
from signers.signer import ImportingKeyStore
from tests.fixtures.moto import MotoKms

from .stubbed_kms import REGION, stubbed_store

ACCOUNT = "111122223333"


def unwrap(wrapping: rsa.RSAPrivateKey, blob: bytes) -> bytes:
    """What KMS does with EncryptedKeyMaterial under RSA_AES_KEY_WRAP_SHA_256."""
    size = wrapping.key_size // 8
    aes = wrapping.decrypt(blob[:size], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                                                     label=None))
    return keywrap.aes_key_unwrap_with_padding(aes, blob[size:])


@pytest.mark.parametrize(("spec", "aws_spec"), [(KeySpec.P256, "ECC_NIST_P256"), (KeySpec.SECP256K1, "ECC_SECG_P256K1"),
                                                (KeySpec.RSA2048, "RSA_2048")], ids=str)
def test_documented_import_flow_wraps_the_pkcs8_key(spec: KeySpec, aws_spec: str) -> None:
    key = generate_private_key(spec)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    wrapping = rsa.generate_private_key(65537, 4096)
    key_id = str(uuid.uuid4())
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    seen: dict[str, Any] = {}
    with stubbed_store() as (store, stubber):
        assert isinstance(store, ImportingKeyStore)
        stubber.add_client_error("describe_key", "NotFoundException", expected_params={"KeyId": "alias/byok"})
        stubber.add_response("create_key", {"KeyMetadata": {"KeyId": key_id, "Arn": arn, "KeyState": "PendingImport"}},
                             {"KeyUsage": "SIGN_VERIFY", "KeySpec": aws_spec, "Origin": "EXTERNAL"})
        stubber.add_response("get_parameters_for_import", {
            "KeyId": arn, "ImportToken": b"token-bytes",
            "PublicKey": wrapping.public_key().public_bytes(serialization.Encoding.DER,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)},
            {"KeyId": key_id, "WrappingAlgorithm": "RSA_AES_KEY_WRAP_SHA_256", "WrappingKeySpec": "RSA_4096"})
        stubber.add_response("import_key_material", {"KeyId": arn}, {
            "KeyId": key_id, "ImportToken": b"token-bytes", "EncryptedKeyMaterial": ANY,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})

        def capture(params: dict[str, Any], **_: Any) -> None:
            seen["blob"] = params["EncryptedKeyMaterial"]

        store.client.meta.events.register("provide-client-params.kms.ImportKeyMaterial", capture)
        stubber.add_response("create_alias", {}, {"AliasName": "alias/byok", "TargetKeyId": key_id})
        metadata = {"KeyId": key_id, "Arn": arn, "KeyState": "Enabled", "KeyUsage": "SIGN_VERIFY", "KeySpec": aws_spec}
        stubber.add_response("describe_key", {"KeyMetadata": metadata}, {"KeyId": "alias/byok"})
        stubber.add_response("get_public_key", {"KeyId": arn, "PublicKey": public_der, "KeySpec": aws_spec,
                                                "KeyUsage": "SIGN_VERIFY"}, {"KeyId": arn})
        signer = store.import_key("byok", key)
        stubber.assert_no_pending_responses()
    assert unwrap(wrapping, seen["blob"]) == der  # KMS would receive exactly our PKCS#8 key
    assert signer.key_arn == arn and signer.public_key.to_der() == public_der


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.ML_DSA_65], ids=str)
def test_ed25519_and_ml_dsa_import_is_refused_with_the_reason(spec: KeySpec) -> None:
    with stubbed_store() as (store, _):  # no request may be sent: the Stubber has no responses queued
        with pytest.raises(AlgorithmNotSupported, match="RSA and ECC"):
            store.import_key("byok", generate_private_key(spec))
        with pytest.raises(ConfigError):
            store.import_key("byok", b"not a key")


def test_moto_without_import_is_reported_and_leaves_no_key(store: AwsKmsKeyStore, moto_server: MotoKms,
                                                           name: str) -> None:
    before = {k["KeyId"] for k in moto_server.client().list_keys()["Keys"]}
    with pytest.raises(AlgorithmNotSupported, match="does not implement key import"):
        store.import_key(name, generate_private_key(KeySpec.P256))
    client = moto_server.client()
    for key_id in {k["KeyId"] for k in client.list_keys()["Keys"]} - before:
        assert client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert name not in [k.name for k in store.list_keys()]
