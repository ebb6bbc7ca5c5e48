"""The emulated service's resources, algorithms and wire helpers (CRC32C, paging, filters, signing)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils

from signers.algorithms import KeySpec
from signers.local_keys import PrivateKey
from signers.sdk import require

grpc: Any = require("grpc", "gcp", "GCP KMS emulator")
google_crc32c: Any = require("google_crc32c", "gcp", "GCP KMS emulator")
kms_v1: Any = require("google.cloud.kms_v1", "gcp", "GCP KMS emulator")

SERVICE = "google.cloud.kms.v1.KeyManagementService"
MAX_DATA = 64 * 1024  # AsymmetricSignRequest.data limit for SOFTWARE keys

Alg = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
Format = kms_v1.PublicKey.PublicKeyFormat
Code = grpc.StatusCode

ID = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
KEY_RING = re.compile(r"^projects/([^/]+)/locations/([^/]+)/keyRings/([^/]+)$")
KEY = re.compile(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+)/cryptoKeys/([^/]+)$")
VERSION = re.compile(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)/cryptoKeyVersions/(\d+)$")


@dataclass(frozen=True)
class AlgInfo:
    """How one Cloud KMS signing algorithm signs: key spec, and which request field it takes."""

    spec: KeySpec
    input: str  # "digest" (hash name in .hash), "data" (whole message) or "mu" (digest.external_mu)
    hash: str | None = None
    pss: bool = False


def _rsa(spec: KeySpec, hash_name: str, pss: bool) -> AlgInfo:
    return AlgInfo(spec, "digest", hash_name, pss)


ALGORITHMS: dict[str, AlgInfo] = {
    "EC_SIGN_P256_SHA256": AlgInfo(KeySpec.P256, "digest", "sha256"),
    "EC_SIGN_P384_SHA384": AlgInfo(KeySpec.P384, "digest", "sha384"),
    "EC_SIGN_SECP256K1_SHA256": AlgInfo(KeySpec.SECP256K1, "digest", "sha256"),
    "EC_SIGN_ED25519": AlgInfo(KeySpec.ED25519, "data"),
    "RSA_SIGN_PSS_2048_SHA256": _rsa(KeySpec.RSA2048, "sha256", True),
    "RSA_SIGN_PSS_3072_SHA256": _rsa(KeySpec.RSA3072, "sha256", True),
    "RSA_SIGN_PSS_4096_SHA256": _rsa(KeySpec.RSA4096, "sha256", True),
    "RSA_SIGN_PSS_4096_SHA512": _rsa(KeySpec.RSA4096, "sha512", True),
    "RSA_SIGN_PKCS1_2048_SHA256": _rsa(KeySpec.RSA2048, "sha256", False),
    "RSA_SIGN_PKCS1_3072_SHA256": _rsa(KeySpec.RSA3072, "sha256", False),
    "RSA_SIGN_PKCS1_4096_SHA256": _rsa(KeySpec.RSA4096, "sha256", False),
    "RSA_SIGN_PKCS1_4096_SHA512": _rsa(KeySpec.RSA4096, "sha512", False),
    "PQ_SIGN_ML_DSA_44": AlgInfo(KeySpec.ML_DSA_44, "data"),
    "PQ_SIGN_ML_DSA_65": AlgInfo(KeySpec.ML_DSA_65, "data"),
    "PQ_SIGN_ML_DSA_87": AlgInfo(KeySpec.ML_DSA_87, "data"),
    "PQ_SIGN_ML_DSA_44_EXTERNAL_MU": AlgInfo(KeySpec.ML_DSA_44, "mu"),
    "PQ_SIGN_ML_DSA_65_EXTERNAL_MU": AlgInfo(KeySpec.ML_DSA_65, "mu"),
    "PQ_SIGN_ML_DSA_87_EXTERNAL_MU": AlgInfo(KeySpec.ML_DSA_87, "mu"),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384,
                                                   "sha512": hashes.SHA512}


class Abort(Exception):
    """A gRPC status to answer with; raised anywhere below a handler."""

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(bytes(data)))


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Version:
    name: str
    algorithm: str
    key: PrivateKey
    created: datetime
    state: Any = State.PENDING_GENERATION
    reads_until_enabled: int = 1  # a real asymmetric version is PENDING_GENERATION for a moment
    destroy_time: datetime | None = None

    def current_state(self) -> Any:
        if self.state == State.PENDING_GENERATION:
            if self.reads_until_enabled <= 0:
                self.state = State.ENABLED
            else:
                self.reads_until_enabled -= 1
        return self.state

    def to_proto(self) -> Any:
        return kms_v1.CryptoKeyVersion(
            name=self.name, state=self.current_state(), algorithm=Alg[self.algorithm],
            protection_level=kms_v1.ProtectionLevel.SOFTWARE, create_time=self.created,
            generate_time=self.created, destroy_time=self.destroy_time,
        )


@dataclass
class Key:
    proto: Any  # kms_v1.CryptoKey
    versions: dict[int, Version] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.proto.name)




def sign_payload(key: PrivateKey, info: AlgInfo, payload: bytes) -> bytes:
    if info.input == "mu":
        return key.sign_mu(payload)  # type: ignore[union-attr]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(utils.Prehashed(HASHES[info.hash or ""]())))
    if isinstance(key, rsa.RSAPrivateKey):
        h = HASHES[info.hash or ""]()
        pad = padding.PSS(padding.MGF1(h), h.digest_size) if info.pss else padding.PKCS1v15()
        return key.sign(payload, pad, utils.Prehashed(h))
    if isinstance(key, ed25519.Ed25519PrivateKey | mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey
                  | mldsa.MLDSA87PrivateKey):
        return key.sign(payload)
    raise Abort(Code.INTERNAL, "unknown key type")  # pragma: no cover


def paged(items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
    size = min(size or 100, 1000)
    try:
        start = int(token) if token else 0
    except ValueError:
        raise Abort(Code.INVALID_ARGUMENT, "invalid page_token") from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def state_filter(text: str) -> Any:
    """The one filter shape clients use here: ``state=ENABLED`` (or ``state:ENABLED``)."""
    if not text:
        return None
    m = re.fullmatch(r"\s*state\s*[=:]\s*([A-Z_]+)\s*", text)
    if not m or m.group(1) not in State.__members__:
        raise Abort(Code.INVALID_ARGUMENT, f"unsupported filter {text!r}")
    return State[m.group(1)]

