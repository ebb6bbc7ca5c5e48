"""Composite signatures in JOSE (draft-ietf-jose-pq-composite-sigs): ``alg`` names, AKP JWKs, JWKS.

The JOSE draft reuses the LAMPS construction with an empty application context: the JWS
signature is the raw composite signature (mldsaSig || tradSig, the ECDSA half an
Ecdsa-Sig-Value) over the JWS signing input, and the key is an AKP JWK whose ``pub`` is
the composite public key and whose ``alg`` is one of ML-DSA-44-ES256, ML-DSA-65-ES256,
ML-DSA-87-ES384, ML-DSA-44-Ed25519, ML-DSA-65-Ed25519 (ML-DSA-87-Ed448: no Ed448 here).

Importing this module registers those names with `signers.jose` (which imports it by
itself on meeting one of them: `signers.algorithm_modules`), so `sign_jwt`, `verify_jwt`,
passports and action tokens take composite signers and composite JWKs like any other;
verification stays pinned: the token's ``alg`` must be the JWK's, a ``kid`` must name a
key of the caller's set, and a kid-less token is tried against `max_kidless_keys` keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signers.errors import AlgorithmNotSupported, ConfigError, InvalidSignature, TokenInvalid
from signers.jose import JWKS, UnverifiedJWS, as_jwks, register_jose_algorithm

from .public_key import CompositePublicKey
from .signer import CompositeSigner
from .variants import CompositeAlgorithm

__all__ = ["CompositeJWK", "composite_jwks", "verify_composite_jws"]


@dataclass(frozen=True)
class CompositeJWK:
    """A trusted composite key: the key, its ``kid``, pinned to its variant (what `VerifiedJWS.key` holds)."""

    public_key: CompositePublicKey
    kid: str
    use: str | None = None

    @property
    def alg(self) -> CompositeAlgorithm:
        return self.public_key.variant

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompositeJWK:
        """From a public AKP JWK with a composite ``alg``; ConfigError for private members or a bad kid."""
        public_key = CompositePublicKey.from_jwk(data)
        kid = data.get("kid", public_key.key_id)
        use = data.get("use")
        if not isinstance(kid, str) or not kid or (use is not None and not isinstance(use, str)):
            raise ConfigError("JWK kid must be a non-empty string and use a string")
        return cls(public_key, kid, use)

    def to_dict(self) -> dict[str, str]:
        jwk = self.public_key.to_jwk(kid=False)
        if self.use is not None:
            jwk["use"] = self.use
        jwk["kid"] = self.kid
        return jwk


def composite_jwks(*items: CompositeSigner | CompositePublicKey | CompositeJWK | Any) -> JWKS:
    """A JWKS holding composite keys beside classical ones (Signers, PublicKeys, JWKs, JWKS)."""
    classical: list[Any] = []
    extension: list[dict[str, str]] = []
    for item in items:
        if isinstance(item, CompositeSigner):
            extension.append(item.public_key.to_jwk())
        elif isinstance(item, CompositePublicKey):
            extension.append(item.to_jwk())
        elif isinstance(item, CompositeJWK):
            extension.append(item.to_dict())
        else:
            classical.append(item)
    base = JWKS.of(*classical)
    return JWKS(base, extension_keys=[*base.extension_keys, *extension])


def _trusted(keys: Any) -> list[CompositeJWK]:
    """The composite keys in whatever the caller trusts (JWKS, JWKS/JWK dict or JSON, key, signer, list).

    Dicts and JSON text go through `as_jwks`, so a key-set document is parsed (strictly,
    by `CompositeJWK.from_dict`) once and cached, like a classical one.
    """
    if isinstance(keys, CompositeJWK):
        return [keys]
    if isinstance(keys, CompositeSigner):
        return [CompositeJWK(keys.public_key, keys.key_id)]
    if isinstance(keys, CompositePublicKey):
        return [CompositeJWK(keys, keys.key_id)]
    if isinstance(keys, Mapping | str | bytes):
        keys = as_jwks(keys)
    if isinstance(keys, JWKS):
        return [jwk for jwk in keys.extension_jwks if isinstance(jwk, CompositeJWK)]
    if isinstance(keys, Iterable) and not isinstance(keys, Path):
        return [jwk for item in keys for jwk in _trusted(item)]
    return []


def verify_composite_jws(jws: UnverifiedJWS, keys: Any, max_kidless_keys: int = 1) -> tuple[CompositeJWK,
                                                                                          CompositeAlgorithm]:
    """The `signers.jose` verifier for composite ``alg`` values: the key that verified, or TokenInvalid.

    The key comes from the caller's `keys`, never the token: a ``kid`` must name one of
    them, the token's ``alg`` must be that key's variant, and a token without ``kid`` is
    tried against at most `max_kidless_keys` keys of its variant. Raises ConfigError for a
    malformed composite JWK among `keys`.
    """
    variant = CompositeAlgorithm.by_jose_name(jws.header.get("alg"))
    if variant is None:  # pragma: no cover - only registered names reach here
        raise TokenInvalid("unsupported algorithm")
    trusted = _trusted(keys)
    kid = jws.header.get("kid")
    if kid is not None:
        candidates = [jwk for jwk in trusted if jwk.kid == kid]
        if not candidates:
            raise TokenInvalid(f"kid {str(kid)[:80]!r} is not in the trusted key set")
        if all(jwk.alg is not variant for jwk in candidates):
            raise TokenInvalid(f"algorithm mismatch: token alg {variant.jose_name} but key {kid[:80]!r} is "
                               f"{candidates[0].alg.jose_name}")
    else:
        candidates = trusted
    candidates = [jwk for jwk in candidates if jwk.alg is variant]
    if not candidates:
        raise TokenInvalid(f"algorithm mismatch: no trusted key accepts alg {variant.jose_name}")
    if kid is None and len(candidates) > max_kidless_keys:
        raise TokenInvalid(f"token has no kid and more than {max_kidless_keys} trusted keys accept alg "
                           f"{variant.jose_name}: at most {max_kidless_keys} are tried (name the key with kid, "
                           "or raise max_kidless_keys)")
    for jwk in candidates:
        try:
            jwk.public_key.verify(jws.signature, jws.signing_input)
        except InvalidSignature:
            continue
        return jwk, variant
    raise TokenInvalid("signature does not verify: the token was altered or signed by another key")


def _parse_key(data: Mapping[str, Any]) -> CompositeJWK:
    """Strict import of a composite JWK inside a JWKS: ConfigError naming the key when it is malformed."""
    try:
        return CompositeJWK.from_dict(data)
    except (ConfigError, AlgorithmNotSupported) as e:
        raise ConfigError(f"malformed composite JWK {str(data.get('kid'))[:80]!r}: {e}") from e


for _variant in CompositeAlgorithm:
    if _variant.has_jose_name:
        register_jose_algorithm(_variant.jose_name, verify_composite_jws, parse_key=_parse_key)
del _variant
