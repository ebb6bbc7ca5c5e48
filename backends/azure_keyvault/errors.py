"""The one place an azure-core exception becomes a keyplane error (backends.translation's shape)."""

from __future__ import annotations

from typing import Any

from backends.translation import code_table
from signers.errors import AuthenticationFailed, BackendUnavailable, ConfigError, KeyDisabled, KeyplaneError
from signers.sdk import require

from .client import tls_verification_failed

__all__ = ["STATUS", "translate"]

# HTTP status of an HttpResponseError -> keyplane error (429 / 5xx: after azure-core's retries).
STATUS = code_table(
    invalid=(400,), auth=(401,), denied=(403,), not_found=(404,), exists=(409,),
    messages={
        "invalid": "Key Vault refused the request",
        "auth": "Azure rejected the credential",
        "denied": "the identity lacks the Key Vault permission",
        "not_found": "not found",
        "exists": "the name is taken (recover or purge a deleted key first)",
        "unavailable": "Key Vault answered",
    },
)


def translate(e: BaseException, what: str, vault_url: str) -> KeyplaneError | None:
    """The keyplane error for an SDK failure while doing `what` on `vault_url` (the SDK's error chained by the caller).

    A refused TLS certificate is ConfigError naming ``ca-bundle``; a disabled key is
    KeyDisabled; connection failures and timeouts are BackendUnavailable.
    """
    exc = require("azure.core.exceptions", "azure", "Azure Key Vault")
    if isinstance(e, exc.ClientAuthenticationError):  # 401, or azure-identity could not get a token
        return AuthenticationFailed(f"{what}: Azure rejected the credential ({_reason(e)})")
    if isinstance(e, exc.HttpResponseError) and e.status_code:
        status = int(e.status_code)
        if status == 403 and "disabled" in _reason(e).lower():
            return KeyDisabled(f"{what}: the key is disabled in {vault_url} ({_reason(e)})")
        return STATUS.error(status, what, _reason(e), e)
    if isinstance(e, exc.AzureError):  # connection refused, DNS, TLS, timeouts: after the retries
        if tls_verification_failed(e):
            return ConfigError(f"{what}: the TLS certificate of {vault_url} was not trusted; for a private endpoint "
                               "or the emulator, name its CA file with ?ca-bundle=PATH")
        detail = str(e.message or type(e).__name__)[:300]  # the transport's words: URL and cause, no headers
        return BackendUnavailable(f"{what}: cannot reach {vault_url} ({detail})", e)
    if isinstance(e, ValueError):  # the SDK's challenge policy refuses a malformed or foreign challenge
        return BackendUnavailable(f"{what}: unexpected answer from {vault_url} ({e})", e)
    return None


def _reason(e: Any) -> str:
    """Key Vault's error code and message (never headers or the request, which carry the token)."""
    error = getattr(e, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(e, "reason", None) or type(e).__name__
    return f"{code}: {message}" if code else str(message)
