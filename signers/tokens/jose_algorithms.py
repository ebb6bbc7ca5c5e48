"""The ``alg`` names keyplane accepts: the built-in ones, and algorithms another module registers.

Built-in names map to a `SignatureAlgorithm` (`JOSE_NAMES`). Algorithms outside it
(composite ML-DSA, draft-ietf-jose-pq-composite-sigs, from `signers.composite`) register
with `register_jose_algorithm`: a verifier (called by `verify_jws` for a token with that
``alg``, before any classical key set is built) and optionally a strict JWK parser (called
when a JWKS holding such a key is built, so a malformed key fails at load like a classical
one). A registered name never shadows a built-in one; ``none`` and HMAC names cannot be
registered. A name keyplane itself serves (`signers.algorithm_modules`) is registered on
first use by importing its module; any other unregistered name stays refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..algorithm_modules import load_jose_algorithm
from ..algorithms import SignatureAlgorithm
from ..errors import ConfigError, TokenInvalid
from .jws_parse import UnverifiedJWS

__all__ = [
    "JOSE_NAMES",
    "ExtensionVerifier",
    "JoseExtension",
    "algorithm_from_jose",
    "extensions_generation",
    "jose_extension",
    "register_jose_algorithm",
]

# Every built-in `alg` value, to the algorithm it means. RFC 9864 "Ed25519" and the
# older "EdDSA" both mean Ed25519 (we never accept EdDSA for an Ed448 key: we have none).
JOSE_NAMES: dict[str, SignatureAlgorithm] = {a.jose_name: a for a in SignatureAlgorithm}
JOSE_NAMES["Ed25519"] = SignatureAlgorithm.ED25519

# (token, the caller's key source, max_kidless_keys) -> (the key that verified, with .kid; the algorithm).
# Raises TokenInvalid when the token does not verify, ConfigError for unusable keys.
ExtensionVerifier = Callable[[UnverifiedJWS, Any, int], tuple[Any, Any]]
KeyParser = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class JoseExtension:
    """A registered ``alg``: its verifier and its strict public-JWK parser (None: keys are kept as given)."""

    name: str
    verifier: ExtensionVerifier
    parse_key: KeyParser | None = None


_EXTENSIONS: dict[str, JoseExtension] = {}
_LOCK = threading.Lock()
_generation = 0  # bumped by every registration: cached key sets parsed before it are parsed again


def _refusal(name: object) -> str | None:
    """Why `name` can never be a signature ``alg``, or None."""
    if not isinstance(name, str):
        return "header 'alg' is missing or not a string"
    if name.lower() == "none":
        return "algorithm 'none' is refused: unsigned tokens are never accepted"
    if name.upper().startswith("HS"):  # HS256/384/512 and any variant: a public key is never a MAC key
        return f"HMAC algorithm {name[:40]} is refused: only public-key signatures are accepted"
    return None


def register_jose_algorithm(name: str, verifier: ExtensionVerifier, *, parse_key: KeyParser | None = None) -> None:
    """Let `sign_jws` / `verify_jws` / `JWKS` handle ``alg`` `name` (see the module docstring).

    Registering the same verifier again is a no-op. Raises ConfigError for an empty,
    built-in, ``none`` or HMAC name, or a name another verifier already holds.
    """
    if not isinstance(name, str) or not name or name in JOSE_NAMES or _refusal(name) is not None:
        raise ConfigError(f"JOSE algorithm name {str(name)[:40]!r} is reserved")
    global _generation
    with _LOCK:
        existing = _EXTENSIONS.get(name)
        if existing is not None:
            if existing.verifier is not verifier or existing.parse_key is not parse_key:
                raise ConfigError(f"JOSE algorithm {name[:40]!r} already has a verifier")
            return
        _EXTENSIONS[name] = JoseExtension(name, verifier, parse_key)
        _generation += 1


def jose_extension(name: object) -> JoseExtension | None:
    """The registered extension for ``alg`` `name` (importing keyplane's module serving it), or None."""
    if not isinstance(name, str) or name in JOSE_NAMES:
        return None
    found = _EXTENSIONS.get(name)
    if found is None and load_jose_algorithm(name):
        found = _EXTENSIONS.get(name)
    return found


def extensions_generation() -> int:
    """Changes whenever an algorithm is registered (part of every key-set cache key)."""
    return _generation


def algorithm_from_jose(name: object) -> SignatureAlgorithm:
    """The built-in algorithm an ``alg`` header means.

    Raises TokenInvalid for a missing or non-string alg, ``none``, any HMAC (``HS*``) and
    names we do not implement.
    """
    refusal = _refusal(name)
    if refusal is not None or not isinstance(name, str):
        raise TokenInvalid(refusal or "header 'alg' is missing or not a string")
    alg = JOSE_NAMES.get(name)
    if alg is None:
        raise TokenInvalid(f"unsupported algorithm {name[:40]!r}")
    return alg
