"""CompositeCertificateAuthority: roots, intermediates, leaves and CRLs where any key may be composite.

The same shape as `signers.x509.CertificateAuthority` (create_root, create_intermediate,
issue, revoke, crl) with the certificate profile of `signers.x509.profile`, but built on
`x509_signing` so that the CA key, the subject key, or both are composite ML-DSA keys
(the CA key in two back ends). Certificates and CRLs verify with `signers.x509.verify_chain`
once `signers.composite` is imported (it registers the composite signature checker).
Key usage follows the draft: digitalSignature / keyCertSign / cRLSign only, never an
encipherment or agreement bit.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from signers.errors import ConfigError
from signers.keys import PublicKey
from signers.revocation import MemoryRevocationStore, RevocationStore
from signers.signer import Signer
from signers.x509 import SubjectAltNames, extended_key_usage, key_usage, new_serial, parse_name, reason_name
from signers.x509.crl import reason_flag

from .public_key import CompositePublicKey
from .x509_signing import AnyPublicKey, sign_certificate, sign_crl, subject_key_identifier
from .x509_verify import certificate_public_key

__all__ = ["CompositeCertificateAuthority"]

BACKDATE = datetime.timedelta(minutes=1)
_CA_USAGE = ("digital_signature", "key_cert_sign", "crl_sign")
_LEAF_USAGE = ("digital_signature",)
_FORBIDDEN_USAGE = ("key_encipherment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_of(subject: AnyPublicKey | Signer) -> AnyPublicKey:
    if isinstance(subject, CompositePublicKey | PublicKey):
        return subject
    key = subject.public_key
    if not isinstance(key, CompositePublicKey | PublicKey):
        raise ConfigError(f"not a public key: {type(key).__name__}")
    return key


class CompositeCertificateAuthority:
    """A CA whose Signer may be a CompositeSigner; certificates for composite or classical subject keys."""

    def __init__(self, signer: Signer, certificate: x509.Certificate, *, chain: Sequence[x509.Certificate] = (),
                 revocations: RevocationStore | None = None) -> None:
        """ConfigError unless `certificate` holds `signer`'s key and is a CA certificate."""
        if certificate_public_key(certificate) != signer.public_key:
            raise ConfigError(f"the CA certificate's public key is not the key of signer {signer.uri}")
        try:
            if not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise ConfigError("the CA certificate is not a CA certificate (basicConstraints CA:FALSE)")
        except x509.ExtensionNotFound:
            raise ConfigError("the CA certificate has no basicConstraints extension") from None
        self.signer = signer
        self.certificate = certificate
        self.parents = tuple(chain)
        self.revocations: RevocationStore = revocations or MemoryRevocationStore()
        self._last_crl_number = 0

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return (self.certificate, *self.parents)

    @classmethod
    def create_root(cls, signer: Signer, subject: str | x509.Name, *,
                    validity: datetime.timedelta = datetime.timedelta(days=3650), path_length: int | None = None,
                    **options: Any) -> CompositeCertificateAuthority:
        name = parse_name(subject)
        key = _key_of(signer)
        ski = subject_key_identifier(key)
        now = _now()
        builder = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).serial_number(new_serial())
            .not_valid_before(now - BACKDATE).not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(key_usage(_CA_USAGE), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        )
        return cls(signer, sign_certificate(builder, signer, key), **options)

    def create_intermediate(self, signer: Signer, subject: str | x509.Name, *, path_length: int | None = 0,
                            validity: datetime.timedelta = datetime.timedelta(days=365),
                            **options: Any) -> CompositeCertificateAuthority:
        certificate = self.issue(signer, subject, is_ca=True, path_length=path_length, validity=validity)
        return CompositeCertificateAuthority(signer, certificate, chain=self.chain, **options)

    def issue(self, subject_key: AnyPublicKey | Signer, subject: str | x509.Name | None = None, *,
              dns_names: Iterable[str] = (), uris: Iterable[str] = (), emails: Iterable[str] = (),
              key_usages: Iterable[str] | None = None,
              extended_key_usages: Iterable[str | x509.ObjectIdentifier] | None = None,
              validity: datetime.timedelta = datetime.timedelta(hours=24), is_ca: bool = False,
              path_length: int | None = None) -> x509.Certificate:
        """A certificate for `subject_key` (ConfigError for an empty subject and no SAN, or a forbidden usage)."""
        key = _key_of(subject_key)
        names = SubjectAltNames(tuple(dns_names), tuple(uris), tuple(emails), ())
        name = parse_name(subject) if subject is not None else x509.Name([])
        if not name and not names:
            raise ConfigError("a certificate needs a subject or at least one subject alternative name")
        usages = tuple(key_usages) if key_usages is not None else (_CA_USAGE if is_ca else _LEAF_USAGE)
        if isinstance(key, CompositePublicKey) and set(usages) & set(_FORBIDDEN_USAGE):
            raise ConfigError("a composite ML-DSA key signs only: no encipherment or key agreement usage")
        start = _now() - BACKDATE
        end = min(start + validity, self.certificate.not_valid_after_utc)
        issuer_ski = self.certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
        builder = (
            x509.CertificateBuilder().subject_name(name).issuer_name(self.certificate.subject)
            .serial_number(new_serial()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
            .add_extension(key_usage(usages), critical=True)
            .add_extension(subject_key_identifier(key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),  # type: ignore[arg-type]
                           critical=False)
        )
        default_eku = () if is_ca else (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)
        eku = extended_key_usage(extended_key_usages) if extended_key_usages is not None else default_eku
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if names:
            builder = builder.add_extension(names.extension(), critical=not name)
        return sign_certificate(builder, self.signer, key)

    def revoke(self, serial: int | x509.Certificate, reason: str = "unspecified") -> None:
        number = serial.serial_number if isinstance(serial, x509.Certificate) else int(serial)
        self.revocations.revoke(format(number, "x"), kind="x509-serial", reason=reason_name(reason))

    def crl(self, *, validity: datetime.timedelta = datetime.timedelta(days=1)) -> x509.CertificateRevocationList:
        """A CRL of every revoked serial, signed by the CA's (composite) Signer."""
        now = _now()
        self._last_crl_number = max(self._last_crl_number + 1, int(now.timestamp() * 1000))
        issuer_ski = self.certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
            .last_update(now).next_update(now + validity)
            .add_extension(x509.CRLNumber(self._last_crl_number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),  # type: ignore[arg-type]
                           critical=False)
        )
        for record in self.revocations.list(kind="x509-serial"):
            entry = x509.RevokedCertificateBuilder().serial_number(int(record.id, 16)).revocation_date(record.revoked_at)
            flag = reason_flag(record.reason or "unspecified")
            if flag is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return sign_crl(builder, self.signer)
