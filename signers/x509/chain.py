"""verify_chain: is this leaf certificate trusted, by these roots, at this time, given these CRLs?

A deliberately small RFC 5280 path validator for the certificates this CA issues (and ones
shaped like them): it walks from the leaf to a trusted root by issuer name (and key identifier),
and checks at every step the signature, the validity window, basicConstraints CA and path
length, keyCertSign, critical extensions it does not understand, and revocation by CRL (whose
own signature, issuer and dates are checked against the issuing certificate). It is not a
Web PKI validator: no name constraints, no policies. The first failure is raised as a
`CertificateError` naming the certificate and the `Reason`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from signers.errors import ConfigError, InvalidSignature

from .errors import CertificateError, Reason
from .profile import extended_key_usage

__all__ = ["MAX_PATH", "register_signature_verifier", "verify_chain"]

MAX_PATH = 16  # a loop or an absurd chain stops here
_UNDERSTOOD = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
})


# Signature algorithms `cryptography` cannot check (composite ML-DSA, signers.composite) register
# a checker per OID: called with (certificate or CRL, issuer certificate), it raises
# signers.errors.InvalidSignature when the signature does not verify. (hook)
_SIGNATURE_VERIFIERS: dict[str, Callable[[Any, x509.Certificate], None]] = {}


def register_signature_verifier(oid: str, verifier: Callable[[Any, x509.Certificate], None]) -> None:
    """Check signatures with algorithm `oid` with `verifier` (certificates and CRLs)."""
    _SIGNATURE_VERIFIERS[oid] = verifier


def _extra_signature_failure(signed: Any, issuer: x509.Certificate) -> str | None:
    """None when a registered verifier accepts `signed`; why not when it refuses; "" when none is registered."""
    verifier = _SIGNATURE_VERIFIERS.get(signed.signature_algorithm_oid.dotted_string)
    if verifier is None:
        return ""
    try:
        verifier(signed, issuer)
    except InvalidSignature as e:
        return f"signature does not verify with the issuer's key: {e}"
    return None


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] = (),
    *,
    at: datetime.datetime | None = None,
    crl: x509.CertificateRevocationList | None = None,
    crls: Iterable[x509.CertificateRevocationList] = (),
    require_crl: bool = False,
    extended_key_usages: Iterable[str | x509.ObjectIdentifier] = (),
) -> list[x509.Certificate]:
    """The path leaf -> ... -> root, or CertificateError with the first reason it does not hold.

    `at` defaults to now. A CRL counts for the certificates its issuer issued; with
    `require_crl` every non-root certificate must be covered by one. `extended_key_usages`
    are required of the leaf (names such as `client_auth`, or OIDs).
    """
    if not roots:
        raise ConfigError("verify_chain needs at least one trusted root")
    when = _utc(at or datetime.datetime.now(datetime.UTC))
    revocation_lists = [*([crl] if crl is not None else []), *crls]
    trusted = {r.public_bytes(Encoding.DER) for r in roots}
    candidates = [*intermediates, *roots]
    _check_leaf_usage(leaf, extended_key_usage(extended_key_usages))

    path = [leaf]
    current = leaf
    while True:
        _check_dates(current, when)
        _check_critical_extensions(current)
        if current.public_bytes(Encoding.DER) in trusted:
            return path
        if len(path) > MAX_PATH:
            raise CertificateError(Reason.PATH_LENGTH_EXCEEDED, current, f"no root within {MAX_PATH} certificates")
        issuer = _find_issuer(current, candidates, path)
        _check_issuer(issuer, below=len(path) - 1)
        _check_revocation(current, issuer, revocation_lists, when, require_crl)
        path.append(issuer)
        current = issuer


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def _check_dates(certificate: x509.Certificate, when: datetime.datetime) -> None:
    if when < certificate.not_valid_before_utc:
        raise CertificateError(Reason.NOT_YET_VALID, certificate,
                               f"valid from {certificate.not_valid_before_utc.isoformat()}")
    if when > certificate.not_valid_after_utc:
        raise CertificateError(Reason.EXPIRED, certificate, f"expired {certificate.not_valid_after_utc.isoformat()}")


def _check_critical_extensions(certificate: x509.Certificate) -> None:
    for extension in certificate.extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD:
            name = getattr(extension.oid, "_name", None) or extension.oid.dotted_string
            raise CertificateError(Reason.UNHANDLED_CRITICAL_EXTENSION, certificate, name)


def _key_identifier(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = certificate.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None when `issuer`'s key verifies `certificate`'s signature; else why not."""
    extra = _extra_signature_failure(certificate, issuer)
    if extra != "":
        return extra
    try:
        certificate.verify_directly_issued_by(issuer)
    except _CryptoInvalidSignature:
        return "signature does not verify with the issuer's key"
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        return f"signature cannot be checked with the issuer's key: {e}"
    return None


def _find_issuer(
    certificate: x509.Certificate, candidates: Sequence[x509.Certificate], path: Sequence[x509.Certificate]
) -> x509.Certificate:
    """The candidate named as the issuer whose key verifies the signature (preferring a matching key id)."""
    named = [c for c in candidates if c.subject == certificate.issuer and c not in path]
    if not named:
        raise CertificateError(Reason.WRONG_ISSUER, certificate,
                               f"no trusted or supplied certificate is named {certificate.issuer.rfc4514_string()!r}")
    wanted = _key_identifier(certificate, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if wanted is not None:
        # Certificates with the right key id first; a wrong one is still tried (AKI is only a hint).
        named.sort(key=lambda c: _key_identifier(c, ExtensionOID.SUBJECT_KEY_IDENTIFIER) != wanted)
    failures = []
    for candidate in named:
        failure = _signed_by(certificate, candidate)
        if failure is None:
            return candidate
        failures.append(failure)
    raise CertificateError(Reason.BAD_SIGNATURE, certificate, failures[0])


def _check_issuer(issuer: x509.Certificate, *, below: int) -> None:
    """`issuer` may sign certificates, with `below` intermediate CA certificates beneath it in this path."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CertificateError(Reason.NOT_A_CA, issuer, "no basicConstraints extension") from None
    if not constraints.ca:
        raise CertificateError(Reason.NOT_A_CA, issuer, "basicConstraints CA:FALSE")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            raise CertificateError(Reason.KEY_USAGE, issuer, "keyCertSign not set")
    except x509.ExtensionNotFound:
        pass  # RFC 5280 4.2.1.3: absent key usage means any usage
    if constraints.path_length is not None and below > constraints.path_length:
        raise CertificateError(Reason.PATH_LENGTH_EXCEEDED, issuer,
                               f"pathlen {constraints.path_length}, {below} CA certificate(s) below it")


def _check_revocation(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    revocation_lists: Sequence[x509.CertificateRevocationList],
    when: datetime.datetime,
    require_crl: bool,
) -> None:
    relevant = [c for c in revocation_lists if c.issuer == issuer.subject]
    if not relevant:
        if require_crl:
            raise CertificateError(Reason.BAD_CRL, certificate, f"no CRL from {issuer.subject.rfc4514_string()!r}")
        return
    for revocation_list in relevant:
        extra = _extra_signature_failure(revocation_list, issuer)
        if extra != "":
            valid = extra is None
        else:
            try:
                valid = revocation_list.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError, UnsupportedAlgorithm):
                valid = False
        if not valid:
            raise CertificateError(Reason.BAD_CRL, certificate, "the CRL's signature does not verify with its issuer")
        if when < revocation_list.last_update_utc:
            raise CertificateError(Reason.BAD_CRL, certificate, "the CRL is not yet valid")
        next_update = revocation_list.next_update_utc
        if next_update is not None and when > next_update:
            raise CertificateError(Reason.BAD_CRL, certificate, f"the CRL is stale (next update {next_update})")
        entry = revocation_list.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None:
            raise CertificateError(Reason.REVOKED, certificate, f"revoked {entry.revocation_date_utc.isoformat()}"
                                   + _reason_suffix(entry))


def _reason_suffix(entry: x509.RevokedCertificate) -> str:
    try:
        return f", {entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value}"
    except x509.ExtensionNotFound:
        return ""


def _check_leaf_usage(leaf: x509.Certificate, required: Sequence[x509.ObjectIdentifier]) -> None:
    if not required:
        return
    try:
        present = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        raise CertificateError(Reason.KEY_USAGE, leaf, "no extendedKeyUsage extension") from None
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in present:
        return
    missing = [oid.dotted_string for oid in required if oid not in present]
    if missing:
        raise CertificateError(Reason.KEY_USAGE, leaf, f"extendedKeyUsage lacks {', '.join(missing)}")
