"""Cloud KMS signing algorithms as keyplane sees them, and the CRC32C every request and answer carries."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported
from signers.sdk import require

__all__ = ["ALGORITHMS", "MAX_DATA", "GcpAlgorithm", "crc32c", "gcp_algorithm_for"]

MAX_DATA = 64 * 1024  # AsymmetricSignRequest.data limit (SOFTWARE protection level)


@dataclass(frozen=True)
class GcpAlgorithm:
    """One Cloud KMS signing algorithm: the key spec, our algorithm, and what AsymmetricSign takes."""

    spec: KeySpec
    algorithm: SignatureAlgorithm
    input: str  # "digest", "data" (the whole message) or "mu" (digest.external_mu)


S, A = KeySpec, SignatureAlgorithm
ALGORITHMS: dict[str, GcpAlgorithm] = {
    "EC_SIGN_P256_SHA256": GcpAlgorithm(S.P256, A.ES256, "digest"),
    "EC_SIGN_P384_SHA384": GcpAlgorithm(S.P384, A.ES384, "digest"),
    "EC_SIGN_SECP256K1_SHA256": GcpAlgorithm(S.SECP256K1, A.ES256K, "digest"),
    "EC_SIGN_ED25519": GcpAlgorithm(S.ED25519, A.ED25519, "data"),
    "RSA_SIGN_PSS_2048_SHA256": GcpAlgorithm(S.RSA2048, A.PS256, "digest"),
    "RSA_SIGN_PSS_3072_SHA256": GcpAlgorithm(S.RSA3072, A.PS256, "digest"),
    "RSA_SIGN_PSS_4096_SHA256": GcpAlgorithm(S.RSA4096, A.PS256, "digest"),
    "RSA_SIGN_PSS_4096_SHA512": GcpAlgorithm(S.RSA4096, A.PS512, "digest"),
    "RSA_SIGN_PKCS1_2048_SHA256": GcpAlgorithm(S.RSA2048, A.RS256, "digest"),
    "RSA_SIGN_PKCS1_3072_SHA256": GcpAlgorithm(S.RSA3072, A.RS256, "digest"),
    "RSA_SIGN_PKCS1_4096_SHA256": GcpAlgorithm(S.RSA4096, A.RS256, "digest"),
    "RSA_SIGN_PKCS1_4096_SHA512": GcpAlgorithm(S.RSA4096, A.RS512, "digest"),
    "PQ_SIGN_ML_DSA_44": GcpAlgorithm(S.ML_DSA_44, A.ML_DSA_44, "data"),
    "PQ_SIGN_ML_DSA_65": GcpAlgorithm(S.ML_DSA_65, A.ML_DSA_65, "data"),
    "PQ_SIGN_ML_DSA_87": GcpAlgorithm(S.ML_DSA_87, A.ML_DSA_87, "data"),
    "PQ_SIGN_ML_DSA_44_EXTERNAL_MU": GcpAlgorithm(S.ML_DSA_44, A.ML_DSA_44, "mu"),
    "PQ_SIGN_ML_DSA_65_EXTERNAL_MU": GcpAlgorithm(S.ML_DSA_65, A.ML_DSA_65, "mu"),
    "PQ_SIGN_ML_DSA_87_EXTERNAL_MU": GcpAlgorithm(S.ML_DSA_87, A.ML_DSA_87, "mu"),
}
del S, A


def gcp_algorithm_for(spec: KeySpec, algorithm: SignatureAlgorithm, external_mu: bool) -> str:
    """The Cloud KMS algorithm a new key of `spec` signing `algorithm` gets (ML-DSA: external mu by default).

    Raises AlgorithmNotSupported when Cloud KMS has no such key.
    """
    for name, info in ALGORITHMS.items():
        if info.spec is spec and info.algorithm is algorithm and (info.input == "mu") == external_mu:
            return name
    for name, info in ALGORITHMS.items():  # external_mu only matters for ML-DSA
        if info.spec is spec and info.algorithm is algorithm:
            return name
    raise AlgorithmNotSupported(f"Cloud KMS has no {spec.value} key signing {algorithm.value}")


@functools.cache
def _crc32c_module() -> Any:
    return require("google_crc32c", "gcp", "gcpkms")


def crc32c(data: bytes) -> int:
    """CRC32C of `data` (google-crc32c's C implementation)."""
    return int(_crc32c_module().value(bytes(data)))
