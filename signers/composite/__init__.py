"""Composite ML-DSA signatures (draft-ietf-lamps-pq-composite-sigs, April 2026 text): ML-DSA plus a
traditional signature over the same message, both required, the two keys in any two back ends.

```python
import signers
from signers.composite import CompositeSigner
signer = CompositeSigner(signers.open("openbao://pq-65"), signers.open("pkcs11:token=t;object=ed?..."),
                         "MLDSA65-Ed25519-SHA512")
signature = signer.sign(b"message")                  # mldsaSig || tradSig
signer.public_key.verify(signature, b"message")      # both halves or InvalidSignature
signers.open("composite:MLDSA65-Ed25519-SHA512?mldsa=...&classical=...")   # the same, by URI
```
"""

from __future__ import annotations

from signers.signer import MU_SIZE, MuSigner

from .authority import CompositeCertificateAuthority
from .chain import verify_composite_chain
from .jose import CompositeJWK, composite_jwks, verify_composite_jws
from .local import LocalSigner, export_private_key, generate, import_pkcs8, import_private_key, to_pkcs8
from .public_key import CompositePublicKey
from .signer import CompositeSigner
from .store import CompositeKeyStore
from .uri import composite_uri, parse_composite_uri
from .variants import PREFIX, UNIMPLEMENTED, CompositeAlgorithm
from .x509_signing import sign_certificate, sign_crl, subject_key_identifier
from .x509_verify import certificate_public_key, verify_signed_by

__all__ = [
    "MU_SIZE",
    "PREFIX",
    "UNIMPLEMENTED",
    "CompositeAlgorithm",
    "CompositeCertificateAuthority",
    "CompositeJWK",
    "CompositeKeyStore",
    "CompositePublicKey",
    "CompositeSigner",
    "LocalSigner",
    "MuSigner",
    "certificate_public_key",
    "composite_jwks",
    "composite_uri",
    "export_private_key",
    "generate",
    "import_pkcs8",
    "import_private_key",
    "parse_composite_uri",
    "sign_certificate",
    "sign_crl",
    "subject_key_identifier",
    "to_pkcs8",
    "verify_composite_chain",
    "verify_composite_jws",
    "verify_signed_by",
]
