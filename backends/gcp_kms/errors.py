"""The one place a google-api-core exception becomes a keyplane error (backends.translation's shape)."""

from __future__ import annotations

from backends.translation import by_class, code_table
from signers.errors import AuthenticationFailed, BackendUnavailable, ConfigError, KeyDisabled, KeyplaneError
from signers.sdk import require

from .client import tls_verification_failed

__all__ = ["EXCEPTIONS", "translate", "translated_error"]

# google.api_core.exceptions class name -> keyplane error (the most specific class of an exception wins).
EXCEPTIONS = code_table(
    # FailedPrecondition, in KMS: the version is not ENABLED (destroyed, pending); DISABLED is handled first
    not_found=("NotFound", "FailedPrecondition"),
    exists=("AlreadyExists",),
    auth=("Unauthenticated",),
    denied=("PermissionDenied",),
    invalid=("InvalidArgument",),
    unsupported=("MethodNotImplemented",),
)


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
    error = by_class(EXCEPTIONS, e, "google.api_core")
    if error is not None:
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
