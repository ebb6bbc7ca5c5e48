"""The Azure Key Vault Signer: one key version, hashed here, signed by Key Vault."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from backends.translation import translated
from signers.algorithms import KeyFamily, SignatureAlgorithm
from signers.errors import BackendUnavailable
from signers.keys import PublicKey
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

    def __init__(self, store: AzureKeyVaultKeyStore, uri: str, algorithm: SignatureAlgorithm,
                 public_key: PublicKey, crypto_client: Any, version: str, kid: str) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the HTTP pipeline alive as long as the signer
        self._client = crypto_client
        self._translate = partial(translate, vault_url=store.vault_url)
        self.version = version
        self.kid = kid

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

    def _sign_digest(self, hashed: bytes) -> bytes:
        with translated(self._translate, f"sign with {self.uri}"):
            result = self._client.sign(self.algorithm.value, hashed, retry_on_methods=SIGN_RETRY_METHODS)
        if result.key_id and result.key_id.rstrip("/").lower() != self.kid.rstrip("/").lower():
            raise BackendUnavailable(f"Key Vault signed with {result.key_id}, not {self.kid}; no signature returned")
        signature: bytes = result.signature
        if self.algorithm.family is KeyFamily.EC:
            if len(signature) != 2 * curve_size(self.spec):
                raise BackendUnavailable(f"Key Vault returned a {len(signature)}-byte ECDSA signature for {self.uri}")
            return ecdsa_raw_to_der(signature)
        return signature
