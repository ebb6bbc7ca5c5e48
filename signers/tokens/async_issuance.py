"""Issuance from an event loop: the same tokens as `sign_jws` / `sign_jwt` / `issue_passport`, via `sign_async`.

A service on an event loop used to hand each issuance to a worker thread and wait for it.
That hop (a queue put, a thread wake-up, a GIL hand-over and a callback back to the loop)
costs more CPU than the claims and the header together, and under load the threads
contend for the GIL with the loop. Here the claims, the JSON and the base64 run on the
loop (microseconds), and only the signature is awaited: a native async back end (Transit
over aiohttp, the cloud KMS async clients) signs without a thread, a file key signs inline,
and a signer wrapped by `AuditedSigner` records through the log's group commit.

Each function writes byte for byte what its synchronous twin writes (the same prepared
header, the same claims serialisation); tests/throughput/test_async_issuance.py holds them
to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Unpack

from ..signature_format import ecdsa_der_to_raw
from .jws_sign import _b64url, _prepared, claims_json
from .passport import PassportArguments, passport_payload
from .token_types import PASSPORT_TYP

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["issue_passport_async", "sign_jws_async", "sign_jwt_async"]


async def sign_jws_async(
    signer: Signer,
    payload: bytes,
    *,
    typ: str | None = None,
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """`sign_jws` with ``await signer.sign_async``; raises what `sign_jws` raises."""
    prefix, ec_size = _prepared(signer, typ, header, alg)
    signing_input = prefix + _b64url(payload)
    signature: bytes = await signer.sign_async(signing_input)
    if ec_size:
        signature = ecdsa_der_to_raw(signature, ec_size)
    return (signing_input + b"." + _b64url(signature)).decode("ascii")


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


async def issue_passport_async(signer: Signer, *, alg: str | None = None,
                               **arguments: Unpack[PassportArguments]) -> str:
    """`issue_passport` with ``await signer.sign_async``; the claims are checked before anything is signed.

    Raises what `issue_passport` raises.
    """
    return await sign_jws_async(signer, passport_payload(**arguments), typ=PASSPORT_TYP, alg=alg)
