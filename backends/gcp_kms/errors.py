"""The one place a google-api-core exception becomes a keyplane error (backends.translation's shape)."""

from __future__ import annotations

from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.sdk import require

from .client import tls_verification_failed

__all__ = ["EXCEPTIONS", "translate", "translated_error"]

# google.api_core.exceptions class name -> keyplane error (checked in this order: subclasses first).
EXCEPTIONS: dict[str, type[KeyplaneError]] = {
    "NotFound": KeyNotFound,
    "AlreadyExists": KeyExists,
    "Unauthenticated": AuthenticationFailed,
    "PermissionDenied": PermissionDenied,
    "FailedPrecondition": KeyNotFound,  # in KMS: the version is not ENABLED (destroyed, pending); DISABLED below
    "InvalidArgument": ConfigError,
    "MethodNotImplemented": AlgorithmNotSupported,
}


def translate(e: BaseException, what: str) -> KeyplaneError | None:
    """The keyplane error for an SDK failure while doing `what` (the SDK's message, never a credential).

    A refused TLS certificate is ConfigError naming ``ca-bundle``; a DISABLED version is
    KeyDisabled; a request CRC32C the service refused is BackendUnavailable (damaged in transit).
    """
    if isinstance(e, KeyplaneError):
        return e
    exc = require("google.api_core.exceptions", "gcp", "gcpkms")
    detail = str(getattr(e, "message", None) or e)
    text = f"Cloud KMS: cannot {what}: {detail[:500]}"
    if isinstance(e, exc.ServiceUnavailable) and tls_verification_failed(detail):
        return ConfigError(f"Cloud KMS: cannot {what}: the endpoint's TLS certificate was not trusted; for a "
                           "private endpoint or an emulator, name its CA file with ?ca-bundle=PATH")
    if isinstance(e, exc.FailedPrecondition) and "DISABLED" in detail:
        return KeyDisabled(text)
    if isinstance(e, exc.InvalidArgument) and ("checksum" in detail.lower() or "crc32c" in detail.lower()):
        return BackendUnavailable(text, e)  # the request's CRC32C failed: damaged in transit
    for name, error in EXCEPTIONS.items():
        if isinstance(e, getattr(exc, name)):
            return error(text)
    auth_errors = require("google.auth.exceptions", "gcp", "gcpkms")
    if isinstance(e, auth_errors.DefaultCredentialsError | auth_errors.RefreshError):
        return AuthenticationFailed(f"Cloud KMS: cannot {what}: no usable Google credentials ({type(e).__name__})")
    if isinstance(e, Exception):
        return BackendUnavailable(text, e)
    return None


def translated_error(e: Exception, what: str) -> KeyplaneError:
    """`translate`, never None (anything unknown is BackendUnavailable with the cause)."""
    return translate(e, what) or BackendUnavailable(f"Cloud KMS: cannot {what}: {type(e).__name__}", e)
