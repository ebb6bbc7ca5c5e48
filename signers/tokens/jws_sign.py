"""Signing compact JWS and JWT with any Signer.

The key can sit in any back end: signing goes through `Signer.sign`, and the only
JOSE-specific step is the signature encoding (ECDSA as fixed-width r||s, RFC 7518 3.4,
instead of the DER that back ends return).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..algorithms import KeyFamily
from ..errors import ConfigError
from ..keys import b64url_bytes
from ..signature_format import curve_size, ecdsa_der_to_raw
from .jose_algorithms import JOSE_NAMES, jose_extension

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["claims_json", "json_text", "sign_jws", "sign_jws_async", "sign_jwt", "sign_jwt_async", "sign_jwts"]


def sign_jws(
    signer: Signer,
    payload: bytes,
    *,
    typ: str | None = None,
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """A compact JWS of `payload` signed by `signer`; ``kid`` is the signer's key_id.

    `alg` overrides the written name only where two names mean the same algorithm:
    ``"Ed25519"`` (RFC 9864) instead of the default ``"EdDSA"`` for an Ed25519 signer.
    A signer of a registered extension algorithm (composite ML-DSA) signs under its own
    ``alg``; its signature is written as the signer returns it. Raises ConfigError for an alg that is not a name of the signer's algorithm or a header
    that would override ``alg`` / ``kid`` / ``b64`` / ``crit``; whatever the Signer raises.
    """
    signing_input, ec_size = _signing_input(signer, payload, typ, header, alg)
    return _compact(signing_input, signer.sign(signing_input), ec_size)


async def sign_jws_async(
    signer: Signer,
    payload: bytes,
    *,
    typ: str | None = None,
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """`sign_jws` with ``await signer.sign_async``, for code on an event loop; raises what `sign_jws` raises.

    The header, the base64 and the compact form are `sign_jws`' own (the same bytes); only
    the signature is awaited: a native async back end signs without a worker thread.
    """
    signing_input, ec_size = _signing_input(signer, payload, typ, header, alg)
    return _compact(signing_input, await signer.sign_async(signing_input), ec_size)


def _signing_input(signer: Signer, payload: bytes, typ: str | None, header: Mapping[str, Any] | None,
                   alg: str | None) -> tuple[bytes, int | None]:
    """(``<header>.<payload>`` in base64url as bytes, ECDSA scalar size or None): bytes throughout, one decode at the end."""
    prefix, ec_size = _prepared(signer, typ, header, alg)
    return prefix + b64url_bytes(payload), ec_size


def _compact(signing_input: bytes, signature: bytes, ec_size: int | None) -> str:
    """``<signing input>.<base64url signature>``; an ECDSA signature (DER from the back end) as r||s first."""
    if ec_size:
        signature = ecdsa_der_to_raw(signature, ec_size)
    return (signing_input + b"." + b64url_bytes(signature)).decode("ascii")


def sign_jwt(
    signer: Signer,
    claims: Mapping[str, Any],
    *,
    typ: str | None = "JWT",
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """A compact JWT with `claims` (a JSON object) signed by `signer`. Claims are written as given.

    Raises ConfigError when the claims are not JSON serialisable, and what `sign_jws` raises.
    """
    return sign_jws(signer, claims_json(claims), typ=typ, header=header, alg=alg)


async def sign_jwt_async(
    signer: Signer,
    claims: Mapping[str, Any],
    *,
    typ: str | None = "JWT",
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """`sign_jwt` with ``await signer.sign_async``; raises what `sign_jwt` raises."""
    return await sign_jws_async(signer, claims_json(claims), typ=typ, header=header, alg=alg)


def sign_jwts(
    signer: Signer,
    claims_list: Sequence[Mapping[str, Any]],
    *,
    typ: str | None = "JWT",
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> list[str]:
    """Many compact JWTs (same header) signed in one `sign_many` call, in the order given.

    Each token is what `sign_jwt` returns for those claims; the back end signs them in as
    few round trips as it can (Transit: one batch request; PKCS#11 / KMSs: spread over its
    sessions / connections). Raises what `sign_jwt` raises, and BatchSignError (one entry
    per token: its signature or the error) when some of them could not be signed.
    """
    prefix, ec_size = _prepared(signer, typ, header, alg)
    messages = [prefix + b64url_bytes(claims_json(claims)) for claims in claims_list]
    if not messages:
        return []
    sign_many = getattr(signer, "sign_many", None)  # BatchSigner; any BaseSigner has it
    signatures = sign_many(messages) if callable(sign_many) else [signer.sign(m) for m in messages]
    return [_compact(message, sig, ec_size) for message, sig in zip(messages, signatures, strict=True)]


def claims_json(claims: Mapping[str, Any], what: str = "claims") -> bytes:
    """`claims` as compact UTF-8 JSON, written as given; ConfigError when they are not JSON serialisable."""
    try:
        return _ENCODER.encode(claims if type(claims) is dict else dict(claims)).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as e:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise ConfigError(f"{what} are not JSON serialisable: {str(e)[:120]}") from e


def json_text(value: Any, what: str = "claims") -> str:
    """`value` as compact JSON text, as `claims_json` writes it inside a document; the same ConfigError.

    For a writer that assembles a document from pieces (`passport._direct_payload`): a
    JSON value's text does not depend on where it sits, so the pieces joined are the bytes
    `claims_json` of the whole would be. Not encoded: the caller encodes the whole once.
    """
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise ConfigError(f"{what} are not JSON serialisable: {str(e)[:120]}") from e


def _prepared(signer: Signer, typ: str | None, header: Mapping[str, Any] | None, alg: str | None
              ) -> tuple[bytes, int | None]:
    """(``<base64url protected header>.`` as ASCII bytes, ECDSA scalar size or None) for this signer, typ and alg.

    Without extra `header` members the result depends only on the signer's key_id and
    algorithm (the curve follows from the key, whose thumbprint the key_id is), so it is
    checked, serialised and encoded once per (key_id, algorithm, typ, alg) and then reused:
    issuing a token costs one claims serialisation and one signature.
    """
    if header:
        return _build(signer, typ, header, alg)
    try:
        cache_key = (signer.key_id, signer.algorithm, typ, alg)
        return _HEADERS[cache_key]
    except KeyError:
        pass
    except TypeError:  # an unhashable key_id or typ: nothing to cache by
        return _build(signer, typ, None, alg)
    built = _build(signer, typ, None, alg)
    if len(_HEADERS) >= _MAX_HEADERS:
        _HEADERS.clear()  # a bound, not an LRU: a process rarely signs with thousands of keys
    _HEADERS[cache_key] = built
    return built


def _build(signer: Signer, typ: str | None, header: Mapping[str, Any] | None, alg: str | None
           ) -> tuple[bytes, int | None]:
    name = alg or signer.algorithm.jose_name
    extension = jose_extension(name) is not None
    if (signer.algorithm.jose_name != name) if extension else (JOSE_NAMES.get(name) is not signer.algorithm):
        raise ConfigError(f"alg {name!r:.60} is not a name for the signer's algorithm {signer.algorithm.value}")
    protected: dict[str, Any] = {"alg": name}
    if typ is not None:
        protected["typ"] = typ
    protected["kid"] = signer.key_id
    for key, value in (header or {}).items():
        if key in ("alg", "kid", "b64", "crit"):
            raise ConfigError(f"header {key!r} is set by keyplane and cannot be overridden")
        protected[key] = value
    ec_size = None
    if not extension and signer.algorithm.family is KeyFamily.EC:
        ec_size = curve_size(signer.public_key.spec)
    return b64url_bytes(claims_json(protected, "header")) + b".", ec_size


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_HEADERS: dict[tuple[Any, ...], tuple[bytes, int | None]] = {}
_MAX_HEADERS = 4096
