"""A local Google Cloud KMS: the KeyManagementService gRPC API with real keys and signatures.

No Cloud KMS server runs outside Google, so the tests (and users without a cloud
project) point the real `google-cloud-kms` client at this one over a plaintext gRPC
channel on loopback. It implements what the gcpkms back end uses, with the real wire
messages (`google.cloud.kms_v1` types) and the real service's rules where a client could
notice them:

* resources: key rings, ASYMMETRIC_SIGN crypto keys, versions numbered from 1; a new
  version answers PENDING_GENERATION to its first read (as a real asymmetric version
  does for a moment), then ENABLED; destroying schedules destruction (30 days);
* AsymmetricSign: digest for ECDSA/RSA, data (at most 64 KiB) for Ed25519 and pure
  ML-DSA, ``digest.external_mu`` for the *_EXTERNAL_MU versions; request CRC32Cs checked
  (INVALID_ARGUMENT on mismatch) and echoed as ``verified_*_crc32c``; ``signature_crc32c``
  and ``name`` on every answer; GetPublicKey in PEM (classical) or NIST_PQC (ML-DSA, which
  has no PEM form in Cloud KMS) with CRC32Cs;
* statuses: NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (version not enabled),
  INVALID_ARGUMENT, UNAUTHENTICATED (``authorization: Bearer`` missing or wrong when the
  emulator was started with a token) and PERMISSION_DENIED (a project outside ``projects``).

Keys live in memory only. Tests damage answers on purpose through the handle
(`EmulatorHandle.corrupt_next`) to prove the client checks integri

The package: `model` (resources, algorithms, CRC32C, paging), `service` (the RPCs),
`server` (gRPC plumbing, the handle, start / serve_forever).
"""

from __future__ import annotations

from .model import ALGORITHMS, MAX_DATA, SERVICE, crc32c
from .server import EmulatorHandle, serve_forever, start

__all__ = ["ALGORITHMS", "MAX_DATA", "SERVICE", "EmulatorHandle", "crc32c", "serve_forever", "start"]
