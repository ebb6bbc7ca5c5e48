"""Input helpers shared by the command modules: files, tokens, signatures, public keys.

Every file the user names goes through `read_bytes` / `read_text`, so a missing file is
reported as missing (ConfigError, exit 2) whatever it was meant to hold, a binary file
where text belongs is one line saying so, and nothing surfaces as a bare
FileNotFoundError or UnicodeDecodeError.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from pathlib import Path

from ..errors import ConfigError, KeyplaneError, PermissionDenied
from ..keys import PublicKey
from .common import store_argument

__all__ = [
    "default_store",
    "is_file",
    "looks_like_jwt",
    "looks_like_path",
    "read_bytes",
    "read_input",
    "read_public_key",
    "read_signature",
    "read_text",
    "read_token",
    "write_bytes",
]

# No signature keyplane makes or checks is this short: a shorter "base64" value is a file name.
_MIN_SIGNATURE_BYTES = 32
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$")
_FILE_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")

default_store = store_argument  # the old name, kept for callers

# What the user is told when the operating system refuses a file: a typed, one-line error.
_READ_REFUSALS: dict[type[OSError], str] = {
    FileNotFoundError: "{what} {target} does not exist",
    IsADirectoryError: "{what} {target} is a directory, not a file",
    PermissionError: "{what} {target} cannot be read: permission denied",
}
_WRITE_REFUSALS: dict[type[OSError], str] = {
    FileNotFoundError: "cannot write {what} {target}: its directory does not exist",
    IsADirectoryError: "cannot write {what} {target}: it is a directory",
    PermissionError: "cannot write {what} {target}: permission denied",
}


def _refusal(error: OSError, refusals: dict[type[OSError], str], failed: str, **names: object) -> KeyplaneError:
    """The error for `error`: its entry in `refusals`, else `failed` with the system's reason."""
    for kind, message in refusals.items():
        if isinstance(error, kind):
            text = message.format(**names)
            return PermissionDenied(text) if kind is PermissionError else ConfigError(text)
    return ConfigError(f"{failed}: {error.strerror or type(error).__name__}")


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of `path`; `what` (``"signature file"``) names it in the error.

    Raises ConfigError when the file does not exist, is a directory or cannot be read, and
    PermissionDenied when the operating system refuses to open it.
    """
    target = Path(path)
    try:
        return target.read_bytes()
    except OSError as e:
        raise _refusal(e, _READ_REFUSALS, f"cannot read {what} {target}", what=what, target=target) from None


def read_text(path: str | Path, what: str = "file") -> str:
    """`read_bytes` decoded as UTF-8; ConfigError (one line) for a binary file."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


def read_input(path: str | None) -> bytes:
    """The message: a file, or standard input for ``-`` / nothing."""
    if path in (None, "-"):
        return sys.stdin.buffer.read()
    return read_bytes(path, "input file")


def is_file(value: str) -> bool:
    """True when `value` names an existing file; False, not an error, for what cannot be a file name."""
    try:
        return Path(value).is_file()
    except (OSError, ValueError):  # "File name too long", an embedded NUL: not a file name
        return False


def looks_like_jwt(value: str) -> bool:
    """True for a compact JWS (three base64url parts joined by dots)."""
    return bool(_COMPACT_JWS.match(value))


def looks_like_path(value: str) -> bool:
    """True for what a user types as a file name: a directory part, or a short extension (``.jwt``)."""
    return "/" in value or bool(_FILE_EXTENSION.search(value))


def read_token(value: str, what: str = "token") -> str:
    """A compact token given inline, as a file holding it, or ``-`` for standard input.

    A value that names no existing file but looks like a path (``/tmp/t``, ``token.jwt``) is a
    missing file (ConfigError), never passed on to be refused as a malformed token; anything
    else that is not a file is returned as the token itself, for the verifier to judge.
    Raises ConfigError also for a file (or standard input) that is not UTF-8 text.
    """
    if value == "-":
        try:
            return sys.stdin.buffer.read().decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"the {what} on standard input is not UTF-8 text") from None
    text = value.strip()
    if looks_like_jwt(text):
        return text
    if is_file(value):
        return read_text(value, f"{what} file").strip()
    if looks_like_path(text) and len(text) <= 4096:
        raise ConfigError(f"{what} file {text} does not exist")
    return text


def read_signature(value: str) -> bytes:
    """A signature given as a file path (raw bytes or base64 text) or as base64 text inline.

    Raises ConfigError when `value` is neither an existing file nor base64 of a plausible
    signature (so a mistyped file name is reported as missing).
    """
    if is_file(value):
        data = read_bytes(value, "signature file")
        try:
            return base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            return data
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) >= _MIN_SIGNATURE_BYTES:
        return decoded
    raise ConfigError(f"signature file {value[:200]} does not exist (and the value is not base64 of a signature)")


def read_public_key(path: str | Path, what: str = "public key file") -> PublicKey:
    """A public key from a file: JWK (or a JWKS of one key), PEM, DER, or the base64 DER ``keys pubkey --format der`` prints.

    Raises ConfigError for a missing file or one that holds none of these.
    """
    data = read_bytes(path, what)
    if data[:1] == b"\x30":  # a DER SEQUENCE (never stripped: its last byte may be whitespace)
        return PublicKey.from_der(data)
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            jwk = json.loads(stripped.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{what} {path} is not a JWK (not UTF-8 text)") from None
        except (ValueError, RecursionError):
            raise ConfigError(f"{what} {path} is not a JWK (not JSON)") from None
        if isinstance(jwk, dict) and isinstance(jwk.get("keys"), list):  # a JWKS holding one key is that key
            if len(jwk["keys"]) != 1:
                raise ConfigError(f"{what} {path} is a JWKS with {len(jwk['keys'])} keys; give one key")
            jwk = jwk["keys"][0]
        if not isinstance(jwk, dict):
            raise ConfigError(f"{what} {path} is not a JWK (not a JSON object)")
        return PublicKey.from_jwk(jwk)
    if b"-----BEGIN" in stripped:
        return PublicKey.from_pem(stripped)
    try:
        der = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} {path} is not a PEM, DER or JWK public key") from None
    return PublicKey.from_der(der)


def write_bytes(path: str | Path, data: bytes, what: str = "output file") -> None:
    """Write `data` to `path`; ConfigError (one line) when the place cannot be written."""
    target = Path(path)
    try:
        target.write_bytes(data)
    except OSError as e:
        raise _refusal(e, _WRITE_REFUSALS, f"cannot write {what} {target}", what=what, target=target) from None
