"""Google Cloud KMS back end (`google-cloud-kms`, gRPC).

``gcpkms://projects/P/locations/L/keyRings/R`` is a store (a key ring);
``.../keyRings/R/cryptoKeys/K`` a key (its newest ENABLED version) and
``.../cryptoKeys/K/cryptoKeyVersions/N`` one pinned version. The forms are cosign's.

Query attributes:
  ``endpoint=HOST:PORT``        another API endpoint (a private endpoint, the local emulator)
  ``insecure=true``             plaintext gRPC to `endpoint` (the emulator on loopback)
  ``token-source=env:N|file:P`` a static OAuth2 access token, sent as ``authorization: Bearer``;
                                without it, Application Default Credentials (google-auth)
  ``ca-bundle=PATH``            trust this CA file for TLS to `endpoint` (a private endpoint)
  ``timeout=SECONDS``           budget for one operation, retries included (default 30)
  ``algorithm=PS256``           the algorithm to insist on when opening (a version's is fixed)

Over TLS the token rides as google-auth credentials; over an insecure channel, which gRPC
refuses to attach call credentials to, a channel interceptor adds the header *below* the
SDK's own DEBUG request logging, so the token never reaches a log record.

What Cloud KMS signs, and how we send it:
  ECDSA / RSA  the digest, hashed here (`digest` + `digest_crc32c`);
  Ed25519      the whole message in `data` (pure EdDSA): at most 64 KiB, longer messages
               raise AlgorithmNotSupported since the service has no pre-hashed Ed25519;
  ML-DSA       *_EXTERNAL_MU versions (what `create_key` makes): mu = SHAKE256(tr || 0 || 0 || M)
               computed here with `MLDSAMuHasher`, so any length; pure PQ_SIGN_ML_DSA_* versions
               take `data` and have the same 64 KiB limit.
Every answer is checked as Google recommends: `verified_*_crc32c` true, `signature_crc32c`
equal to the CRC32C of the signature, `name` the version we asked. A mismatch raises
BackendUnavailable (damaged in transit or a misbehaving service: retrying may succeed; it is
not a verdict on a signature, which is what InvalidSignature means) and no signature is returned.

Asymmetric keys have no primary version in Cloud KMS, so "rotate" adds a version and opening
by key name picks the newest ENABLED one. Keys cannot be deleted at once: `delete_key`
schedules every version for destruction (the key name stays taken). Optional capabilities:
rotation, disable / enable (version state), digest signing (the `digest` field).

The package: `algorithms` (the algorithm table, CRC32C), `client` (building the gRPC
client), `errors` (the one translation table), `retry` (the back-off both call paths share), `aio`
(one async client per event loop), `signer`, `store`.
"""

from __future__ import annotations

from .algorithms import ALGORITHMS, MAX_DATA, GcpAlgorithm, crc32c
from .signer import GcpKmsSigner
from .store import DEFAULT_TIMEOUT, GcpKmsKeyStore

_crc32c = crc32c  # the name tests and benchmarks have used

__all__ = ["ALGORITHMS", "DEFAULT_TIMEOUT", "MAX_DATA", "GcpAlgorithm", "GcpKmsKeyStore", "GcpKmsSigner", "crc32c"]
