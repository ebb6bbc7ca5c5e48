"""Parsing compact JWS: split, decode, and refuse every ambiguous spelling. No signature check.

Garbage in gives TokenInvalid out, never another exception: the parser is the first thing a
hostile token meets. Only canonical base64url is accepted (otherwise spare low bits let one
token be spelled many ways), and JSON with duplicate members or NaN/Infinity constants is
refused (parsers disagree on which duplicate wins).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import TokenInvalid
from ..keys import b64url_decode, b64url_encode

__all__ = ["DEFAULT_MAX_SIZE", "UnverifiedJWS", "json_object", "parse_jws"]

# Largest compact token we parse; ML-DSA-87 passports are ~12 KB. Revocation lists pass more.
DEFAULT_MAX_SIZE = 256 * 1024


@dataclass(frozen=True)
class UnverifiedJWS:
    """A parsed compact JWS whose signature has NOT been checked: inspect, never trust."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    def claims(self) -> dict[str, Any]:
        """The payload as a JSON object; TokenInvalid if it is not one."""
        return json_object(self.payload, "payload")


def parse_jws(token: str | bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> UnverifiedJWS:
    """Split and decode a compact JWS. Raises TokenInvalid, and nothing else, on any input."""
    try:
        return _parse(token, max_size)
    except TokenInvalid:
        raise
    except Exception as e:  # the parser's promise: garbage in, TokenInvalid out, never a crash
        raise TokenInvalid(f"malformed token ({type(e).__name__})") from e


def _parse(token: str | bytes, max_size: int) -> UnverifiedJWS:
    if isinstance(token, bytes | bytearray):
        try:
            token = bytes(token[: max_size + 3]).decode("ascii")  # no need to decode more than the limit (+CRLF)
        except UnicodeDecodeError:
            raise TokenInvalid("malformed token: not ASCII") from None
    if not isinstance(token, str):
        raise TokenInvalid(f"malformed token: expected text, got {type(token).__name__}")
    token = token.strip()
    if len(token) > max_size:
        raise TokenInvalid(f"token is {len(token)} characters, more than the {max_size} allowed")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid(f"malformed token: a compact JWS has 3 parts, this has {len(parts)}")
    header_b64, payload_b64, signature_b64 = parts
    header = json_object(_b64_segment(header_b64, "header"), "header")
    payload = _b64_segment(payload_b64, "payload")
    signature = _b64_segment(signature_b64, "signature")
    if not signature:
        raise TokenInvalid("malformed token: empty signature")
    return UnverifiedJWS(header, payload, signature, f"{header_b64}.{payload_b64}".encode("ascii"))


def _b64_segment(segment: str, what: str) -> bytes:
    try:
        data = b64url_decode(segment)
    except ValueError:
        raise TokenInvalid(f"malformed token: {what} is not base64url") from None
    if b64url_encode(data) != segment:
        raise TokenInvalid(f"malformed token: {what} is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise TokenInvalid(f"duplicate member {key[:40]!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise TokenInvalid(f"non-standard JSON constant {name}")


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """`data` as a JSON object (UTF-8, no duplicate members, no NaN/Infinity); TokenInvalid otherwise."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except TokenInvalid as e:
        raise TokenInvalid(f"malformed token: {what}: {e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TokenInvalid(f"malformed token: {what} is not JSON") from e
    if not isinstance(value, dict):
        raise TokenInvalid(f"malformed token: {what} is not a JSON object")
    return value
