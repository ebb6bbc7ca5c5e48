"""CompositeSigner: a Signer over two Signers, one ML-DSA and one traditional, from any two back ends.

The draft's Sign(): M' = Prefix || Label || len(ctx) || ctx || PH(M); the ML-DSA half signs M'
with the label as its FIPS 204 context (through an external mu, so any back end that signs
a mu can hold it: see `signers.signer.MuSigner`); the traditional half signs the same M' with
its usual algorithm; the signature is mldsaSig || tradSig. The two halves are signed in
parallel (`sign_async` with both halves' `sign_async`, `sign` with a worker thread for the
traditional half), so the latency is that of the slower half, not the sum. Both halves
are verified with `cryptography` before the signature is returned: a back end that signs
with another key or a malformed encoding never yields a composite signature.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives.asymmetric import mldsa

from signers.errors import AlgorithmNotSupported, InvalidSignature
from signers.signer import BaseSigner, MuSigner, Signer
from signers.workers import run_blocking

from .public_key import CompositePublicKey
from .uri import composite_uri
from .variants import CompositeAlgorithm

__all__ = ["CompositeSigner"]

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """One small process-wide pool for the traditional halves of synchronous `sign` calls."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyplane-composite")
        return _pool


class CompositeSigner(BaseSigner):
    """A composite ML-DSA Signer: `sign`, `sign_async`, `public_key`, `key_id`, `algorithm`, `uri`.

    `sign_many` / `sign_many_async` (BatchSigner) are BaseSigner's, over this class's `sign`
    and `sign_async`; BaseSigner's constructor is not used (its typed fields are KeySpec ones).

    Raises AlgorithmNotSupported at construction when a half is not the key spec or
    algorithm the variant names, or when the ML-DSA half cannot sign an external mu.
    """

    public_key: CompositePublicKey  # type: ignore[assignment]  # a composite key, not one PublicKey
    algorithm: CompositeAlgorithm  # type: ignore[assignment]  # a composite algorithm, not one SignatureAlgorithm

    def __init__(self, mldsa_signer: Signer, classical_signer: Signer, variant: CompositeAlgorithm | str,
                 *, uri: str | None = None) -> None:
        variant = CompositeAlgorithm.parse(variant)
        if not isinstance(mldsa_signer, MuSigner):
            raise AlgorithmNotSupported(
                f"the ML-DSA half ({mldsa_signer.uri}) cannot sign an external mu, so it cannot sign with the "
                f"composite label as its context; use a back end that signs a mu (file, OpenBao, AWS, GCP)"
            )
        if classical_signer.algorithm is not variant.classical_algorithm:
            raise AlgorithmNotSupported(
                f"{variant.value} signs its traditional half with {variant.classical_algorithm.value}; "
                f"the signer {classical_signer.uri} makes {classical_signer.algorithm.value} "
                f"(open it with algorithm={variant.classical_algorithm.value})"
            )
        self.public_key = CompositePublicKey(variant, mldsa_signer.public_key, classical_signer.public_key)
        self.algorithm = variant
        self.key_id = self.public_key.key_id
        self.mldsa_signer = mldsa_signer
        self.classical_signer = classical_signer
        self.uri = uri or composite_uri(variant, mldsa_signer.uri, classical_signer.uri)
        self._mu_signer: MuSigner = mldsa_signer

    @property
    def variant(self) -> CompositeAlgorithm:
        return self.algorithm

    # -- signing -----------------------------------------------------------------------

    def _mu(self, representative: bytes) -> bytes:
        hasher = mldsa.MLDSAMuHasher(self.public_key.mldsa.key, self.algorithm.label)  # type: ignore[arg-type]
        hasher.update(representative)
        return hasher.finalize()

    def sign(self, message: bytes, *, context: bytes = b"") -> bytes:
        """The composite signature over `message` with application `context` (empty by default)."""
        representative = self.algorithm.message_representative(bytes(message), bytes(context))
        classical = _executor().submit(self.classical_signer.sign, representative)
        try:
            mldsa_signature = self._mu_signer.sign_mu(self._mu(representative))
        except BaseException:
            classical.cancel()  # the ML-DSA half's error is the one to report; the other half is discarded
            raise
        return self._checked(representative, mldsa_signature, classical.result())

    async def sign_async(self, message: bytes, *, context: bytes = b"") -> bytes:
        """As `sign`, both halves concurrently on the event loop (each half's own `sign_async`).

        Hashing the message into M' and mu and checking both halves run on `worker_pool()`,
        so the loop is never blocked by them (a 1 MiB message, 64 calls finishing at once).
        """
        pool = self.worker_pool()
        representative, mu = await run_blocking(self._prepare, bytes(message), bytes(context), pool=pool)
        sign_mu_async = getattr(self._mu_signer, "sign_mu_async", None)
        mldsa_half = sign_mu_async(mu) if sign_mu_async is not None else run_blocking(self._mu_signer.sign_mu, mu,
                                                                                        pool=pool)
        mldsa_signature, classical_signature = await asyncio.gather(
            mldsa_half, self.classical_signer.sign_async(representative)
        )
        return await run_blocking(self._checked, representative, mldsa_signature, classical_signature, pool=pool)

    def _prepare(self, message: bytes, context: bytes) -> tuple[bytes, bytes]:
        representative = self.algorithm.message_representative(message, context)
        return representative, self._mu(representative)

    def _checked(self, representative: bytes, mldsa_signature: bytes, classical_signature: bytes) -> bytes:
        """mldsaSig || tradSig after checking each half; InvalidSignature naming the half that failed."""
        if len(mldsa_signature) != self.algorithm.mldsa_signature_size:
            raise InvalidSignature(f"the ML-DSA half ({self.mldsa_signer.uri}) returned a malformed signature")
        try:
            self.public_key.mldsa.verify(mldsa_signature, representative, context=self.algorithm.label)
        except InvalidSignature as e:
            raise InvalidSignature(f"the ML-DSA half ({self.mldsa_signer.uri}) signature does not verify; "
                                   "nothing was signed") from e
        try:
            self.public_key.classical.verify(classical_signature, representative, self.algorithm.classical_algorithm)
        except InvalidSignature as e:
            raise InvalidSignature(f"the traditional half ({self.classical_signer.uri}) signature does not verify; "
                                   "nothing was signed") from e
        return mldsa_signature + classical_signature

    def verify(self, signature: bytes, message: bytes, *, context: bytes = b"") -> None:
        """Verify locally with the composite public key (raises InvalidSignature)."""
        self.public_key.verify(signature, message, context=context)

    def __repr__(self) -> str:
        return f"CompositeSigner({self.algorithm.value}, key_id={self.key_id!r}, uri={self.uri!r})"
