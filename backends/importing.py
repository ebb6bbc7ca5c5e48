"""What every back end's import_key checks first: the object is a private key keyplane has a PublicKey for."""

from __future__ import annotations

from typing import Any

from signers.errors import AlgorithmNotSupported, ConfigError, KeyplaneError
from signers.keys import PublicKey

__all__ = ["imported_public_key"]


def imported_public_key(private_key: Any, into: str) -> PublicKey:
    """The public half of `private_key` (a `cryptography` private key) about to be imported `into` a service.

    Raises ConfigError for an object with no ``public_key()``, AlgorithmNotSupported for a key
    type keyplane has no PublicKey for (the cause chained).
    """
    public_of = getattr(private_key, "public_key", None)
    if not callable(public_of):
        raise ConfigError("import_key takes a `cryptography` private key object")
    try:
        return PublicKey(public_of())
    except (KeyplaneError, TypeError, ValueError) as e:
        raise AlgorithmNotSupported(f"cannot import a {type(private_key).__name__} into {into}") from e
