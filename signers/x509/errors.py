"""The CA's errors: why a chain was refused, why a request was refused.

`CertificateError` is an `InvalidSignature` (the CLI's "verification failed", exit 1) that
names the certificate and carries a `Reason`, so callers branch on `e.reason`, never on
message text.
"""

from __future__ import annotations

import enum
from typing import Any

from cryptography import x509

from signers.errors import InvalidSignature, PermissionDenied

__all__ = ["CertificateError", "InvalidCSR", "PolicyRefused", "Reason", "describe", "plain_error"]


class Reason(enum.StrEnum):
    """Why `verify_chain` refused a certificate; the value is the human phrase."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    WRONG_ISSUER = "wrong issuer"  # no trusted or supplied certificate issued it
    BAD_SIGNATURE = "bad signature"
    NOT_A_CA = "not a CA"  # an issuer without basicConstraints CA:TRUE
    KEY_USAGE = "key usage"  # an issuer without keyCertSign, or a leaf without a required EKU
    PATH_LENGTH_EXCEEDED = "path length exceeded"
    REVOKED = "revoked"
    BAD_CRL = "bad CRL"  # a CRL whose signature, issuer or dates do not hold
    UNHANDLED_CRITICAL_EXTENSION = "unhandled critical extension"
    NAME_CONSTRAINTS = "name constraints violated"
    POLICY = "certificate policy"  # an invalid policy extension, or no acceptable policy when one is required
    INVALID = "invalid certificate"  # malformed or not RFC 5280 conformant (the detail says what OpenSSL found)
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"  # no validator can check this signature algorithm

    def __str__(self) -> str:
        return self.value


def describe(certificate: x509.Certificate) -> str:
    """`CN=agent,O=x (serial 0x1f...)`: enough to find the certificate, nothing secret. Never raises."""
    try:
        subject = certificate.subject.rfc4514_string() or "<empty subject>"
    except ValueError:  # a malformed name is reported, not raised
        subject = "<unreadable subject>"
    return f"{subject} (serial 0x{certificate.serial_number:x})"


def plain_error(error: BaseException) -> str:
    """`cryptography`'s message for damaged DER without the Rust `ParseError { ... }` dump: one short line."""
    text = str(error).split("ParseError", 1)[0].rstrip(" :{(")
    return text or type(error).__name__


class CertificateError(InvalidSignature):
    """A certificate chain did not verify: `.reason` says why, `.certificate` says which certificate."""

    openssl_code: int | None = None  # OpenSSL's X509_V_ERR_* code when OpenSSL refused the path
    depth: int | None = None  # where in the path (0 = the certificate being checked), when OpenSSL says

    def __init__(self, reason: Reason, certificate: x509.Certificate | None, detail: str = "") -> None:
        self.reason = reason
        self.certificate = certificate
        self.detail = detail
        subject = describe(certificate) if certificate is not None else "certificate"
        super().__init__(f"{subject}: {reason.value}" + (f" ({detail})" if detail else ""))


class InvalidCSR(InvalidSignature):
    """A certificate signing request whose self-signature does not verify, or that cannot be used."""


class PolicyRefused(PermissionDenied):
    """The CA's policy hook refused an issuance request; `.request` is what was asked, `.reason` why."""

    def __init__(self, reason: str, request: Any = None) -> None:
        self.reason = reason
        self.request = request
        super().__init__(f"policy refused the request: {reason}")
