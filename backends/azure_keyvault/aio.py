"""Native async signing for Azure: azure.keyvault.keys.crypto.aio on aiohttp, one pipeline per event loop.

An aiohttp session belongs to the event loop it was made in, so the store keeps one async
KeyClient per running loop (made on first use there); each signer builds its async
CryptographyClient from the key it already fetched, on that pipeline, so a signature is one
POST with no extra GET. `aclose()` closes the running loop's pipeline. Retries and error
translation are the blocking path's (bounded Retry-After, refused certificates never retried).
"""

from __future__ import annotations

import time
from typing import Any

from backends.per_loop import PerLoop
from signers.sdk import require
from signers.secrets import Secret

from .client import CONNECT_TIMEOUT, identity_credential, retry_policy

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
    return identity_credential("azure.identity.aio", name, client_id)


class AsyncPipelines(PerLoop[Any]):
    """The store's async KeyClients, one per event loop; `factory()` builds one inside the running loop."""

    async def aclose(self) -> None:
        """Close the running loop's pipeline (aiohttp session)."""
        client = self.pop_current()
        if client is not None:
            await client.close()


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
    policy = retry_policy(retries, "AsyncRetryPolicy")
    return keys_aio.KeyClient(vault_url, credential, transport=transport, retry_policy=policy,
                              verify_challenge_resource=verify_challenge)
