"""The one custom path: chains using a signature algorithm registered with register_chain_verifier."""

from __future__ import annotations

import pytest
from cryptography import x509

import signers.x509.chain as chain_module
from signers.errors import ConfigError
from signers.x509 import CertificateError, ChainQuestion, Reason, register_chain_verifier, verify_chain

from .crafted import Forge


@pytest.fixture(autouse=True)
def _no_registered_verifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_module, "_VERIFIERS", {})


def test_a_registered_algorithm_goes_to_its_verifier() -> None:
    forge = Forge("ML-DSA-65")
    leaf, issuing, root = forge.leaf(), forge.issuing(), forge.root()
    asked: list[ChainQuestion] = []

    def custom(question: ChainQuestion) -> list[x509.Certificate]:
        asked.append(question)
        raise CertificateError(Reason.BAD_SIGNATURE, question.leaf, "custom verifier")

    register_chain_verifier(leaf.signature_algorithm_oid, custom)
    with pytest.raises(CertificateError, match="custom verifier"):
        verify_chain(leaf, [issuing], [root], extended_key_usages=["client_auth"])
    (question,) = asked
    assert question.leaf == leaf and question.intermediates == (issuing,) and question.roots == (root,)
    assert question.extended_key_usages == (x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,)
    # Other algorithms still go to OpenSSL.
    p256 = Forge("P-256")
    p256_root = p256.root()
    assert verify_chain(p256.leaf(), [p256.issuing()], [p256_root])[-1] == p256_root


def test_registration_is_checked() -> None:
    def one(question: ChainQuestion) -> list[x509.Certificate]:
        return [question.leaf]

    def two(question: ChainQuestion) -> list[x509.Certificate]:
        return [question.leaf]

    register_chain_verifier("1.3.6.1.4.1.55555.9", one)
    register_chain_verifier("1.3.6.1.4.1.55555.9", one)  # the same verifier again is fine
    with pytest.raises(ConfigError, match="already has"):
        register_chain_verifier("1.3.6.1.4.1.55555.9", two)
    with pytest.raises(ConfigError, match="not an object identifier"):
        register_chain_verifier("not an oid", one)
