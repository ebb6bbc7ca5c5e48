"""Ed25519 and ML-DSA on AWS KMS (moto has neither), judged with botocore's Stubber.

See stubbed_kms.py: the requests must have the shapes AWS documents and the signatures,
made by `cryptography` with the "service's" key, must come back unchanged and verify.
"""

from __future__ import annotations

import os

import pytest

from signers.algorithms import KeySpec

from .stubbed_kms import (
    REGION,
    SCENARIOS,
    STUBBED_SPECS,
    expected_request,
    external_mu,
    new_remote_key,
    scenario_ed25519_limits,
    scenario_sign,
    stub_open,
    stubbed_store,
)


@pytest.fixture(autouse=True)
def _offline_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test values only: the Stubber answers before anything is signed or sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "stubbed")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "stubbed")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("spec", STUBBED_SPECS, ids=str)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_documented_shapes(scenario: str, spec: KeySpec) -> None:
    detail = SCENARIOS[scenario](spec)
    assert detail


def test_ml_dsa_65_one_mebibyte_uses_external_mu() -> None:
    detail = scenario_sign(KeySpec.ML_DSA_65, (1 << 20,))
    assert detail.startswith("ML_DSA_SHAKE_256: 1 MiB EXTERNAL_MU (mu 64 B)")


@pytest.mark.parametrize("spec", [KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87], ids=str)
def test_mu_is_fips_204_mu_from_the_public_key(spec: KeySpec) -> None:
    key = new_remote_key(spec)
    with stubbed_store() as (store, stubber):
        stub_open(stubber, key, key.alias)
        signer = store.open(key.alias)
    message = os.urandom(5000)
    payload, message_type = signer.sign_request(message)
    assert message_type == "EXTERNAL_MU" and len(payload) == 64
    assert payload == external_mu(signer.public_key.to_raw(), message)
    assert signer.sign_request(b"x" * 4096) == (b"x" * 4096, "RAW")


def test_ed25519_messages_kms_cannot_take_are_refused() -> None:
    assert "refused" in scenario_ed25519_limits()


def test_list_follows_every_page() -> None:
    keys = [new_remote_key(KeySpec.ML_DSA_65, f"k{i}") for i in range(3)]
    with stubbed_store() as (store, stubber):
        stubber.add_response("list_aliases", {"Aliases": [
            {"AliasName": k.alias, "AliasArn": f"arn:aws:kms:{REGION}:111122223333:{k.alias}", "TargetKeyId": k.key_id}
            for k in keys[:2]], "Truncated": False}, {})
        stubber.add_response("list_keys", {"Keys": [{"KeyId": keys[0].key_id, "KeyArn": keys[0].arn}],
                                           "Truncated": True, "NextMarker": "page-2"}, {})
        stubber.add_response("list_keys", {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in keys[1:]],
                                           "Truncated": False}, {"Marker": "page-2"})
        for k in keys:
            stubber.add_response("describe_key", {"KeyMetadata": k.metadata()}, {"KeyId": k.key_id})
        listed = list(store.list_keys())
    assert [i.name for i in listed] == ["k0", "k1", keys[2].key_id]
    assert {i.spec for i in listed} == {KeySpec.ML_DSA_65}


def test_sign_request_is_exactly_what_aws_documents() -> None:
    key = new_remote_key(KeySpec.ED25519)
    request, signature = expected_request(key, b"hello")
    assert request == {"KeyId": key.arn, "Message": b"hello", "MessageType": "RAW",
                       "SigningAlgorithm": "ED25519_SHA_512"}
    assert len(signature) == 64


