"""Building the one KeyClient a store uses: credential, HTTPS transport, bounded retries.

A TLS certificate verification failure is not retried (it will not pass on a retry) and
is reported as a ConfigError naming ``ca-bundle`` (see `tls_verification_failed`).
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from signers.sdk import require
from signers.secrets import Secret

__all__ = ["AZURE_HOSTS", "CREDENTIALS", "StaticTokenCredential", "identity_credential", "make_credential",
           "make_key_client", "retry_policy", "tls_verification_failed"]

# azure-identity credentials selectable with ?credential=.
CREDENTIALS = {
    "default": "DefaultAzureCredential",
    "environment": "EnvironmentCredential",
    "managed-identity": "ManagedIdentityCredential",
    "workload-identity": "WorkloadIdentityCredential",
    "cli": "AzureCliCredential",
}
AZURE_HOSTS = (".vault.azure.net", ".managedhsm.azure.net", ".vault.azure.cn", ".managedhsm.azure.cn",
               ".vault.usgovcloudapi.net", ".managedhsm.usgovcloudapi.net")
MAX_RETRY_AFTER = 30.0  # seconds: a larger Retry-After is cut to this, so no call hangs for minutes
CONNECT_TIMEOUT = 10.0


def make_key_client(vault_url: str, host: str, credential: Any, ca_bundle: str | None, timeout: float,
                    retries: int) -> Any:
    """One KeyClient (one pooled HTTPS session) for the store; every Signer shares its pipeline."""
    keys = require("azure.keyvault.keys", "azure", "Azure Key Vault")
    requests = require("requests", "azure", "Azure Key Vault")
    transport_module = require("azure.core.pipeline.transport", "azure", "Azure Key Vault")
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)  # 64 concurrent signers
    session.mount("https://", adapter)
    transport = transport_module.RequestsTransport(
        session=session,
        session_owner=True,
        connection_timeout=min(CONNECT_TIMEOUT, timeout),
        read_timeout=timeout,
        connection_verify=ca_bundle if ca_bundle else True,
    )
    return keys.KeyClient(
        vault_url,
        credential,
        transport=transport,
        retry_policy=retry_policy(retries),
        # Key Vault's challenge names vault.azure.net; a private host (the emulator, a proxy) cannot match it.
        verify_challenge_resource=host.lower().endswith(AZURE_HOSTS),
    )


def tls_verification_failed(error: BaseException) -> bool:
    """Whether `error` (an azure-core / requests / urllib3 wrapper) was caused by a refused server certificate."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 32:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        pending += [getattr(current, "inner_exception", None), getattr(current, "reason", None),
                    current.__cause__, current.__context__]
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
    return False


def make_credential(token: Secret | None, name: str, client_id: str | None) -> Any:
    """A static-token credential when `token` is given, else the azure-identity credential `name`."""
    if token is not None:
        return StaticTokenCredential(token)
    return identity_credential("azure.identity", name, client_id)


def identity_credential(module: str, name: str, client_id: str | None) -> Any:
    """The azure-identity credential `name` from `module` (``azure.identity`` or its ``.aio`` twin)."""
    cls = getattr(require(module, "azure", "Azure Key Vault"), CREDENTIALS[name])
    return cls(client_id=client_id) if name == "managed-identity" and client_id else cls()


class StaticTokenCredential:
    """A TokenCredential that hands out one fixed bearer token (for emulators and pre-issued tokens)."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        credentials = require("azure.core.credentials", "azure", "Azure Key Vault")
        return credentials.AccessToken(self._token.reveal(), int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=***)"


_RETRY_POLICY_CLASSES: dict[str, Any] = {}


def retry_policy(retries: int, base: str = "RetryPolicy") -> Any:
    """azure-core's `base` (``RetryPolicy`` or ``AsyncRetryPolicy``: 429/5xx/network, exponential backoff,
    Retry-After) with Retry-After bounded and refused certificates never retried."""
    cls = _RETRY_POLICY_CLASSES.get(base)
    if cls is None:
        policies = require("azure.core.pipeline.policies", "azure", "Azure Key Vault")

        class Bounded(getattr(policies, base)):  # type: ignore[misc]
            def get_retry_after(self, response: Any) -> float | None:
                value = super().get_retry_after(response)
                return None if value is None else min(float(value), MAX_RETRY_AFTER)

            def increment(self, settings: Any, response: Any = None, error: Any = None) -> bool:
                if error is not None and tls_verification_failed(error):
                    return False  # the same certificate will be refused again: fail at once
                return bool(super().increment(settings, response=response, error=error))

        Bounded.__name__ = Bounded.__qualname__ = f"Bounded{base}"
        cls = _RETRY_POLICY_CLASSES[base] = Bounded
    return cls(**retry_settings(retries))


def retry_settings(retries: int) -> dict[str, Any]:
    """The RetryPolicy / AsyncRetryPolicy settings: `retries` of each kind, backoff 0.5 s x 2^n up to 8 s."""
    return {"retry_total": retries, "retry_connect": retries, "retry_read": retries, "retry_status": retries,
            "retry_backoff_factor": 0.5, "retry_backoff_max": 8}
