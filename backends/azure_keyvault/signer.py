"""The Azure Key Vault Signer: one key version, hashed here, signed by Key Vault."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from backends.translation import translated
from signers.algorithms import KeyFamily, SignatureAlgorithm
from signers.errors import BackendUnavailable
from signers.keys import PublicKey
from signers.sdk import require
from signers.signature_format import checked_digest, curve_size, digest, ecdsa_raw_to_der
from signers.signer import BaseSigner

from .errors import translate

if TYPE_CHECKING:  # the store imports this module; the signer only holds a reference to it
    from .store import AzureKeyVaultKeyStore

__all__ = ["AzureKeyVaultSigner"]

# sign/verify are safe to repeat, so they are retried on 429 even without Retry-After (POST is not by default).
SIGN_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class AzureKeyVaultSigner(BaseSigner):
    """One key version; `sign` is one round trip (hash here, Key Vault signs the digest).

    The signer is pinned to the version it was opened with (its kid names it), so a key
    deleted and re-created under the same name is never signed with: the old version is
    gone (KeyNotFound), and an answer naming another key version is refused.
    """

    # sign_many keeps this many requests in flight: over the async client's connections from
    # sign_many_async, over the sync pipeline's pooled connections (requests keeps 10) from sign_many.
    batch_width = 8

    def __init__(self, store: AzureKeyVaultKeyStore, uri: str, algorithm: SignatureAlgorithm,
                 public_key: PublicKey, crypto_client: Any, version: str, key: Any) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the HTTP pipeline alive as long as the signer
        self._client = crypto_client
        self._key = key  # the fetched KeyVaultKey: async CryptographyClients are built from it, no GET
        self._aio: tuple[Any, Any] | None = None  # (async KeyClient, its CryptographyClient) of the last loop
        self._translate = partial(translate, vault_url=store.vault_url)
        self.version = version
        self.kid: str = key.id

    def sign(self, message: bytes) -> bytes:
        """Hash here and sign the digest in Key Vault; DER for ECDSA.

        Raises KeyNotFound (the version is gone), KeyDisabled, PermissionDenied,
        AuthenticationFailed, ConfigError (TLS verification failed: set ca-bundle) or
        BackendUnavailable (after retries).
        """
        return self._sign_digest(digest(self.algorithm, bytes(message)))

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed digest of the algorithm's hash length, as Key Vault's sign takes it (DigestSigner).

        Raises ConfigError for a wrong length, AlgorithmNotSupported where there is no digest
        form, and what `sign` raises. The digest is never hashed again.
        """
        return self._sign_digest(checked_digest(self.algorithm, digest))

    async def sign_async(self, message: bytes) -> bytes:
        """`sign` on azure.keyvault.keys.crypto.aio (aiohttp), no worker thread (NativeAsyncSigner).

        Raises what `sign` raises. Only with an injected sync credential and no async one does
        it fall back to `sign` in a worker thread.
        """
        if not self._store.native_async:
            return await super().sign_async(message)
        hashed = digest(self.algorithm, bytes(message))
        with translated(self._translate, f"sign with {self.uri}"):
            result = await self._async_crypto().sign(self.algorithm.value, hashed,
                                                     retry_on_methods=SIGN_RETRY_METHODS)
        return self._checked(result)

    async def aclose(self) -> None:
        """Close the running loop's async pipeline (shared by the store's signers in that loop)."""
        self._aio = None
        await self._store._async.aclose()

    def _async_crypto(self) -> Any:
        pipeline = self._store._async.current()
        cached = self._aio
        if cached is not None and cached[0] is pipeline:
            return cached[1]
        crypto_aio = require("azure.keyvault.keys.crypto.aio", "azure", "Azure Key Vault")
        client = crypto_aio.CryptographyClient(self._key, object(), generated_client=pipeline._client,
                                               generated_models=pipeline._models)
        self._aio = (pipeline, client)
        return client

    def _sign_digest(self, hashed: bytes) -> bytes:
        with translated(self._translate, f"sign with {self.uri}"):
            result = self._client.sign(self.algorithm.value, hashed, retry_on_methods=SIGN_RETRY_METHODS)
        return self._checked(result)

    def _checked(self, result: Any) -> bytes:
        """The signature of a SignResult, once it names this signer's key version and has the right size."""
        if result.key_id and result.key_id.rstrip("/").lower() != self.kid.rstrip("/").lower():
            raise BackendUnavailable(f"Key Vault signed with {result.key_id}, not {self.kid}; no signature returned")
        signature: bytes = result.signature
        if self.algorithm.family is KeyFamily.EC:
            if len(signature) != 2 * curve_size(self.spec):
                raise BackendUnavailable(f"Key Vault returned a {len(signature)}-byte ECDSA signature for {self.uri}")
            return ecdsa_raw_to_der(signature)
        return signature
