"""keyplane's core: one signing interface over every place a private key can live.

```python
import signers
signer = signers.open("pkcs11:token=agents;object=ca?module-path=...&pin-source=env:PIN")
signature = signer.sign(b"message")
signer.public_key.verify(signature, b"message", signer.algorithm)
```

Importing this package imports `cryptography` and nothing else heavy: back ends and
their SDKs load only when a URI of their scheme is opened.
"""

from __future__ import annotations

from . import errors
from .algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from .config import Config
from .errors import *  # noqa: F403  (the whole hierarchy: errors.__all__, re-exported below)
from .keys import PublicKey
from .registry import available_schemes, open, open_store, register
from .secrets import Secret, resolve_secret
from .signer import (
    BaseKeyStore,
    BaseSigner,
    BatchSigner,
    Capabilities,
    DigestSigner,
    DisablingKeyStore,
    ImportingKeyStore,
    KeyInfo,
    KeyStore,
    MuSigner,
    NativeAsyncSigner,
    RotatingKeyStore,
    Signer,
    capabilities_of,
)
from .uri import KeyURI, parse_uri

__version__ = "0.1.0"

__all__ = [
    *errors.__all__,  # every error is part of the top-level API
    "BaseKeyStore",
    "BaseSigner",
    "BatchSigner",
    "Capabilities",
    "Config",
    "DigestSigner",
    "DisablingKeyStore",
    "ImportingKeyStore",
    "KeyFamily",
    "KeyInfo",
    "KeySpec",
    "KeyStore",
    "KeyURI",
    "MuSigner",
    "NativeAsyncSigner",
    "PublicKey",
    "RotatingKeyStore",
    "Secret",
    "SignatureAlgorithm",
    "Signer",
    "available_schemes",
    "capabilities_of",
    "open",
    "open_store",
    "parse_uri",
    "register",
    "resolve_secret",
]
