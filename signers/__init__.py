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

from .algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from .config import Config
from .errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyCorrupt,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from .keys import PublicKey
from .registry import available_schemes, open, open_store, register
from .secrets import Secret, resolve_secret
from .signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, KeyStore, Signer
from .uri import KeyURI, parse_uri

__version__ = "0.1.0"

__all__ = [
    "AlgorithmNotSupported",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BaseKeyStore",
    "BaseSigner",
    "Capabilities",
    "Config",
    "ConfigError",
    "InvalidSignature",
    "KeyCorrupt",
    "KeyDisabled",
    "KeyExists",
    "KeyFamily",
    "KeyInfo",
    "KeyNotFound",
    "KeySpec",
    "KeyStore",
    "KeyURI",
    "KeyplaneError",
    "PermissionDenied",
    "PublicKey",
    "Secret",
    "SignatureAlgorithm",
    "Signer",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenRevoked",
    "available_schemes",
    "open",
    "open_store",
    "parse_uri",
    "register",
    "resolve_secret",
]
