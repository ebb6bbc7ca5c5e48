"""Build attestations: a builder's signed statement that a code_hash is one of its builds.

The trust score's "code attestation" input and the gate's ``code_hashes`` are only as good
as the list of attested builds; `attest_build` makes that list verifiable: a JWT (``typ:
build-attestation+jwt``) from the build system's key naming the ``code_hash``, the
``builder`` and optionally the source revision. `attested_builds(tokens, builder_keys)`
returns the code hashes whose attestations verify (and have not expired), refusing
nothing silently: a bad attestation raises unless ``skip_invalid=True``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..clock import duration, epoch
from ..errors import TokenError, TokenInvalid
from ..jose import KeySource, as_jwks, sign_jwt, verify_jwt
from .errors import PolicyError

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["ATTESTATION_TYP", "attest_build", "attested_builds"]

ATTESTATION_TYP = "build-attestation+jwt"
_CODE_HASH = re.compile(r"^sha256:[0-9a-f]{64}\Z")  # \Z: "$" would let a trailing newline through


def attest_build(
    builder_signer: Signer,
    code_hash: str,
    *,
    builder: str,
    revision: str | None = None,
    ttl: float | timedelta = timedelta(days=365),
    now: datetime | float | None = None,
) -> str:
    """The build system's statement that `code_hash` is its build (of `revision`)."""
    if not isinstance(code_hash, str) or not _CODE_HASH.match(code_hash):
        raise PolicyError("code_hash must be 'sha256:<64 lowercase hex>'")
    if not isinstance(builder, str) or not builder:
        raise PolicyError("builder must be a non-empty name")
    issued = int(epoch(now))
    claims = {"iss": builder, "sub": code_hash, "iat": issued,
              "exp": issued + max(1, int(duration(ttl, "ttl", allow_zero=False))), "jti": str(uuid.uuid4()),
              "code_hash": code_hash}
    if revision is not None:
        claims["revision"] = str(revision)
    return sign_jwt(builder_signer, claims, typ=ATTESTATION_TYP)


def attested_builds(
    tokens: Iterable[str],
    builder_keys: KeySource,
    *,
    builder: str | Iterable[str] | None = None,
    skip_invalid: bool = False,
    now: datetime | float | None = None,
) -> set[str]:
    """The code hashes of the attestations that verify against `builder_keys` (and `builder`, if named).

    Raises the first TokenError (TokenInvalid / TokenExpired) unless `skip_invalid`.
    """
    keys = as_jwks(builder_keys)
    found: set[str] = set()
    for token in tokens:
        try:
            verified = verify_jwt(token, keys, typ=ATTESTATION_TYP, issuer=builder,
                                  require=("iss", "sub", "iat", "exp", "code_hash"), now=now)
            code = verified.claims["code_hash"]
            if not isinstance(code, str) or not _CODE_HASH.match(code) or verified.claims["sub"] != code:
                raise TokenInvalid("attestation code_hash is not a SHA-256 digest (or differs from its sub)")
        except TokenError:
            if skip_invalid:
                continue
            raise
        found.add(code)
    return found
