"""The Cloud KMS Signer: one key version, one AsymmetricSign round trip with CRC32C checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import mldsa

from signers.errors import AlgorithmNotSupported
from signers.keys import PublicKey
from signers.signature_format import checked_digest, digest
from signers.signer import BaseSigner

from .algorithms import ALGORITHMS, MAX_DATA, crc32c

if TYPE_CHECKING:  # the store imports this module; the signer only holds a reference to it
    from .store import GcpKmsKeyStore

__all__ = ["GcpKmsSigner"]


class GcpKmsSigner(BaseSigner):
    """One Cloud KMS key version; `sign` is one AsymmetricSign round trip with CRC32C checks.

    The signer names its version in every request and refuses an answer for another one, so
    a replaced key (destroyed versions, a new version) is never signed with: a version that
    is no longer ENABLED is KeyNotFound (KeyDisabled when disabled).
    """

    # sign_many keeps this many AsymmetricSign calls in flight, multiplexed on the gRPC channel
    # (sign_many_async over the async client, sign_many over the I/O pool with the sync one).
    batch_width = 16

    def __init__(self, store: GcpKmsKeyStore, uri: str, version_name: str, gcp_algorithm: str,
                 public_key: PublicKey) -> None:
        info = ALGORITHMS[gcp_algorithm]
        super().__init__(uri, info.algorithm, public_key)
        self._store = store
        self.version_name = version_name  # the full resource name this signer signs with
        self.version = version_name.rsplit("/", 1)[1]
        self.gcp_algorithm = gcp_algorithm
        self._input = info.input
        self._hash_field = info.algorithm.hash_name

    def sign(self, message: bytes) -> bytes:
        """Sign `message`: its digest (ECDSA, RSA), its external mu (ML-DSA *_EXTERNAL_MU) or itself.

        Raises AlgorithmNotSupported (a whole-message algorithm and more than 64 KiB), KeyNotFound,
        KeyDisabled, PermissionDenied, AuthenticationFailed, ConfigError (TLS not trusted) or
        BackendUnavailable (after retries, or an answer failing its integrity checks).
        """
        return self._send(*self._request(bytes(message)))

    async def sign_async(self, message: bytes) -> bytes:
        """`sign` on the SDK's async gRPC client: no worker thread (NativeAsyncSigner); raises what `sign` raises."""
        request, field = self._request(bytes(message))
        store = self._store
        response = await store._async.call(f"sign with {_short(self.version_name)}", "asymmetric_sign", request)
        return store._checked_signature(response, self.version_name, field)

    async def aclose(self) -> None:
        """Close the async client of the running event loop (shared by the store's signers in that loop)."""
        await self._store._async.aclose()

    def _request(self, message: bytes) -> tuple[Any, str]:
        """The AsymmetricSignRequest for `message` and the integrity field its answer must verify."""
        kms_v1 = self._store._kms
        if self._input == "digest":
            return self._digest_request(digest(self.algorithm, message)), "digest"
        if self._input == "mu":
            hasher = mldsa.MLDSAMuHasher(self.public_key.key, b"")  # type: ignore[arg-type]  # pure ML-DSA, empty context
            hasher.update(message)
            payload = hasher.finalize()
            return kms_v1.AsymmetricSignRequest(name=self.version_name, digest={"external_mu": payload},
                                                digest_crc32c=crc32c(payload)), "digest"
        if len(message) > MAX_DATA:
            raise AlgorithmNotSupported(
                f"Cloud KMS signs {self.gcp_algorithm} over the whole message, at most {MAX_DATA} bytes, "
                f"and this message has {len(message)}"
                + (" (create the key with external_mu=True to sign any length)" if self._is_mldsa() else "")
            )
        return kms_v1.AsymmetricSignRequest(name=self.version_name, data=message,
                                            data_crc32c=crc32c(message)), "data"

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed digest in AsymmetricSign's `digest` field, never hashing it again (DigestSigner).

        Raises ConfigError for a digest of the wrong length, AlgorithmNotSupported for Ed25519
        and ML-DSA (no digest form), and what `sign` raises.
        """
        return self._send(self._digest_request(checked_digest(self.algorithm, digest)), "digest")

    def _digest_request(self, payload: bytes) -> Any:
        return self._store._kms.AsymmetricSignRequest(name=self.version_name, digest={self._hash_field: payload},
                                                      digest_crc32c=crc32c(payload))

    def _send(self, request: Any, field: str) -> bytes:
        store = self._store
        response = store._call(f"sign with {_short(self.version_name)}", store._client.asymmetric_sign, request)
        return store._checked_signature(response, self.version_name, field)

    def _is_mldsa(self) -> bool:
        return self.gcp_algorithm.startswith("PQ_SIGN_ML_DSA")


def _short(resource: str) -> str:
    """A resource name for messages: the part below the key ring."""
    return resource.split("/keyRings/", 1)[-1] if "/keyRings/" in resource else resource
