"""verify_chain on chains this CA issued, refused with the right Reason (and `openssl verify` agreeing).

The crafted chains (wrong AKI, scoped CRLs, name variants, ...) are in test_openssl_scenarios.py;
these are the ones a CertificateAuthority itself can be led to produce or meet.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from signers.algorithms import KeySpec
from signers.errors import InvalidSignature
from signers.x509 import CertificateAuthority, CertificateError, Reason, sign_certificate, verify_chain
from signers.x509.der import encode_bit_string, encode_sequence, split_sequence

from .conftest import KeyFactory
from .support import openssl_verify

SPECS = [KeySpec.P256, KeySpec.ML_DSA_65]
HOUR = datetime.timedelta(hours=1)


@pytest.fixture(params=SPECS, ids=[s.value for s in SPECS])
def pki(request: pytest.FixtureRequest, file_key: KeyFactory, revocations):  # type: ignore[no-untyped-def]
    spec = request.param
    root = CertificateAuthority.create_root(file_key("neg-root", spec), "CN=Neg Root", path_length=1)
    issuing = root.create_intermediate(file_key("neg-issuing", spec), "CN=Neg Issuing", revocations=revocations)
    leaf = issuing.issue(file_key("neg-agent", KeySpec.ED25519), "CN=neg-agent", uris=["spiffe://neg/agent"])
    return spec, root, issuing, leaf


def _refused(reason: Reason, *args, **kwargs) -> CertificateError:  # type: ignore[no-untyped-def]
    with pytest.raises(CertificateError) as caught:
        verify_chain(*args, **kwargs)
    assert caught.value.reason is reason, str(caught.value)
    assert reason.value in str(caught.value)
    return caught.value


def _openssl_refuses(spec: KeySpec, tmp_path: Path, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    if spec is KeySpec.ML_DSA_65:
        return ""  # OpenSSL 3.0 cannot judge ML-DSA chains at all
    result = openssl_verify(tmp_path, *args, **kwargs)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def test_the_good_chain_passes(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, leaf = pki
    verify_chain(leaf, [issuing.certificate], [root.certificate], crl=issuing.crl())


def test_expired(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, root, issuing, leaf = pki
    later = leaf.not_valid_after_utc + HOUR
    error = _refused(Reason.EXPIRED, leaf, [issuing.certificate], [root.certificate], at=later)
    assert error.certificate == leaf
    text = _openssl_refuses(spec, tmp_path, leaf, [issuing.certificate], root.certificate,
                            extra=["-attime", str(int(later.timestamp()))])
    assert not text or "expired" in text


def test_future_dated_leaf_is_not_yet_valid_now(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, _ = pki
    future = issuing.issue(issuing.signer, "CN=later", not_before=datetime.datetime.now(datetime.UTC) + HOUR)
    _refused(Reason.NOT_YET_VALID, future, [issuing.certificate], [root.certificate])


def test_wrong_issuer(pki, file_key: KeyFactory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, _, issuing, leaf = pki
    other_root = CertificateAuthority.create_root(file_key("other-root", spec), "CN=Other Root")
    error = _refused(Reason.WRONG_ISSUER, leaf, [], [other_root.certificate])
    assert error.certificate == leaf
    _refused(Reason.WRONG_ISSUER, leaf, [issuing.certificate], [other_root.certificate])
    _openssl_refuses(spec, tmp_path, leaf, [issuing.certificate], other_root.certificate)


def test_tampered_signature(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, root, issuing, leaf = pki
    tbs, algorithm, bit_string = split_sequence(leaf.public_bytes(Encoding.DER))
    signature = bytearray(bit_string[-len(leaf.signature):])
    signature[len(signature) // 2] ^= 0x01
    tampered = x509.load_der_x509_certificate(encode_sequence(tbs, algorithm, encode_bit_string(bytes(signature))))
    error = _refused(Reason.BAD_SIGNATURE, tampered, [issuing.certificate], [root.certificate])
    assert error.certificate == tampered
    _openssl_refuses(spec, tmp_path, tampered, [issuing.certificate], root.certificate)


def test_tampered_contents(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, leaf = pki
    der = leaf.public_bytes(Encoding.DER)
    tampered = x509.load_der_x509_certificate(der.replace(b"neg-agent", b"neg-agenT", 1))
    _refused(Reason.BAD_SIGNATURE, tampered, [issuing.certificate], [root.certificate])


def test_ca_false_issuer(pki, file_key: KeyFactory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A leaf's key signs a certificate naming the leaf as issuer: the leaf is not a CA."""
    spec, root, issuing, leaf = pki
    leaf_signer = file_key("neg-agent", KeySpec.ED25519)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "under-a-leaf")]))
        .issuer_name(leaf.subject)
        .public_key(file_key("under-leaf", KeySpec.P256).public_key.key)
        .serial_number(7)
        .not_valid_before(now - HOUR)
        .not_valid_after(now + HOUR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(leaf_signer.public_key.key), critical=False)
    )
    forged = sign_certificate(builder, leaf_signer)
    error = _refused(Reason.NOT_A_CA, forged, [leaf, issuing.certificate], [root.certificate])
    assert error.certificate == leaf
    text = _openssl_refuses(spec, tmp_path, forged, [leaf, issuing.certificate], root.certificate)
    assert not text or "invalid CA certificate" in text


def test_ca_refuses_to_be_used_without_a_ca_certificate(pki, file_key: KeyFactory) -> None:  # type: ignore[no-untyped-def]
    from signers.errors import ConfigError

    _, _, _, leaf = pki
    with pytest.raises(ConfigError, match="not a CA certificate"):
        CertificateAuthority(file_key("neg-agent", KeySpec.ED25519), leaf)


def test_path_length_exceeded(pki, file_key: KeyFactory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Root pathlen 1 -> issuing pathlen 0 -> a CA certificate made by hand -> leaf: issuing's limit is broken."""
    spec, root, issuing, _ = pki
    deep_signer = file_key("too-deep", spec)
    deep_certificate = sign_certificate(_ca_builder(issuing.certificate, deep_signer.public_key.key, "CN=Too Deep"),
                                        issuing.signer)
    deep = CertificateAuthority(deep_signer, deep_certificate, chain=issuing.chain)
    leaf = deep.issue(file_key("deep-agent", KeySpec.ED25519), "CN=deep-agent")
    error = _refused(Reason.PATH_LENGTH_EXCEEDED, leaf, [deep_certificate, issuing.certificate], [root.certificate])
    assert error.certificate == issuing.certificate
    text = _openssl_refuses(spec, tmp_path, leaf, [deep_certificate, issuing.certificate], root.certificate)
    assert not text or "path length" in text


def test_ca_will_not_issue_past_its_path_length(pki, file_key: KeyFactory) -> None:  # type: ignore[no-untyped-def]
    from signers.x509 import PolicyRefused

    spec, root, issuing, _ = pki
    with pytest.raises(PolicyRefused, match="path length is 0"):
        issuing.create_intermediate(file_key("too-deep", spec), "CN=Too Deep")
    with pytest.raises(PolicyRefused, match="below this CA's"):
        root.create_intermediate(file_key("too-deep", spec), "CN=Too Deep", path_length=1)


def test_revoked(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec, root, issuing, leaf = pki
    issuing.revoke(leaf, "key_compromise")
    error = _refused(Reason.REVOKED, leaf, [issuing.certificate], [root.certificate], crls=[issuing.crl()])
    assert error.certificate == leaf
    assert "keyCompromise" in str(error)
    text = _openssl_refuses(spec, tmp_path, leaf, [issuing.certificate], root.certificate,
                            crls=[issuing.crl(), root.crl()])
    assert not text or "certificate revoked" in text


def test_revocation_needs_a_new_crl(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, leaf = pki
    old = issuing.crl()
    issuing.revoke(leaf)
    verify_chain(leaf, [issuing.certificate], [root.certificate], crl=old)  # the old CRL did not list it
    _refused(Reason.REVOKED, leaf, [issuing.certificate], [root.certificate], crl=issuing.crl())


def test_crl_signed_by_another_key(pki, file_key: KeyFactory) -> None:  # type: ignore[no-untyped-def]
    spec, root, issuing, leaf = pki
    impostor = CertificateAuthority.create_root(file_key("crl-impostor", spec), issuing.certificate.subject)
    _refused(Reason.BAD_CRL, leaf, [issuing.certificate], [root.certificate], crl=impostor.crl())


def test_stale_and_future_crl(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, leaf = pki
    crl = issuing.crl(validity=HOUR)
    chain = ([issuing.certificate], [root.certificate])
    _refused(Reason.BAD_CRL, leaf, *chain, crl=crl, at=crl.last_update_utc + 2 * HOUR)
    _refused(Reason.BAD_CRL, leaf, *chain, crl=crl, at=crl.last_update_utc - datetime.timedelta(seconds=30))


def test_require_crl(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, leaf = pki
    _refused(Reason.BAD_CRL, leaf, [issuing.certificate], [root.certificate], crl=root.crl(), require_crl=True)
    verify_chain(leaf, [issuing.certificate], [root.certificate], crls=[root.crl(), issuing.crl()], require_crl=True)


def test_required_extended_key_usage(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, issuing, _ = pki
    code = issuing.issue(issuing.signer, "CN=code", extended_key_usages=["code_signing"])
    _refused(Reason.KEY_USAGE, code, [issuing.certificate], [root.certificate], extended_key_usages=["client_auth"])
    verify_chain(code, [issuing.certificate], [root.certificate], extended_key_usages=["codeSigning"])


def test_certificate_error_is_an_invalid_signature(pki) -> None:  # type: ignore[no-untyped-def]
    _, root, _, leaf = pki
    with pytest.raises(InvalidSignature):
        verify_chain(leaf, [], [root.certificate])


def _ca_builder(issuer: x509.Certificate, public_key, subject: str) -> x509.CertificateBuilder:  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.UTC)
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string(subject))
        .issuer_name(issuer.subject).public_key(public_key).serial_number(13)
        .not_valid_before(now - HOUR).not_valid_after(now + 2 * HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
