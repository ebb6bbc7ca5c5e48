"""Azure Key Vault and Managed HSM back end, on azure-keyvault-keys and azure-identity.

URIs (the forms sigstore/cosign users already paste; https is implied):

    azurekms://myvault.vault.azure.net                    a store (one vault)
    azurekms://myvault.vault.azure.net/ca                 the latest version of key "ca"
    azurekms://myvault.vault.azure.net/ca/0f3d...e91     one pinned version
    azurekms://myhsm.managedhsm.azure.net/ca              a Managed HSM key (EC-HSM / RSA-HSM)

Query attributes (all optional):
    token-source=env:NAME|file:PATH   a static bearer token instead of azure-identity (emulators, CI)
    credential=default|environment|managed-identity|workload-identity|cli   which azure-identity
                                      credential to use (default: DefaultAzureCredential)
    client-id=GUID                    the user-assigned identity for credential=managed-identity
    ca-bundle=PATH                    trust this CA file for TLS (a private endpoint, the emulator)
    hsm=true                          create HSM-protected keys (Premium vault); implied on Managed HSM
    purge=true                        delete_key also purges the soft-deleted key (needs keys/purge)
    timeout=SECONDS                   per-request read timeout (default 30)
    retries=N                         retries of throttled (429) / failed (5xx, network) calls (default 3)
    algorithm=PS256|RS256|...         (key URIs) the signature algorithm, else the spec's default

Library users may inject any azure-core ``TokenCredential``:
``AzureKeyVaultKeyStore.from_uri(uri, credential=ManagedIdentityCredential())``.

Key Vault signs digests, so messages are hashed here and only the digest travels.
ECDSA signatures come back as raw r||s and are returned as DER. Azure offers neither
Ed25519 nor ML-DSA keys; asking for them is AlgorithmNotSupported with that reason.
Throttling (429, honouring Retry-After up to a bound) and 5xx / network failures are
retried by azure-core's RetryPolicy, then reported as BackendUnavailable.

Optional capabilities: rotation (a new version), disable / enable (every version's
`enabled` attribute), import (Key Vault's import), digest signing; `delete_key`
soft-deletes. The package: `keys` (spec tables, JWK <-> PublicKey), `client` (credential,
transport, retries), `errors` (the one translation table), `signer`, `store`.
"""

from __future__ import annotations

from .signer import AzureKeyVaultSigner
from .store import SCHEME, AzureKeyVaultKeyStore

__all__ = ["SCHEME", "AzureKeyVaultKeyStore", "AzureKeyVaultSigner"]
