"""`MuSigner` and `MU_SIZE`, kept for existing imports: they live in `signers.signer` now.

The one optional power a composite's ML-DSA half needs is signing an external mu (the
label is the FIPS 204 context); `signers.signer.MuSigner` documents it beside DigestSigner.
"""

from __future__ import annotations

from signers.signer import MU_SIZE, MuSigner

__all__ = ["MU_SIZE", "MuSigner"]
