"""`verify_chain` for chains holding composite ML-DSA signatures: the one hand-written path validator.

It exists only because no library verifies composite signatures: OpenSSL (which
`signers.x509.verify_chain` uses for every other chain) and `cryptography` know neither the
composite OIDs nor the construction. Importing this module registers `verify_composite_chain`
with `signers.x509.chain.register_chain_verifier` for every composite signature OID, so
`verify_chain` hands it any question in which a certificate carries a composite signature
(and `signers.algorithm_modules` imports this module when `verify_chain` meets one).

What it checks, with the `Reason`s OpenSSL's errors map to (`signers.x509.openssl_path`):

- the path, built from the leaf by issuer/subject name (the authority key identifier only
  orders same-named candidates), ends at a root given in `roots` that is self-signed (a
  trust anchor; a root that is not self-signed may only serve as an intermediate), within
  16 certificates: else WRONG_ISSUER / PATH_LENGTH_EXCEEDED;
- every signature by its issuer's key: composite (`verify_signed_by`, both halves, the OID
  inside and outside the TBS the issuer key's own) or classical (`cryptography`): BAD_SIGNATURE;
- every certificate valid at `at` (default now): NOT_YET_VALID / EXPIRED; extensions that
  parse (INVALID) and no critical extension beyond basicConstraints, keyUsage, extendedKeyUsage
  and subjectAltName (UNHANDLED_CRITICAL_EXTENSION: name constraints and policies are not
  implemented here, so a CA that makes them critical is refused, never half-checked);
- every issuer: basicConstraints CA:TRUE (NOT_A_CA), a keyUsage extension (INVALID, as
  ``-x509_strict``) with keyCertSign (KEY_USAGE), its pathLenConstraint counting the
  non-self-issued intermediates below it (PATH_LENGTH_EXCEEDED);
- `extended_key_usages`: the leaf's EKU, when present, lists each (or anyExtendedKeyUsage);
  for the purposes OpenSSL checks path-wide (client_auth, server_auth, email_protection,
  time_stamping) so does every CA's EKU when present: KEY_USAGE;
- CRLs, as the OpenSSL path does: a certificate whose issuer has CRLs among `crls` (every
  certificate below the root with `require_crl`) is checked against them. Each such CRL
  must be signed by the issuer (composite or classical), the issuer's keyUsage (when
  present) must allow cRLSign, it must be current at `at` and have no critical extension
  beyond issuingDistributionPoint, and at least one must cover the certificate (its
  issuingDistributionPoint scope; indirect, reason-partitioned and attribute CRLs cover
  nothing): BAD_CRL; a listed serial: REVOKED.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from signers.errors import InvalidSignature
from signers.x509.chain import ChainQuestion, register_chain_verifier
from signers.x509.errors import CertificateError, Reason, plain_error
from signers.x509.openssl_path import PURPOSES

from .variants import CompositeAlgorithm
from .x509_verify import verify_signed_by

__all__ = ["MAX_PATH", "verify_composite_chain"]

MAX_PATH = 16  # a loop or an absurd chain stops here
_UNDERSTOOD = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
})
_UNDERSTOOD_CRL = frozenset({ExtensionOID.ISSUING_DISTRIBUTION_POINT})

Signed = Union[x509.Certificate, x509.CertificateRevocationList]


def verify_composite_chain(question: ChainQuestion) -> list[x509.Certificate]:
    """The path leaf -> ... -> root, or CertificateError with the first reason it does not hold."""
    when = question.at or datetime.datetime.now(datetime.UTC)
    anchors = {_der(root) for root in question.roots if _self_signed(root)}
    candidates = [*question.intermediates, *question.roots]
    path = [question.leaf]
    while True:
        current = path[-1]
        _check_certificate(current, when)
        if _der(current) in anchors:
            break
        if len(path) > MAX_PATH:
            raise CertificateError(Reason.PATH_LENGTH_EXCEEDED, current, f"no root within {MAX_PATH} certificates")
        issuer = _find_issuer(current, candidates, path)
        _check_issuer(issuer, path)
        path.append(issuer)
    _check_purposes(path, question.extended_key_usages)
    for depth, certificate in enumerate(path[:-1]):
        _check_revocation(certificate, path[depth + 1], question, when)
    return path


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _signature_failure(signed: Signed, issuer: x509.Certificate) -> str | None:
    """None when `issuer`'s key made `signed`'s signature (composite or classical); else why not."""
    if CompositeAlgorithm.by_oid(signed.signature_algorithm_oid.dotted_string) is not None:
        try:
            verify_signed_by(signed, issuer)
        except InvalidSignature as e:
            return str(e)
        return None
    try:
        if isinstance(signed, x509.Certificate):
            signed.verify_directly_issued_by(issuer)
        elif not signed.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            return "signature does not verify with the issuer's key"
    except _CryptoInvalidSignature:
        return "signature does not verify with the issuer's key"
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        return f"signature cannot be checked with the issuer's key: {plain_error(e)}"
    return None


def _self_signed(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject and _signature_failure(certificate, certificate) is None


def _extensions(certificate: x509.Certificate) -> x509.Extensions:
    try:
        return certificate.extensions
    except ValueError as e:
        raise CertificateError(Reason.INVALID, certificate, f"malformed extensions: {plain_error(e)}") from None


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return _extensions(certificate).get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_certificate(certificate: x509.Certificate, when: datetime.datetime) -> None:
    if when < certificate.not_valid_before_utc:
        raise CertificateError(Reason.NOT_YET_VALID, certificate,
                               f"valid from {certificate.not_valid_before_utc.isoformat()}")
    if when > certificate.not_valid_after_utc:
        raise CertificateError(Reason.EXPIRED, certificate, f"expired {certificate.not_valid_after_utc.isoformat()}")
    for extension in _extensions(certificate):
        if extension.critical and extension.oid not in _UNDERSTOOD:
            name = getattr(extension.oid, "_name", None) or extension.oid.dotted_string
            raise CertificateError(Reason.UNHANDLED_CRITICAL_EXTENSION, certificate, name)


def _find_issuer(certificate: x509.Certificate, candidates: Sequence[x509.Certificate],
                 path: Sequence[x509.Certificate]) -> x509.Certificate:
    """The candidate named as the issuer whose key verifies the signature (a matching key id tried first)."""
    named = [c for c in candidates if c.subject == certificate.issuer and c not in path]
    if not named:
        raise CertificateError(Reason.WRONG_ISSUER, certificate,
                               f"no trusted or supplied certificate is named {certificate.issuer.rfc4514_string()!r}")
    authority = _extension(certificate, x509.AuthorityKeyIdentifier)
    wanted = authority.key_identifier if isinstance(authority, x509.AuthorityKeyIdentifier) else None
    if wanted is not None:  # only a hint: a candidate with another key id is still tried
        named.sort(key=lambda c: getattr(_extension(c, x509.SubjectKeyIdentifier), "digest", None) != wanted)
    failures = []
    for candidate in named:
        failure = _signature_failure(certificate, candidate)
        if failure is None:
            return candidate
        failures.append(failure)
    raise CertificateError(Reason.BAD_SIGNATURE, certificate, failures[0])


def _check_issuer(issuer: x509.Certificate, path: Sequence[x509.Certificate]) -> None:
    """`issuer` may sign the certificate at the end of `path`, with path[1:] the CAs below it."""
    constraints = _extension(issuer, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints):
        raise CertificateError(Reason.NOT_A_CA, issuer, "no basicConstraints extension")
    if not constraints.ca:
        raise CertificateError(Reason.NOT_A_CA, issuer, "basicConstraints CA:FALSE")
    usage = _extension(issuer, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage):
        raise CertificateError(Reason.INVALID, issuer, "a CA certificate without keyUsage (RFC 5280 4.2.1.3)")
    if not usage.key_cert_sign:
        raise CertificateError(Reason.KEY_USAGE, issuer, "keyCertSign not set")
    below = sum(1 for c in path[1:] if c.issuer != c.subject)
    if constraints.path_length is not None and below > constraints.path_length:
        raise CertificateError(Reason.PATH_LENGTH_EXCEEDED, issuer,
                               f"pathlen {constraints.path_length}, {below} CA certificate(s) below it")


def _check_purposes(path: Sequence[x509.Certificate], required: Sequence[x509.ObjectIdentifier]) -> None:
    for depth, certificate in enumerate(path):
        wanted = required if depth == 0 else [oid for oid in required if oid in PURPOSES]
        usage = _extension(certificate, x509.ExtendedKeyUsage) if wanted else None
        if not isinstance(usage, x509.ExtendedKeyUsage) or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usage:
            continue  # absent: any usage (as OpenSSL)
        missing = [oid.dotted_string for oid in wanted if oid not in usage]
        if missing:
            raise CertificateError(Reason.KEY_USAGE, certificate, f"extendedKeyUsage lacks {', '.join(missing)}")


def _check_revocation(certificate: x509.Certificate, issuer: x509.Certificate, question: ChainQuestion,
                      when: datetime.datetime) -> None:
    relevant = [c for c in question.crls if c.issuer == issuer.subject]
    if not relevant:
        if question.require_crl:
            raise CertificateError(Reason.BAD_CRL, certificate, f"no CRL from {issuer.subject.rfc4514_string()!r}")
        return
    for revocation_list in relevant:
        _check_crl(revocation_list, certificate, issuer, when)
    covering = [c for c in relevant if _covers(c, certificate)]
    if not covering:
        raise CertificateError(Reason.BAD_CRL, certificate, "no CRL given covers it (issuingDistributionPoint scope)")
    for revocation_list in covering:
        entry = revocation_list.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None:
            raise CertificateError(Reason.REVOKED, certificate,
                                   f"revoked {entry.revocation_date_utc.isoformat()}" + _reason_suffix(entry))


def _check_crl(revocation_list: x509.CertificateRevocationList, certificate: x509.Certificate,
               issuer: x509.Certificate, when: datetime.datetime) -> None:
    failure = _signature_failure(revocation_list, issuer)
    if failure is not None:
        raise CertificateError(Reason.BAD_CRL, certificate, f"the CRL's signature does not verify: {failure}")
    usage = _extension(issuer, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.crl_sign:
        raise CertificateError(Reason.BAD_CRL, certificate, "the CRL's issuer lacks cRLSign")
    if when < revocation_list.last_update_utc:
        raise CertificateError(Reason.BAD_CRL, certificate, "the CRL is not yet valid")
    next_update = revocation_list.next_update_utc
    if next_update is not None and when > next_update:
        raise CertificateError(Reason.BAD_CRL, certificate, f"the CRL is stale (next update {next_update.isoformat()})")
    try:
        extensions = list(revocation_list.extensions)
    except ValueError as e:
        raise CertificateError(Reason.BAD_CRL, certificate, f"the CRL's extensions: {plain_error(e)}") from None
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRL:
            name = getattr(extension.oid, "_name", None) or extension.oid.dotted_string
            raise CertificateError(Reason.BAD_CRL, certificate, f"the CRL has an unhandled critical extension {name}")


def _covers(revocation_list: x509.CertificateRevocationList, certificate: x509.Certificate) -> bool:
    """True when the CRL's scope (issuingDistributionPoint, RFC 5280 5.2.5) includes `certificate`."""
    try:
        scope = revocation_list.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    constraints = _extension(certificate, x509.BasicConstraints)
    is_ca = isinstance(constraints, x509.BasicConstraints) and constraints.ca
    if (scope.indirect_crl or scope.only_some_reasons or scope.only_contains_attribute_certs
            or (scope.only_contains_user_certs and is_ca) or (scope.only_contains_ca_certs and not is_ca)
            or scope.relative_name is not None):
        return False
    if scope.full_name is None:
        return True
    points = _extension(certificate, x509.CRLDistributionPoints)
    given: list[x509.DistributionPoint] = list(points) if isinstance(points, x509.CRLDistributionPoints) else []
    names = {name for point in given for name in (point.full_name or [])}
    return any(name in names for name in scope.full_name)


def _reason_suffix(entry: x509.RevokedCertificate) -> str:
    try:
        return f", {entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value}"
    except (x509.ExtensionNotFound, ValueError):
        return ""


for _variant in CompositeAlgorithm:
    register_chain_verifier(_variant.oid, verify_composite_chain)
del _variant
