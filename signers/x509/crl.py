"""RFC 5280 CRLs from the revocation store, signed by the CA's Signer.

Revoked serials live in the shared revocation store (`signers.revocation`) as
kind ``x509-serial`` with the serial in lower-case hex, so one SQLite file can hold a CA's
serials beside token ids. A CRL lists every ``x509-serial`` record of the store it is given:
give each CA its own store (the CLI keeps one per CA directory).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from signers.errors import ConfigError
from signers.revocation import Revocation
from signers.signer import Signer

from .serials import parse_serial
from .tbs_signing import sign_crl

__all__ = ["REASONS", "build_crl", "reason_flag", "reason_name"]

# RFC 5280 5.3.1 reason names, in the spelling the CRL and `openssl crl -text` use.
REASONS: dict[str, x509.ReasonFlags] = {flag.value: flag for flag in x509.ReasonFlags}


def reason_name(reason: str | x509.ReasonFlags) -> str:
    """The RFC 5280 name (`keyCompromise`) for `key_compromise`, `key-compromise`, `keyCompromise` or a flag."""
    if isinstance(reason, x509.ReasonFlags):
        return reason.value
    wanted = reason.replace("_", "").replace("-", "").replace(" ", "").lower()
    for name in REASONS:
        if name.lower() == wanted:
            return name
    raise ConfigError(f"unknown revocation reason {reason!r}; known: {', '.join(REASONS)}")


def reason_flag(reason: str) -> x509.ReasonFlags:
    """The ReasonFlags member for any spelling `reason_name` accepts; ConfigError otherwise."""
    return REASONS[reason_name(reason)]


def _serial(record: Revocation) -> int:
    try:
        return parse_serial(record.id)
    except ConfigError as e:
        raise ConfigError(f"revocation store holds a malformed certificate serial {record.id[:60]!r}") from e


def _entry(record: Revocation, serial: int) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(record.revoked_at)
    reason = reason_flag(record.reason or "unspecified")
    if reason is not x509.ReasonFlags.unspecified:  # RFC 5280 5.3.1: omit rather than write unspecified
        builder = builder.add_extension(x509.CRLReason(reason), critical=False)
    return builder.build()


def build_crl(
    issuer: x509.Certificate,
    signer: Signer,
    records: Iterable[Revocation],
    *,
    this_update: datetime.datetime,
    next_update: datetime.datetime,
    number: int,
) -> x509.CertificateRevocationList:
    """A CRL from `issuer` listing `records` (Revocation objects of kind x509-serial).

    Records naming one serial under several spellings (`0xAB`, `ab`) give one entry: the
    earliest revocation. Raises ConfigError for a malformed serial or reason in the store.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    try:
        ski = issuer.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)  # type: ignore[arg-type]
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    builder = builder.add_extension(aki, critical=False)
    earliest: dict[int, Revocation] = {}
    for record in records:
        serial = _serial(record)
        if serial not in earliest or record.revoked_at < earliest[serial].revoked_at:
            earliest[serial] = record
    for serial, record in sorted(earliest.items()):
        builder = builder.add_revoked_certificate(_entry(record, serial))
    return sign_crl(builder, signer)
