"""The re-wrap itself: throwaway keys are cached, and a back end that signs wrongly issues nothing."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from signers.algorithms import KeySpec
from signers.errors import InvalidSignature
from signers.signer import BaseSigner, Signer
from signers.x509 import sign_certificate
from signers.x509.tbs_signing import throwaway_key

from .conftest import KeyFactory


class _WrongKeySigner(BaseSigner):
    """Claims one key's identity but signs with another: what a misconfigured back end would do."""

    def __init__(self, claimed: Signer, actual: Signer) -> None:
        super().__init__(claimed.uri, claimed.algorithm, claimed.public_key)
        self._actual = actual

    def sign(self, message: bytes) -> bytes:
        return self._actual.sign(message)


def _builder(signer: Signer) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tbs")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(signer.public_key.key)
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1)))


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.ED25519, KeySpec.ML_DSA_44, KeySpec.RSA2048],
                         ids=lambda s: s.value)
def test_wrong_signature_issues_nothing(spec: KeySpec, file_key: KeyFactory) -> None:
    claimed, actual = file_key("tbs-claimed", spec), file_key("tbs-actual", spec)
    with pytest.raises(InvalidSignature, match="nothing was issued"):
        sign_certificate(_builder(claimed), _WrongKeySigner(claimed, actual))
    sign_certificate(_builder(claimed), claimed).verify_directly_issued_by(
        sign_certificate(_builder(claimed), claimed))


def test_throwaway_keys_are_made_once() -> None:
    assert throwaway_key(KeySpec.P256) is throwaway_key(KeySpec.P256)
    assert throwaway_key(KeySpec.RSA4096) is throwaway_key(KeySpec.RSA2048)  # one RSA key serves every size
    assert throwaway_key(KeySpec.ML_DSA_65) is not throwaway_key(KeySpec.ML_DSA_87)
