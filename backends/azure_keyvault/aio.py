"""Native async signing for Azure: azure.keyvault.keys.crypto.aio on aiohttp, one pipeline per event loop.

An aiohttp session belongs to the event loop it was made in, so the store keeps one async
KeyClient per running loop (made on first use there); each signer builds its async
CryptographyClient from the key it already fetched, on that pipeline, so a signature is one
POST with no extra GET. `aclose()` closes the running loop's pipeline. Retries and error
translation are the blocking path's (bounded Retry-After, refused certificates never retried).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from signers.sdk import require
from signers.secrets import Secret

from .client import CONNECT_TIMEOUT, CREDENTIALS, MAX_RETRY_AFTER, retry_settings, tls_verification_failed

__all__ = ["AsyncPipelines", "AsyncStaticTokenCredential", "make_async_credential"]


class AsyncStaticTokenCredential:
    """An AsyncTokenCredential handing out one fixed bearer token (emulators, pre-issued tokens)."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        credentials = require("azure.core.credentials", "azure", "Azure Key Vault")
        return credentials.AccessToken(self._token.reveal(), int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncStaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    def __repr__(self) -> str:
        return "AsyncStaticTokenCredential(token=***)"


def make_async_credential(token: Secret | None, name: str, client_id: str | None) -> Any:
    """The async twin of client.make_credential (azure.identity.aio for the named credential)."""
    if token is not None:
        return AsyncStaticTokenCredential(token)
    identity = require("azure.identity.aio", "azure", "Azure Key Vault")
    cls = getattr(identity, CREDENTIALS[name])
    if name == "managed-identity" and client_id:
        return cls(client_id=client_id)
    return cls()


class AsyncPipelines:
    """The store's async KeyClients, one per event loop; `factory()` builds one inside the running loop."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def current(self) -> Any:
        """The running loop's async KeyClient (made now if this loop has none); closed loops are forgotten."""
        loop = asyncio.get_running_loop()
        for key, (other, _client) in list(self._clients.items()):
            if other.is_closed():
                del self._clients[key]
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            entry = self._clients[id(loop)] = (loop, self._factory())
        return entry[1]

    async def aclose(self) -> None:
        """Close the running loop's pipeline (aiohttp session)."""
        entry = self._clients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()

    def forget(self) -> None:
        self._clients.clear()


def make_async_key_client(vault_url: str, verify_challenge: bool, credential: Any, ca_bundle: str | None,
                          timeout: float, retries: int) -> Any:
    """One async KeyClient on aiohttp, with the blocking client's timeouts and retry policy."""
    keys_aio = require("azure.keyvault.keys.aio", "azure", "Azure Key Vault")
    transport_module = require("azure.core.pipeline.transport", "azure", "Azure Key Vault (async: aiohttp)")
    require("aiohttp", "azure", "Azure Key Vault (async)")
    transport = transport_module.AioHttpTransport(
        connection_timeout=min(CONNECT_TIMEOUT, timeout), read_timeout=timeout,
        connection_verify=ca_bundle if ca_bundle else True,
    )
    return keys_aio.KeyClient(vault_url, credential, transport=transport, retry_policy=_async_retry_policy(retries),
                              verify_challenge_resource=verify_challenge)


_ASYNC_RETRY_POLICY_CLASS: Any = None


def _async_retry_policy(retries: int) -> Any:
    global _ASYNC_RETRY_POLICY_CLASS
    if _ASYNC_RETRY_POLICY_CLASS is None:
        policies = require("azure.core.pipeline.policies", "azure", "Azure Key Vault")

        class BoundedAsyncRetryPolicy(policies.AsyncRetryPolicy):  # type: ignore[name-defined]
            def get_retry_after(self, response: Any) -> float | None:
                value = super().get_retry_after(response)
                return None if value is None else min(float(value), MAX_RETRY_AFTER)

            def increment(self, settings: Any, response: Any = None, error: Any = None) -> bool:
                if error is not None and tls_verification_failed(error):
                    return False  # the same certificate will be refused again: fail at once
                return bool(super().increment(settings, response=response, error=error))

        _ASYNC_RETRY_POLICY_CLASS = BoundedAsyncRetryPolicy
    return _ASYNC_RETRY_POLICY_CLASS(**retry_settings(retries))
