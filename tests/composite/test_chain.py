"""The composite chain verifier (`signers.composite.chain`): each RFC 5280 check refuses what it must.

Every chain here carries composite signatures, so `verify_chain` hands it to the composite
verifier (OpenSSL cannot read these certificates); each case breaks one rule and expects
the typed `Reason` OpenSSL's mapping gives for the same fault.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from signers.composite import CompositeAlgorithm, CompositeCertificateAuthority, CompositeSigner, generate
from signers.composite.chain import verify_composite_chain
from signers.composite.x509_signing import sign_certificate, sign_crl
from signers.x509 import CertificateError, Reason, verify_chain
from signers.x509.chain import ChainQuestion

VARIANT = CompositeAlgorithm.MLDSA44_ED25519_SHA512
NOW = datetime.datetime.now(datetime.UTC)


def _signer() -> CompositeSigner:
    return CompositeSigner(*generate(VARIANT), VARIANT)


@pytest.fixture(scope="module")
def pki() -> tuple[CompositeCertificateAuthority, CompositeCertificateAuthority, x509.Certificate]:
    root = CompositeCertificateAuthority.create_root(_signer(), "CN=Chain Root", path_length=1)
    issuing = root.create_intermediate(_signer(), "CN=Chain Issuing")
    return root, issuing, issuing.issue(_signer(), "CN=chain-leaf", extended_key_usages=["client_auth"])


def _certificate(issuer: x509.Certificate, issuer_signer: CompositeSigner, *extensions: tuple[x509.ExtensionType, bool],
                 subject: str = "odd") -> x509.Certificate:
    """A leaf-shaped certificate signed by `issuer_signer` under `issuer`'s name, with any extensions."""
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer.subject).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5)).not_valid_after(NOW + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return sign_certificate(builder, issuer_signer, _signer().public_key)


def _refused(reason: Reason, call: Callable[[], object]) -> CertificateError:
    with pytest.raises(CertificateError) as caught:
        call()
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_the_good_chain_verifies(pki: tuple[CompositeCertificateAuthority, CompositeCertificateAuthority,
                                            x509.Certificate]) -> None:
    root, issuing, leaf = pki
    path = verify_chain(leaf, [issuing.certificate], [root.certificate], crls=[issuing.crl(), root.crl()],
                        require_crl=True, extended_key_usages=["client_auth"])
    assert path == [leaf, issuing.certificate, root.certificate]
    question = ChainQuestion(leaf, (issuing.certificate,), (root.certificate,), None, (), False, ())
    assert verify_composite_chain(question) == path


def test_validity_window(pki: tuple[CompositeCertificateAuthority, CompositeCertificateAuthority,
                                    x509.Certificate]) -> None:
    root, issuing, leaf = pki
    _refused(Reason.EXPIRED, lambda: verify_chain(leaf, [issuing.certificate], [root.certificate],
                                                  at=NOW + datetime.timedelta(days=2)))
    _refused(Reason.NOT_YET_VALID, lambda: verify_chain(leaf, [issuing.certificate], [root.certificate],
                                                        at=NOW - datetime.timedelta(days=2)))


def test_path_must_end_at_a_self_signed_root(pki: tuple[CompositeCertificateAuthority,
                                                        CompositeCertificateAuthority, x509.Certificate]) -> None:
    root, issuing, leaf = pki
    _refused(Reason.WRONG_ISSUER, lambda: verify_chain(leaf, [], [root.certificate]))  # intermediate missing
    _refused(Reason.WRONG_ISSUER, lambda: verify_chain(leaf, [], [issuing.certificate]))  # not an anchor
    other_root = CompositeCertificateAuthority.create_root(_signer(), "CN=Chain Root")  # same name, other key
    _refused(Reason.BAD_SIGNATURE, lambda: verify_chain(leaf, [issuing.certificate], [other_root.certificate]))


def test_issuer_must_be_a_ca_with_key_cert_sign(pki: tuple[CompositeCertificateAuthority,
                                                           CompositeCertificateAuthority, x509.Certificate]) -> None:
    root, issuing, _ = pki
    leaf_signer = _signer()
    leaf = issuing.issue(leaf_signer, "CN=not-a-ca")
    forged = _certificate(leaf, leaf_signer, subject="under-a-leaf")  # a leaf key acting as a CA
    _refused(Reason.NOT_A_CA, lambda: verify_chain(forged, [leaf, issuing.certificate], [root.certificate]))

    no_cert_sign_signer = _signer()
    no_cert_sign = root.issue(no_cert_sign_signer, "CN=No CertSign", is_ca=True, key_usages=["digital_signature"])
    ca = CompositeCertificateAuthority(no_cert_sign_signer, no_cert_sign)
    _refused(Reason.KEY_USAGE, lambda: verify_chain(ca.issue(_signer(), "CN=x"), [no_cert_sign], [root.certificate]))


def test_path_length_constraint() -> None:
    root = CompositeCertificateAuthority.create_root(_signer(), "CN=Pathlen0 Root", path_length=0)
    issuing = root.create_intermediate(_signer(), "CN=Pathlen0 Issuing")
    leaf = issuing.issue(_signer(), "CN=too-deep")
    error = _refused(Reason.PATH_LENGTH_EXCEEDED, lambda: verify_chain(leaf, [issuing.certificate],
                                                                       [root.certificate]))
    assert error.certificate == root.certificate


def test_extended_key_usage(pki: tuple[CompositeCertificateAuthority, CompositeCertificateAuthority,
                                       x509.Certificate]) -> None:
    root, issuing, leaf = pki
    _refused(Reason.KEY_USAGE, lambda: verify_chain(leaf, [issuing.certificate], [root.certificate],
                                                    extended_key_usages=["server_auth"]))
    mail_signer = _signer()
    mail_ca = root.issue(mail_signer, "CN=Mail Only CA", is_ca=True, path_length=0,
                         extended_key_usages=["email_protection"])
    mail_leaf = CompositeCertificateAuthority(mail_signer, mail_ca).issue(_signer(), "CN=client")
    verify_chain(mail_leaf, [mail_ca], [root.certificate])
    error = _refused(Reason.KEY_USAGE, lambda: verify_chain(mail_leaf, [mail_ca], [root.certificate],
                                                            extended_key_usages=["client_auth"]))
    assert error.certificate == mail_ca  # a CA whose EKU excludes the purpose refuses the chain, as in OpenSSL


def test_unknown_critical_extension_is_refused(pki: tuple[CompositeCertificateAuthority,
                                                          CompositeCertificateAuthority, x509.Certificate]) -> None:
    root, issuing, _ = pki
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    verify_chain(_certificate(issuing.certificate, issuing.signer, (unknown, False)),  # type: ignore[arg-type]
                 [issuing.certificate], [root.certificate])
    odd = _certificate(issuing.certificate, issuing.signer, (unknown, True))  # type: ignore[arg-type]
    _refused(Reason.UNHANDLED_CRITICAL_EXTENSION, lambda: verify_chain(odd, [issuing.certificate], [root.certificate]))


def _crl(ca: CompositeCertificateAuthority, *extensions: tuple[x509.ExtensionType, bool],
         next_update: datetime.timedelta = datetime.timedelta(hours=1)) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
               .last_update(NOW - datetime.timedelta(minutes=1)).next_update(NOW + next_update))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return sign_crl(builder, ca.signer)


def test_crl_checks(pki: tuple[CompositeCertificateAuthority, CompositeCertificateAuthority,
                               x509.Certificate]) -> None:
    root, issuing, leaf = pki
    chain = ([issuing.certificate], [root.certificate])
    verify_chain(leaf, *chain, crl=_crl(issuing))
    _refused(Reason.BAD_CRL, lambda: verify_chain(leaf, *chain, crl=_crl(issuing),
                                                  at=NOW + datetime.timedelta(hours=2)))  # stale
    _refused(Reason.BAD_CRL, lambda: verify_chain(leaf, *chain, crl=issuing.crl(), require_crl=True))  # none for I
    ca_only = x509.IssuingDistributionPoint(None, None, False, True, None, False, False)
    _refused(Reason.BAD_CRL, lambda: verify_chain(leaf, *chain, crl=_crl(issuing, (ca_only, True))))  # wrong scope
    delta = x509.DeltaCRLIndicator(1)
    _refused(Reason.BAD_CRL, lambda: verify_chain(leaf, *chain, crl=_crl(issuing, (delta, True))))
    no_crl_sign_signer = _signer()
    no_crl_sign = root.issue(no_crl_sign_signer, "CN=No CRLSign", is_ca=True, path_length=0,
                             key_usages=["key_cert_sign"])
    ca = CompositeCertificateAuthority(no_crl_sign_signer, no_crl_sign)
    below = ca.issue(_signer(), "CN=below")
    verify_chain(below, [no_crl_sign], [root.certificate])
    _refused(Reason.BAD_CRL, lambda: verify_chain(below, [no_crl_sign], [root.certificate], crl=ca.crl()))


def test_crl_signed_by_another_key_is_refused(pki: tuple[CompositeCertificateAuthority,
                                                                 CompositeCertificateAuthority,
                                                                 x509.Certificate]) -> None:
    """A CRL named for the issuer but signed by another CA's key is a bad CRL, not a silent pass."""
    root, issuing, leaf = pki
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuing.certificate.subject)
               .last_update(NOW - datetime.timedelta(minutes=1)).next_update(NOW + datetime.timedelta(hours=1)))
    forged = sign_crl(builder, root.signer)
    _refused(Reason.BAD_CRL, lambda: verify_chain(leaf, [issuing.certificate], [root.certificate], crl=forged))
