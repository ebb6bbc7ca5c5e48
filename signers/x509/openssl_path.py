"""RFC 5280 path validation by OpenSSL (pyOpenSSL on `cryptography`'s bundled OpenSSL).

OpenSSL builds the path, checks signatures (P-256/384/521, secp256k1, Ed25519, RSA PKCS#1
and PSS, ML-DSA-44/65/87), validity, basicConstraints and path length (self-issued
certificates not counted), key usage, name constraints, critical extensions, AKI/SKI
matching, the required purpose of every certificate in the path, and CRLs (scope, issuer,
cRLSign, dates, critical CRL extensions). Flags are those of
``openssl verify -x509_strict [-crl_check_all] [-purpose ...]``. This module only feeds it and
maps its verify error codes to the typed `Reason`s.

CRLs: a certificate in the path is checked against CRLs when its issuer's name appears
among the CRLs given (or always, with `require_crl`); OpenSSL then insists on a CRL that
applies to it (fail closed: a CRL scoped to CA certificates does not cover a leaf).
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import crypto
from OpenSSL._util import lib as _openssl

from signers.errors import ConfigError

from .errors import CertificateError, Reason, plain_error

__all__ = ["PURPOSES", "OpenSSLPath"]

# Extended key usages OpenSSL can check as a purpose of the whole path (leaf and CAs).
PURPOSES: dict[x509.ObjectIdentifier, int] = {
    x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH: _openssl.X509_PURPOSE_SSL_CLIENT,
    x509.oid.ExtendedKeyUsageOID.SERVER_AUTH: _openssl.X509_PURPOSE_SSL_SERVER,
    x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION: _openssl.X509_PURPOSE_SMIME_SIGN,
    x509.oid.ExtendedKeyUsageOID.TIME_STAMPING: _openssl.X509_PURPOSE_TIMESTAMP_SIGN,
}

_CRL_FLAGS = crypto.X509StoreFlags.CRL_CHECK


def _codes(reason: Reason, *names: str) -> dict[int, Reason]:
    return {getattr(_openssl, f"X509_V_ERR_{name}"): reason for name in names if hasattr(_openssl, f"X509_V_ERR_{name}")}


# OpenSSL's X509_V_ERR_* codes by the Reason they are. A code not listed is Reason.INVALID.
REASONS: dict[int, Reason] = {
    **_codes(Reason.EXPIRED, "CERT_HAS_EXPIRED"),
    **_codes(Reason.NOT_YET_VALID, "CERT_NOT_YET_VALID"),
    **_codes(Reason.WRONG_ISSUER, "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
             "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN",
             "CERT_UNTRUSTED", "CERT_REJECTED", "SUBJECT_ISSUER_MISMATCH", "AKID_SKID_MISMATCH",
             "AKID_ISSUER_SERIAL_MISMATCH"),
    **_codes(Reason.BAD_SIGNATURE, "CERT_SIGNATURE_FAILURE", "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
             "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY"),
    **_codes(Reason.NOT_A_CA, "INVALID_CA", "INVALID_NON_CA"),
    **_codes(Reason.KEY_USAGE, "KEYUSAGE_NO_CERTSIGN", "INVALID_PURPOSE", "KEYUSAGE_NO_DIGITAL_SIGNATURE"),
    **_codes(Reason.PATH_LENGTH_EXCEEDED, "PATH_LENGTH_EXCEEDED", "CERT_CHAIN_TOO_LONG"),
    **_codes(Reason.REVOKED, "CERT_REVOKED"),
    **_codes(Reason.BAD_CRL, "UNABLE_TO_GET_CRL", "CRL_SIGNATURE_FAILURE", "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
             "CRL_NOT_YET_VALID", "CRL_HAS_EXPIRED", "KEYUSAGE_NO_CRL_SIGN", "UNHANDLED_CRITICAL_CRL_EXTENSION",
             "DIFFERENT_CRL_SCOPE", "UNABLE_TO_GET_CRL_ISSUER", "CRL_PATH_VALIDATION_ERROR",
             "ERROR_IN_CRL_LAST_UPDATE_FIELD", "ERROR_IN_CRL_NEXT_UPDATE_FIELD"),
    **_codes(Reason.UNHANDLED_CRITICAL_EXTENSION, "UNHANDLED_CRITICAL_EXTENSION"),
    **_codes(Reason.NAME_CONSTRAINTS, "PERMITTED_VIOLATION", "EXCLUDED_VIOLATION", "SUBTREE_MINMAX",
             "UNSUPPORTED_CONSTRAINT_TYPE", "UNSUPPORTED_CONSTRAINT_SYNTAX", "UNSUPPORTED_NAME_SYNTAX"),
    **_codes(Reason.POLICY, "INVALID_POLICY_EXTENSION", "NO_EXPLICIT_POLICY"),
}


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _name_key(name: x509.Name) -> frozenset[tuple[str, str]]:
    """A loose form of a name (case, spacing and string type ignored) to decide whether a CRL may apply.

    Looser than OpenSSL's canonical comparison on purpose: a false match only makes OpenSSL
    look for an applicable CRL, and fail closed when it finds none.
    """
    return frozenset((a.oid.dotted_string, re.sub(r"\s+", "", str(a.value)).lower()) for a in name)


def _to_openssl(certificate: x509.Certificate) -> crypto.X509:
    """pyOpenSSL's copy of a certificate; CertificateError when OpenSSL cannot parse what cryptography did."""
    try:
        return crypto.X509.from_cryptography(certificate)
    except crypto.Error as e:
        raise CertificateError(Reason.INVALID, certificate, f"OpenSSL cannot read it: {e}") from None


@dataclass(frozen=True)
class OpenSSLPath:
    """One verification question: these certificates, this time, these CRLs, these purposes."""

    leaf: x509.Certificate
    intermediates: Sequence[x509.Certificate]
    roots: Sequence[x509.Certificate]
    at: datetime.datetime | None
    crls: Sequence[x509.CertificateRevocationList]
    require_crl: bool
    purposes: Sequence[int]

    def verify(self) -> list[x509.Certificate]:
        """The path leaf -> ... -> trust anchor as OpenSSL built it.

        Raises CertificateError with the mapped Reason, ConfigError when a purpose cannot be set.
        """
        path: list[x509.Certificate] = []
        for purpose in self.purposes or [0]:
            path = self._run(self.leaf, self.intermediates, purpose, crl_check=False)
        if not (self.crls or self.require_crl):
            return path
        issuers = {_name_key(c.issuer) for c in self.crls}
        checked = [self.require_crl or _name_key(c.issuer) in issuers for c in path[:-1]]
        if all(checked):
            self._run(self.leaf, self.intermediates, self.purposes[0] if self.purposes else 0,
                      crl_check=True, whole_path=True)
            return path
        for depth, certificate in enumerate(path[:-1]):
            if checked[depth]:
                self._run(certificate, path[depth + 1:-1], 0, crl_check=True)
        return path

    def _store(self, purpose: int, flags: int) -> crypto.X509Store:
        store = crypto.X509Store()
        for root in self.roots:
            store.add_cert(_to_openssl(root))
        for revocation_list in self.crls:
            store.add_crl(revocation_list)
        store.set_flags(flags)
        if self.at is not None:
            store.set_time(self.at.astimezone(datetime.UTC).replace(tzinfo=None))
        if purpose:
            # pyOpenSSL has no setter for the purpose; OpenSSL's own call, on the store pyOpenSSL made.
            pointer = getattr(store, "_store", None)
            if pointer is None or _openssl.X509_STORE_set_purpose(pointer, purpose) != 1:
                raise ConfigError("this pyOpenSSL cannot set a verification purpose; the EKU cannot be checked")
        return store

    def _run(self, target: x509.Certificate, untrusted: Sequence[x509.Certificate], purpose: int, *,
             crl_check: bool, whole_path: bool = False) -> list[x509.Certificate]:
        flags = crypto.X509StoreFlags.X509_STRICT
        if crl_check:
            flags |= _CRL_FLAGS | (crypto.X509StoreFlags.CRL_CHECK_ALL if whole_path else 0)
        context = crypto.X509StoreContext(
            self._store(purpose, flags), _to_openssl(target), [_to_openssl(c) for c in untrusted])
        try:
            chain = context.get_verified_chain()
        except crypto.X509StoreContextError as e:
            raise self._error(e) from None
        return [self._original(c.to_cryptography()) for c in chain]

    def _original(self, certificate: x509.Certificate) -> x509.Certificate:
        """The caller's own object for a certificate OpenSSL handed back (same DER)."""
        wanted = _der(certificate)
        for candidate in itertools.chain([self.leaf], self.intermediates, self.roots):
            if _der(candidate) == wanted:
                return candidate
        return certificate

    def _unreadable(self) -> tuple[x509.Certificate, str] | None:
        """The first certificate given whose extensions do not parse, and why."""
        for candidate in itertools.chain([self.leaf], self.intermediates, self.roots):
            try:
                candidate.extensions  # noqa: B018 - parsing is the check
            except ValueError as e:
                return candidate, f"malformed extensions: {plain_error(e)}"
        return None

    def _revocation_detail(self, certificate: x509.Certificate) -> str:
        """`, revoked <date>, keyCompromise` from the CRL entry OpenSSL found (for the message only)."""
        for revocation_list in self.crls:
            entry = revocation_list.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is None:
                continue
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
            except (x509.ExtensionNotFound, ValueError):
                reason = ""
            return f", revoked {entry.revocation_date_utc.isoformat()}" + (f", {reason}" if reason else "")
        return ""

    def _error(self, error: crypto.X509StoreContextError) -> CertificateError:
        code, depth, message = error.errors[0], error.errors[1], str(error.errors[2])
        failing = self._original(error.certificate.to_cryptography()) if error.certificate is not None else None
        reason = REASONS.get(int(code), Reason.INVALID)
        unreadable = self._unreadable()
        if unreadable is not None and reason is Reason.WRONG_ISSUER:
            # OpenSSL cannot use a certificate whose extensions it cannot parse, so it finds no issuer:
            # name the damaged certificate instead.
            failing, reason, message = unreadable[0], Reason.INVALID, f"{unreadable[1]} ({message})"
        if reason is Reason.REVOKED and failing is not None:
            message += self._revocation_detail(failing)
        result = CertificateError(reason, failing, f"OpenSSL: {message}")
        result.openssl_code = int(code)
        result.depth = int(depth)
        return result
