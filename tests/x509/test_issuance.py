"""Every KeySpec as a CA key on the file back end: root -> intermediate -> leaf, checked three ways.

Each chain is verified by `verify_chain`, link by link with `cryptography`
(`verify_directly_issued_by`), by cryptography's Web PKI verifier where that profile allows
the key type, and, for classical keys, by `openssl verify -x509_strict` with CRL checking.
(Debian's OpenSSL 3.0 does not know ML-DSA; those chains are checked by cryptography only.)
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from signers.algorithms import KeyFamily, KeySpec
from signers.x509 import CertificateAuthority, verify_chain

from .conftest import KeyFactory
from .support import (
    WEBPKI_CA_SPECS,
    assert_links_verify,
    assert_openssl_accepts,
    openssl_crl_text,
    webpki_client_verify,
)

# (CA key spec, signature algorithm): every spec with its default, plus the RSA variants a signer may choose.
CASES = [(spec, None) for spec in KeySpec] + [(KeySpec.RSA2048, "RS256"), (KeySpec.RSA3072, "PS384"),
                                               (KeySpec.RSA4096, "RS512")]


def _case_id(case: tuple[KeySpec, str | None]) -> str:
    return case[0].value + (f"-{case[1]}" if case[1] else "")


@pytest.fixture(params=CASES, ids=[_case_id(c) for c in CASES])
def chain(request: pytest.FixtureRequest, file_key: KeyFactory, revocations):  # type: ignore[no-untyped-def]
    spec, algorithm = request.param
    root = CertificateAuthority.create_root(file_key("root", spec, algorithm), f"CN=Root {spec.value},O=keyplane")
    issuing = root.create_intermediate(file_key("issuing", spec, algorithm), f"CN=Issuing {spec.value},O=keyplane",
                                       revocations=revocations)
    agent = file_key("agent", KeySpec.ED25519)
    leaf = issuing.issue(agent, "CN=agent-7", uris=["spiffe://keyplane.test/agent/7"], dns_names=["agent7.test"],
                         emails=["agent7@keyplane.test"])
    return spec, algorithm, root, issuing, leaf


def test_chain_verifies_everywhere(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, _, root, issuing, leaf = chain
    crls = [issuing.crl(), root.crl()]
    path = verify_chain(leaf, [issuing.certificate], [root.certificate], crls=crls, require_crl=True,
                        extended_key_usages=["client_auth"])
    assert path == [leaf, issuing.certificate, root.certificate]
    assert_links_verify(path)
    if spec in WEBPKI_CA_SPECS:
        assert webpki_client_verify(leaf, [issuing.certificate], root.certificate)[-1] == root.certificate
    if spec.family is not KeyFamily.MLDSA:
        assert_openssl_accepts(tmp_path, leaf, [issuing.certificate], root.certificate, crls)


def test_signature_algorithm_matches_the_signer(chain) -> None:  # type: ignore[no-untyped-def]
    spec, algorithm, root, issuing, leaf = chain
    expected_oid = issuing.signer.algorithm.x509_oid
    for certificate in (root.certificate, issuing.certificate, leaf):
        assert certificate.signature_algorithm_oid.dotted_string == expected_oid
    parameters = leaf.signature_algorithm_parameters
    if issuing.signer.algorithm.is_pss:
        # RSA-PSS parameters match the Signer: MGF1 with the same hash, salt = hash length.
        assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
        assert isinstance(parameters, padding.PSS)
        assert leaf.signature_hash_algorithm is not None
        assert parameters._salt_length == leaf.signature_hash_algorithm.digest_size
    if spec.family is KeyFamily.MLDSA:
        assert parameters is None  # RFC 9881: no parameters
    assert algorithm is None or issuing.signer.algorithm.value == algorithm


def test_leaf_profile(chain) -> None:  # type: ignore[no-untyped-def]
    _, _, _, issuing, leaf = chain
    ext = leaf.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert set(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://keyplane.test/agent/7"]
    assert san.get_values_for_type(x509.DNSName) == ["agent7.test"]
    assert san.get_values_for_type(x509.RFC822Name) == ["agent7@keyplane.test"]
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuing.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(hours=24, minutes=1)  # + backdating
    assert 0 < leaf.serial_number < 2**128
    assert leaf.issuer == issuing.certificate.subject


def test_ca_profiles(chain) -> None:  # type: ignore[no-untyped-def]
    _, _, root, issuing, _ = chain
    root_bc = root.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert root_bc.ca and root_bc.path_length is None
    assert root.certificate.issuer == root.certificate.subject
    issuing_bc = issuing.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert issuing_bc.ca and issuing_bc.path_length == 0
    for certificate in (root.certificate, issuing.certificate):
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign
    assert issuing.chain == (issuing.certificate, root.certificate)


def test_crl(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, _, _, issuing, leaf = chain
    first = issuing.crl()
    issuing.revoke(leaf.serial_number, "keyCompromise")
    crl = issuing.crl(validity=datetime.timedelta(hours=6))
    assert crl.is_signature_valid(issuing.signer.public_key.key)
    assert crl.issuer == issuing.certificate.subject
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == datetime.timedelta(hours=6)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    if spec.family is not KeyFamily.MLDSA:
        text = openssl_crl_text(tmp_path, crl, issuing.certificate)
        assert f"{leaf.serial_number:X}" in text.replace(":", "").upper()
        assert "Key Compromise" in text
