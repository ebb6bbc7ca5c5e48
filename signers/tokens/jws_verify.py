"""Verifying compact JWS and JWT against the caller's trusted keys, never the token's choice.

- ``alg`` must name an asymmetric algorithm we implement; ``none`` and HMAC are refused;
- the key comes from the caller's key set (``kid`` must be in it when the token has one),
  and the token's ``alg`` must be one that key's spec (and the JWK's own ``alg``) allows;
- a token without ``kid`` is tried against at most `max_kidless_keys` keys (default 1), so
  a kid-less token cannot make the verifier try every key of a large set;
- ``crit`` headers we do not understand and unencoded payloads (``b64: false``) are refused;
- embedded keys (``jwk``, ``jku``, ``x5u``, ``x5c``) are ignored: they never select a key;
- explicit typing (RFC 8725 3.11): `verify_jwt` without ``typ=`` refuses keyplane's own
  typed tokens (passports, action tokens, proofs, revocation lists, audit checkpoints);
- an ``alg`` registered by another module (composite ML-DSA, `jose_algorithms`) goes, after
  the same header checks, to that algorithm's verifier with the caller's keys and the
  kid-less limit; an ``alg`` neither built in nor registered is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..algorithms import KeyFamily, SignatureAlgorithm
from ..clock import DEFAULT_LEEWAY, duration, epoch
from ..errors import AlgorithmNotSupported, ConfigError, InvalidSignature, TokenInvalid
from ..keys import PublicKey
from ..signature_format import curve_size, ecdsa_raw_to_der
from .claims import check_claims, check_not_revoked
from .jose_algorithms import algorithm_from_jose, jose_extension
from .jwk import JWK, JWKS, KeySource
from .jws_parse import DEFAULT_MAX_SIZE, json_object, parse_jws
from .key_sources import as_jwks
from .token_types import KEYPLANE_TYPES, media_type

if TYPE_CHECKING:
    from .revocation import RevocationCheck

__all__ = ["DEFAULT_MAX_KIDLESS_KEYS", "VerifiedJWS", "VerifiedJWT", "verify_jws", "verify_jwt"]

DEFAULT_MAX_KIDLESS_KEYS = 1  # keys a token without kid may be tried against, unless the caller opts in

# Header names RFC 7515/7519 define; `crit` must not list them (RFC 7515 4.1.11).
_REGISTERED_HEADERS = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc", "zip"}
)


@dataclass(frozen=True)
class VerifiedJWS:
    """A JWS whose signature verified with `key` under `algorithm` (an extension's own key and algorithm types)."""

    header: dict[str, Any]
    payload: bytes
    key: JWK
    algorithm: SignatureAlgorithm


@dataclass(frozen=True)
class VerifiedJWT:
    """A JWT whose signature and claims were checked."""

    header: dict[str, Any]
    claims: dict[str, Any]
    key: JWK
    algorithm: SignatureAlgorithm

    @property
    def kid(self) -> str:
        return self.key.kid


def verify_jws(
    token: str | bytes,
    keys: KeySource,
    *,
    algorithms: Iterable[SignatureAlgorithm | str] | None = None,
    typ: str | None = None,
    understood_crit: Iterable[str] = (),
    max_size: int = DEFAULT_MAX_SIZE,
    max_kidless_keys: int = DEFAULT_MAX_KIDLESS_KEYS,
) -> VerifiedJWS:
    """Check a compact JWS's header and signature against trusted `keys`.

    `algorithms` narrows what is accepted further; `typ`, when given, must match the
    header's ``typ`` (case-insensitive, ``application/`` prefix optional, RFC 7515 4.1.9).
    Raises TokenInvalid for anything refused, ConfigError for unusable `keys` or options.
    """
    if isinstance(max_kidless_keys, bool) or not isinstance(max_kidless_keys, int) or max_kidless_keys < 1:
        raise ConfigError("max_kidless_keys must be an integer of at least 1")
    jws = parse_jws(token, max_size=max_size)
    header = jws.header
    extension = jose_extension(header.get("alg"))
    if extension is not None:
        if algorithms is not None and header["alg"] not in {str(a) for a in algorithms}:
            raise TokenInvalid(f"algorithm mismatch: {header['alg'][:40]} is not among the accepted algorithms")
        _check_header(header, typ, frozenset(understood_crit))
        key, algorithm = extension.verifier(jws, keys, max_kidless_keys)
        return VerifiedJWS(header, jws.payload, key, algorithm)
    key_set = as_jwks(keys)
    alg = algorithm_from_jose(header.get("alg"))
    if algorithms is not None:
        allowed = {SignatureAlgorithm.parse(a) for a in algorithms}
        if alg not in allowed:
            raise TokenInvalid(f"algorithm mismatch: {header['alg']} is not among the accepted algorithms")
    _check_header(header, typ, frozenset(understood_crit))
    for jwk in _candidates(key_set, header, alg, max_kidless_keys):
        if _signature_ok(jwk.public_key, alg, jws.signature, jws.signing_input):
            return VerifiedJWS(header, jws.payload, jwk, alg)
    raise TokenInvalid("signature does not verify: the token was altered or signed by another key")


def _check_header(header: dict[str, Any], typ: str | None, understood: frozenset[str]) -> None:
    if "b64" in header and header["b64"] is not True:
        raise TokenInvalid("unencoded payload (b64=false, RFC 7797) is refused")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) and c for c in crit):
            raise TokenInvalid("header 'crit' must be a non-empty list of names")
        for name in crit:
            if name in _REGISTERED_HEADERS or name not in header:
                raise TokenInvalid(f"header 'crit' lists {name[:40]!r}, which it must not")
            if name not in understood:
                raise TokenInvalid(f"critical header {name[:40]!r} is not understood")
    if "kid" in header and not isinstance(header["kid"], str):
        raise TokenInvalid("header 'kid' is not a string")
    if "typ" in header and not isinstance(header["typ"], str):
        raise TokenInvalid("header 'typ' is not a string")
    if typ is not None:
        found = header.get("typ")
        if not isinstance(found, str) or media_type(found) != media_type(typ):
            raise TokenInvalid(f"wrong token type: expected typ {typ[:60]!r}, got {str(found)[:60]!r}")


def _candidates(key_set: JWKS, header: dict[str, Any], alg: SignatureAlgorithm, limit: int) -> list[JWK]:
    kid = header.get("kid")
    if kid is not None:
        jwk = key_set.get(kid)
        if jwk is None:
            raise TokenInvalid(f"kid {kid[:80]!r} is not in the trusted key set")
        if not jwk.allows(alg):
            pinned = jwk.alg.jose_name if jwk.alg else jwk.public_key.spec.value
            raise TokenInvalid(f"algorithm mismatch: token alg {header['alg']} but key {kid[:80]!r} is {pinned}")
        return [jwk]
    matching: list[JWK] = []
    for jwk in key_set:
        if jwk.allows(alg):
            matching.append(jwk)
            if len(matching) > limit:  # stop counting: the answer is no either way
                raise TokenInvalid(
                    f"token has no kid and more than {limit} trusted keys accept alg {header['alg']}: at most "
                    f"{limit} are tried (name the key with kid, or raise max_kidless_keys)"
                )
    if not matching:
        raise TokenInvalid(f"algorithm mismatch: no trusted key accepts alg {header['alg']}")
    return matching


def _signature_ok(public_key: PublicKey, alg: SignatureAlgorithm, signature: bytes, message: bytes) -> bool:
    try:
        if alg.family is KeyFamily.EC:
            if len(signature) != 2 * curve_size(public_key.spec):
                return False
            signature = ecdsa_raw_to_der(signature)
        public_key.verify(signature, message, alg)
    except (InvalidSignature, AlgorithmNotSupported):
        return False
    return True


def verify_jwt(
    token: str | bytes,
    keys: KeySource,
    *,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    subject: str | None = None,
    typ: str | None = None,
    require: Iterable[str] = ("exp",),
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
    revocations: RevocationCheck | None = None,
    algorithms: Iterable[SignatureAlgorithm | str] | None = None,
    understood_crit: Iterable[str] = (),
    max_size: int = DEFAULT_MAX_SIZE,
    max_kidless_keys: int = DEFAULT_MAX_KIDLESS_KEYS,
) -> VerifiedJWT:
    """Verify a JWT: header and signature (as `verify_jws`), then its claims.

    - ``exp`` / ``nbf`` with `leeway` seconds -> TokenExpired; ``iat`` in the future -> TokenInvalid;
    - `audience`: the token's ``aud`` (string or list) must contain one of these; a token
      that names an audience is refused when the caller names none (RFC 7519 4.1.3);
    - `issuer` / `subject`: ``iss`` / ``sub`` must match;
    - `require`: claims that must be present (``exp`` by default: tokens must expire);
    - `revocations`: the ``jti`` must be present and not revoked -> TokenRevoked;
    - `typ`: without it, keyplane's own typed tokens (passport+jwt, action+jwt, pop+jwt,
      revocation-list+jwt, audit checkpoints) are refused with TokenInvalid: verify them
      with their own verifier or name the type (explicit typing, RFC 8725 3.11).

    Raises TokenInvalid / TokenExpired / TokenRevoked for refused tokens, ConfigError for
    bad options (NaN, infinite or negative `leeway`, a naive or non-finite `now`).
    """
    duration(leeway, "leeway")  # options first: a NaN leeway is the caller's error whatever the token
    epoch(now)
    verified = verify_jws(
        token,
        keys,
        algorithms=algorithms,
        typ=typ,
        understood_crit=understood_crit,
        max_size=max_size,
        max_kidless_keys=max_kidless_keys,
    )
    found = verified.header.get("typ")
    if typ is None and isinstance(found, str) and media_type(found) in KEYPLANE_TYPES:
        raise TokenInvalid(
            f"token is a keyplane {media_type(found)} token: verify it with its own verifier or pass typ= "
            "(explicit typing, RFC 8725 3.11)"
        )
    claims = json_object(verified.payload, "payload")
    check_claims(claims, audience=audience, issuer=issuer, subject=subject, require=require, leeway=leeway, now=now)
    if revocations is not None:
        check_not_revoked(claims, revocations)
    return VerifiedJWT(verified.header, claims, verified.key, verified.algorithm)
