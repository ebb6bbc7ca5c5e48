"""Input helpers shared by the agent-governance commands (agent, gate, receipt).

Files go through `signers.commands.io` (a missing file is reported as missing, a binary
one as one line); keys named on the command line are opened with `open_key`, so
``--config`` reaches them. The token layer (`signers.jose`, `signers.revocation`) is
imported inside the helpers that need it: the CLI imports every command module at
start-up and must stay quick.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..keys import PublicKey
from .common import environment_default, open_key
from .io import is_file, looks_like_path, read_public_key, read_text, read_token

if TYPE_CHECKING:
    from signers.jose import JWKS
    from signers.revocation import SQLiteRevocationStore

__all__ = ["public_key_of", "read_json", "read_json_object", "read_token", "revocation_store", "revocation_store_argument",
           "trusted_keys"]


def read_json(value: str, what: str) -> Any:
    """JSON given inline or as ``@FILE``; ConfigError naming `what` when it is not JSON (or the file is missing)."""
    text = read_text(value[1:], f"{what} file") if value.startswith("@") else value
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{what} is not JSON: {type(e).__name__}") from e


def read_json_object(value: str, what: str) -> dict[str, Any]:
    """`read_json` that must be an object (claims, params, a context); ConfigError naming `what` otherwise."""
    data = read_json(value, what)
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object")
    return data


def public_key_of(args: argparse.Namespace, value: str, what: str = "public key file") -> PublicKey:
    """A public key from a JWK / PEM / DER file, or the public key of a key URI / configured name.

    Raises ConfigError for a missing file (a value that looks like a path) or one holding no
    public key, and what `signers.open` raises for a key reference.
    """
    if is_file(value) or (":" not in value and looks_like_path(value)):
        return read_public_key(value, what)
    return open_key(args, value).public_key


def trusted_keys(args: argparse.Namespace, jwks: str | None, key: str | None) -> JWKS:
    """The keys a verifier trusts: a JWKS / JWK / PEM file, or an opened key's public half.

    Raises ConfigError when neither is given, or the file is missing or holds no key.
    """
    # lazy: signers.jose loads the token layer (rfc8785); only the commands that verify need it
    from signers.jose import JWKS, as_jwks

    if key:
        return JWKS.of(open_key(args, key))
    if not jwks:
        raise ConfigError("give the trusted keys: --jwks FILE or --key KEY")
    text = read_text(jwks, "key file")
    if text.lstrip().startswith("{"):
        try:
            return as_jwks(json.loads(text))
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"{jwks} is not JSON") from e
    return as_jwks(PublicKey.from_pem(text))


def revocation_store_argument(given: str | None) -> str | None:
    """The ``--db`` / ``--revocations`` value, else ``$KEYPLANE_REVOCATIONS``, else None."""
    return environment_default(given, "KEYPLANE_REVOCATIONS")


def revocation_store(path: str | None) -> SQLiteRevocationStore | None:
    """An existing SQLite revocation store, or None; ConfigError when `path` does not exist."""
    # lazy: signers.revocation loads the token layer (sqlite3)
    from signers.revocation import SQLiteRevocationStore

    if not path:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"revocation store {path} does not exist")
    return SQLiteRevocationStore(path)
