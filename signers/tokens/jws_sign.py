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
from ..keys import b64url_encode
from ..signature_format import curve_size, ecdsa_der_to_raw
from .jose_algorithms import JOSE_NAMES, jose_extension

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["sign_jws", "sign_jwt", "sign_jwts"]


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
    signing_input = f"{_b64json(protected, 'header')}.{b64url_encode(payload)}"
    signature = signer.sign(signing_input.encode("ascii"))
    if not extension and signer.algorithm.family is KeyFamily.EC:
        signature = ecdsa_der_to_raw(signature, curve_size(signer.public_key.spec))
    return f"{signing_input}.{b64url_encode(signature)}"


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
    return sign_jws(signer, _json(dict(claims), "claims"), typ=typ, header=header, alg=alg)


def _json(value: Mapping[str, Any], what: str) -> bytes:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise ConfigError(f"{what} are not JSON serialisable: {str(e)[:120]}") from e
    return text.encode("utf-8")


def _b64json(value: Mapping[str, Any], what: str) -> str:
    return b64url_encode(_json(value, what))


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
    first = sign_jws(_HeaderProbe(signer), b"", typ=typ, header=header, alg=alg)  # the same checks, no signature
    encoded_header = first.split(".", 1)[0]
    inputs = [f"{encoded_header}.{b64url_encode(_json(dict(claims), 'claims'))}" for claims in claims_list]
    if not inputs:
        return []
    messages = [text.encode("ascii") for text in inputs]
    sign_many = getattr(signer, "sign_many", None)  # BatchSigner; any BaseSigner has it
    signatures = sign_many(messages) if callable(sign_many) else [signer.sign(m) for m in messages]
    ec_size = curve_size(signer.public_key.spec) if _HeaderProbe.ec_written(first) else None
    return [f"{text}.{b64url_encode(sig if ec_size is None else ecdsa_der_to_raw(sig, ec_size))}"
            for text, sig in zip(inputs, signatures, strict=True)]


class _HeaderProbe:
    """Stands in for the signer in one `sign_jws` call, so a batch gets exactly its header and checks.

    `sign` returns a fixed DER signature (r = s = 1) instead of signing; whether `sign_jws`
    rewrote it as r||s tells the batch whether its signatures must be rewritten the same way.
    """

    _PLACEHOLDER = bytes.fromhex("3006020101020101")

    def __init__(self, signer: Signer) -> None:
        self.key_id = signer.key_id
        self.uri = signer.uri
        self.algorithm = signer.algorithm
        self.public_key = signer.public_key

    def sign(self, message: bytes) -> bytes:
        return self._PLACEHOLDER

    async def sign_async(self, message: bytes) -> bytes:
        return self._PLACEHOLDER

    @classmethod
    def ec_written(cls, token: str) -> bool:
        """True when `sign_jws` turned the placeholder into r||s (ECDSA, RFC 7518 3.4)."""
        return token.rsplit(".", 1)[1] != b64url_encode(cls._PLACEHOLDER)
