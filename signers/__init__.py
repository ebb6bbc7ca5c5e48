"""keyplane's core: one signing interface over every place a private key can live.

```python
import signers
signer = signers.open("pkcs11:token=agents;object=ca?module-path=...&pin-source=env:PIN")
signature = signer.sign(b"message")
signer.public_key.verify(signature, b"message", signer.algorithm)
```

Importing this package imports only `signers.errors`: every other public name is loaded on
first use (PEP 562), so ``keyplane --help`` and a program that needs only the errors do not
pay for `cryptography`. Back ends and their SDKs load only when a URI of their scheme
is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import *  # noqa: F403  (the whole hierarchy: errors.__all__, re-exported below; a light module)

if TYPE_CHECKING:
    from .algorithms import KeyFamily, KeySpec, SignatureAlgorithm
    from .config import Config
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

# Each public name but the errors -> the module that defines it, imported on first use.
_MODULES = {
    "algorithms": ("KeyFamily", "KeySpec", "SignatureAlgorithm"),
    "config": ("Config",),
    "keys": ("PublicKey",),
    "registry": ("available_schemes", "open", "open_store", "register"),
    "secrets": ("Secret", "resolve_secret"),
    "signer": (
        "BaseKeyStore", "BaseSigner", "BatchSigner", "Capabilities", "DigestSigner", "DisablingKeyStore",
        "ImportingKeyStore", "KeyInfo", "KeyStore", "MuSigner", "NativeAsyncSigner", "RotatingKeyStore", "Signer",
        "capabilities_of",
    ),
    "uri": ("KeyURI", "parse_uri"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

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


if not TYPE_CHECKING:  # type checkers see the imports above; at run time a name is imported when first used

    def __getattr__(name: str) -> Any:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module 'signers' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # from now on a plain module attribute
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
