"""Compact JWS and JWT signed by any Signer, JWK / JWKS export, and pinned verification.

The public JOSE API in one import; each concern lives in its own module:

- `signers.tokens.jwk`: JWK / JWKS (strict import, indexed key sets);
- `signers.tokens.jose_algorithms`: ``alg`` names, `register_jose_algorithm` for algorithms
  outside `SignatureAlgorithm` (composite ML-DSA);
- `signers.tokens.key_sources`: `as_jwks` (whatever the caller trusts, cached);
- `signers.tokens.jws_sign`: `sign_jws`, `sign_jwt`;
- `signers.tokens.jws_parse`: `parse_jws` (garbage in, TokenInvalid out);
- `signers.tokens.jws_verify`: `verify_jws`, `verify_jwt` (the key and alg come from the
  caller, never the token; explicit typing, RFC 8725 3.11);
- `signers.tokens.claims`: the registered-claim checks;
- `signers.tokens.canonical`: RFC 8785 canonical JSON.

Every refusal is a `TokenError`: `TokenInvalid` (malformed, tampered, wrong key, type or
algorithm), `TokenExpired` (``exp`` passed or ``nbf`` not reached) or `TokenRevoked`.
Tokens interoperate with PyJWT and joserfc for the classical algorithms; ML-DSA uses
``alg`` ``ML-DSA-44/65/87`` and JWK ``kty`` ``AKP`` (RFC 9964).
"""

from __future__ import annotations

from ..clock import DEFAULT_LEEWAY, epoch
from .canonical import canonical_json
from .claims import check_claims, check_not_revoked
from .jose_algorithms import register_jose_algorithm
from .jwk import JWK, JWKS, KeySource, algorithm_from_jose, public_key_from_jwk
from .jws_parse import DEFAULT_MAX_SIZE, UnverifiedJWS, parse_jws
from .jws_sign import sign_jws, sign_jwt
from .jws_verify import DEFAULT_MAX_KIDLESS_KEYS, VerifiedJWS, VerifiedJWT, verify_jws, verify_jwt
from .key_sources import as_jwks

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_MAX_KIDLESS_KEYS",
    "DEFAULT_MAX_SIZE",
    "JWK",
    "JWKS",
    "KeySource",
    "UnverifiedJWS",
    "VerifiedJWS",
    "VerifiedJWT",
    "algorithm_from_jose",
    "as_jwks",
    "canonical_json",
    "check_claims",
    "check_not_revoked",
    "epoch",
    "parse_jws",
    "public_key_from_jwk",
    "register_jose_algorithm",
    "sign_jws",
    "sign_jwt",
    "verify_jws",
    "verify_jwt",
]
