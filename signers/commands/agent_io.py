"""Input helpers shared by the agent-governance commands (agent, gate, receipt).

Kept apart from the token commands' own helpers so each command family can change
without the other. Every handler imports what it needs lazily: the CLI imports every
command module at start-up and must stay quick.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["public_key_of", "read_json", "read_token", "revocation_store", "trusted_keys"]


def read_token(value: str) -> str:
    """A token given inline, as a file, or as ``-`` for standard input."""
    if value == "-":
        return sys.stdin.read().strip()
    try:
        path = Path(value)
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    except OSError:  # a long token is "File name too long" as a path
        pass
    return value.strip()


def read_json(value: str, what: str) -> Any:
    """JSON given inline or as ``@FILE``; ConfigError naming `what` when it is not JSON."""
    from signers.errors import ConfigError

    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read {what} file {value[1:]}: {e.strerror}") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{what} is not JSON: {e}") from e


def public_key_of(value: str) -> Any:
    """A public key from a JWK / PEM file, or the public key of a key URI / configured name."""
    import signers

    path = Path(value)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("{"):
            return signers.PublicKey.from_jwk(text)
        return signers.PublicKey.from_pem(text)
    return signers.open(value).public_key


def trusted_keys(jwks: str | None, key: str | None) -> Any:
    """The keys a verifier trusts: a JWKS / JWK / PEM file, or an opened key's public half."""
    import signers
    from signers.errors import ConfigError
    from signers.jose import JWKS, as_jwks

    if key:
        return JWKS.of(signers.open(key))
    if not jwks:
        raise ConfigError("give the trusted keys: --jwks FILE or --key KEY")
    path = Path(jwks)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read key file {path}: {e.strerror}") from e
    if text.lstrip().startswith("{"):
        try:
            return as_jwks(json.loads(text))
        except ValueError as e:
            raise ConfigError(f"{path} is not JSON") from e
    return as_jwks(signers.PublicKey.from_pem(text))


def revocation_store(path: str | None) -> Any:
    """An existing SQLite revocation store, or None."""
    from signers.errors import ConfigError
    from signers.revocation import SQLiteRevocationStore

    if not path:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"revocation store {path} does not exist")
    return SQLiteRevocationStore(path)
