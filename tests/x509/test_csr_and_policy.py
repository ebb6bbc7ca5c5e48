"""CSRs made with back-end keys, CSR checks, the policy hook, and issuance defaults."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from signers.algorithms import KeyFamily, KeySpec
from signers.errors import ConfigError, PermissionDenied
from signers.x509 import (
    CertificateAuthority,
    InvalidCSR,
    IssueRequest,
    NamePolicy,
    PolicyRefused,
    create_csr,
    verify_chain,
    write_pem,
)

from .conftest import KeyFactory
from .support import openssl


@pytest.fixture
def ca(file_key: KeyFactory, revocations) -> CertificateAuthority:  # type: ignore[no-untyped-def]
    return CertificateAuthority.create_root(file_key("csr-root", KeySpec.P256), "CN=CSR Root", revocations=revocations)


@pytest.mark.parametrize("spec", list(KeySpec), ids=[s.value for s in KeySpec])
def test_csr_from_a_backend_key(spec: KeySpec, file_key: KeyFactory, ca: CertificateAuthority, tmp_path: Path) -> None:
    signer = file_key("csr-subject", spec)
    csr = create_csr(signer, "CN=csr-agent,O=keyplane", uris=["spiffe://keyplane.test/csr"], dns_names=["csr.test"])
    assert csr.is_signature_valid
    assert csr.public_key() == signer.public_key.key  # the Signer's key, not the throwaway one
    assert csr.signature_algorithm_oid.dotted_string == signer.algorithm.x509_oid
    if spec.family is not KeyFamily.MLDSA:
        path = write_pem(tmp_path / "request.csr", csr)
        result = subprocess.run([openssl(), "req", "-in", str(path), "-noout", "-verify"],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stderr
    certificate = ca.sign_csr(csr)
    assert certificate.subject == csr.subject
    assert certificate.public_key() == signer.public_key.key
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://keyplane.test/csr"]
    assert san.get_values_for_type(x509.DNSName) == ["csr.test"]
    verify_chain(certificate, [], [ca.chain[0]])


def test_tampered_csr_is_refused(file_key: KeyFactory, ca: CertificateAuthority) -> None:
    csr = create_csr(file_key("csr-subject", KeySpec.P256), "CN=honest")
    tampered = x509.load_der_x509_csr(csr.public_bytes(Encoding.DER).replace(b"honest", b"h0nest"))
    with pytest.raises(InvalidCSR):
        ca.sign_csr(tampered)


def test_csr_cannot_ask_to_be_a_ca(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "greedy")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate = ca.sign_csr(csr)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_csr_overrides(file_key: KeyFactory, ca: CertificateAuthority) -> None:
    csr = create_csr(file_key("csr-subject", KeySpec.ED25519), "CN=asked", dns_names=["asked.test"])
    certificate = ca.sign_csr(csr, subject="CN=given", dns_names=["given.test"], validity=datetime.timedelta(hours=1))
    assert certificate.subject.rfc4514_string() == "CN=given"
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["given.test"]
    # The hour counts from now; not_before is a further minute back for clock skew.
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == datetime.timedelta(hours=1, minutes=1)


def test_name_policy(file_key: KeyFactory, ca: CertificateAuthority) -> None:
    ca.policy = NamePolicy(dns_suffixes=("agents.test",), uri_prefixes=("spiffe://keyplane.test/agent/",))
    key = file_key("policy-agent", KeySpec.ED25519)
    ca.issue(key, "CN=ok", dns_names=["a.agents.test"], uris=["spiffe://keyplane.test/agent/1"])
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"dns_names": ["evil.test"]}, "outside the allowed suffixes"),
        ({"uris": ["spiffe://other/agent/1"]}, "outside the allowed prefixes"),
        ({"dns_names": ["a.agents.test"], "validity": datetime.timedelta(days=2)}, "exceeds the maximum"),
        ({}, "no subject alternative name"),
        ({"dns_names": ["a.agents.test"], "is_ca": True, "path_length": 0}, "CA certificates are not allowed"),
    ]
    for keywords, message in refusals:
        with pytest.raises(PolicyRefused, match=message) as caught:
            ca.issue(key, "CN=no", **keywords)
        assert isinstance(caught.value, PermissionDenied)
        assert isinstance(caught.value.request, IssueRequest)


def test_policy_callable_forms(file_key: KeyFactory, ca: CertificateAuthority) -> None:
    key = file_key("policy-agent", KeySpec.ED25519)
    seen: list[IssueRequest] = []

    def watching(request: IssueRequest) -> None:
        seen.append(request)

    ca.policy = watching
    ca.issue(key, "CN=seen", emails=["a@b.test"])
    assert seen[0].subject.rfc4514_string() == "CN=seen" and seen[0].names.emails == ("a@b.test",)
    assert seen[0].public_key == key.public_key
    ca.policy = lambda request: False
    with pytest.raises(PolicyRefused, match="refused by policy"):
        ca.issue(key, "CN=x")
    ca.policy = lambda request: "not on Sundays"
    with pytest.raises(PolicyRefused, match="not on Sundays"):
        ca.issue(key, "CN=x")

    def raising(request: IssueRequest) -> None:
        raise PolicyRefused("quota exceeded", request)

    ca.policy = raising
    with pytest.raises(PolicyRefused, match="quota exceeded"):
        ca.issue(key, "CN=x")


def test_defaults_and_limits(file_key: KeyFactory) -> None:
    short_root = CertificateAuthority.create_root(file_key("short-root", KeySpec.P256), "CN=Short",
                                                  validity=datetime.timedelta(hours=2))
    key = file_key("limits-agent", KeySpec.P256)
    leaf = short_root.issue(key, "CN=clamped")  # asks for 24 h, the root has 2 h left
    assert leaf.not_valid_after_utc == short_root.chain[0].not_valid_after_utc
    nameless = short_root.issue(key, uris=["spiffe://keyplane.test/nameless"])
    san = nameless.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert len(nameless.subject) == 0 and san.critical  # RFC 5280: SAN critical when the subject is empty
    with pytest.raises(ConfigError, match="subject or at least one"):
        short_root.issue(key)
    with pytest.raises(ConfigError, match="unknown key usage"):
        short_root.issue(key, "CN=x", key_usages=["digital_signatur"])
    with pytest.raises(ConfigError, match="unknown extended key usage"):
        short_root.issue(key, "CN=x", extended_key_usages=["client-auht"])
    serials = {short_root.issue(key, "CN=s").serial_number for _ in range(20)}
    assert len(serials) == 20 and all(0 < s < 2**128 for s in serials)


def test_ca_certificate_must_match_the_signer(file_key: KeyFactory, ca: CertificateAuthority) -> None:
    with pytest.raises(ConfigError, match="not the key of signer"):
        CertificateAuthority(file_key("someone-else", KeySpec.P256), ca.chain[0])


def test_ca_without_certificate_cannot_issue(file_key: KeyFactory) -> None:
    pending = CertificateAuthority(file_key("pending", KeySpec.P256))
    with pytest.raises(ConfigError, match="no certificate yet"):
        pending.issue(file_key("pending", KeySpec.P256), "CN=x")


def test_intermediate_through_a_csr(file_key: KeyFactory, ca: CertificateAuthority) -> None:
    """An issuing CA whose key is elsewhere asks for its certificate with a CSR, as it would from an external root."""
    signer = file_key("csr-issuing", KeySpec.ML_DSA_44)
    csr = create_csr(signer, "CN=CSR Issuing")
    certificate = ca.sign_csr(csr, is_ca=True, path_length=0)
    issuing = CertificateAuthority(signer, certificate, chain=ca.chain)
    leaf = issuing.issue(file_key("csr-leaf", KeySpec.ED25519), "CN=csr-leaf")
    assert verify_chain(leaf, [certificate], [ca.chain[0]]) == [leaf, certificate, ca.chain[0]]
