"""The one optional power a composite's ML-DSA half needs: signing an external mu.

Composite ML-DSA signs M' with the variant's label as the FIPS 204 context string, while a
plain keyplane ML-DSA Signer signs with the empty context. FIPS 204 (Algorithm 7) lets the
caller compute mu = SHAKE256(tr || 0x00 || len(ctx) || ctx || M') itself (`cryptography`'s
MLDSAMuHasher), so a back end that signs an external mu signs with ANY context: the file
store (`cryptography`'s `sign_mu`), OpenBao Transit (``hash_algorithm=mldsa-mu``), AWS KMS
(``EXTERNAL_MU``), Cloud KMS (``*_EXTERNAL_MU``) and PKCS#11 3.2 tokens all do.

This Protocol belongs beside DigestSigner in `signers.signer` (the lead's module); it lives
here until it is moved there, and `signers.signer` can then re-export it unchanged.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["MU_SIZE", "MuSigner"]

MU_SIZE = 64  # FIPS 204 mu: 512 bits


@runtime_checkable
class MuSigner(Protocol):
    """An ML-DSA Signer that signs a caller-computed FIPS 204 mu (64 bytes), never hashing it again.

    Raises ConfigError for a mu that is not 64 bytes and AlgorithmNotSupported when the key
    behind this signer is not ML-DSA or the back end cannot take a mu for it.
    """

    def sign_mu(self, mu: bytes) -> bytes: ...
