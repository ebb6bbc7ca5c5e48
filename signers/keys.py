"""PublicKey: one typed public key for every back end, and the project's one verifier.

Back ends hand over whatever their service returns (SPKI DER, PEM, JWK, raw ML-DSA
bytes); everything downstream (key ids, JWKS, certificates, conformance checks) reads a
PublicKey. `verify()` is `cryptography` underneath, so there is exactly one verifier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Union

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa

from .algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from .errors import AlgorithmNotSupported, ConfigError, InvalidSignature
from .json_text import json_object

__all__ = ["PublicKey", "b64url_bytes", "b64url_decode", "b64url_encode", "jwk_thumbprint", "with_use_and_kid"]

CryptoPublicKey = Union[
    ed25519.Ed25519PublicKey,
    ec.EllipticCurvePublicKey,
    rsa.RSAPublicKey,
    mldsa.MLDSA44PublicKey,
    mldsa.MLDSA65PublicKey,
    mldsa.MLDSA87PublicKey,
]

_CURVES: dict[str, KeySpec] = {"secp256r1": KeySpec.P256, "secp384r1": KeySpec.P384, "secp256k1": KeySpec.SECP256K1}
_CURVE_OBJECTS: dict[KeySpec, ec.EllipticCurve] = {
    KeySpec.P256: ec.SECP256R1(),
    KeySpec.P384: ec.SECP384R1(),
    KeySpec.SECP256K1: ec.SECP256K1(),
}
_MLDSA_CLASSES: dict[KeySpec, Any] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PublicKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PublicKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PublicKey,
}


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses it."""
    return b64url_bytes(data).decode("ascii")


def b64url_bytes(data: bytes) -> bytes:
    """`b64url_encode` as ASCII bytes, for a JWS signing input that is built as bytes and decoded once.

    `binascii` and two replaces: the same bytes as ``base64.urlsafe_b64encode`` without its
    two Python frames, and ``bytes.replace`` scans faster than ``translate`` maps (a token
    encodes its payload and its signature with this).
    """
    return binascii.b2a_base64(data, newline=False).replace(b"+", b"-").replace(b"/", b"_").rstrip(b"=")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: padding, whitespace or foreign characters are refused."""
    if not isinstance(text, str) or any(c in text for c in "=+/ \t\r\n"):
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise ValueError("not unpadded base64url") from e


def jwk_thumbprint(members: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 of the required JWK members as canonical JSON, base64url (every key_id is one)."""
    canonical = json.dumps(dict(members), sort_keys=True, separators=(",", ":"))
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def with_use_and_kid(jwk: dict[str, str], use: str | None, kid: str | None) -> dict[str, str]:
    """`jwk` with the optional ``use`` and ``kid`` members added (those given)."""
    if use is not None:
        jwk["use"] = use
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def spec_of(key: CryptoPublicKey) -> KeySpec:
    """The KeySpec of a `cryptography` public key, or AlgorithmNotSupported."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeySpec.ED25519
    if isinstance(key, ec.EllipticCurvePublicKey):
        spec = _CURVES.get(key.curve.name)
        if spec is None:
            raise AlgorithmNotSupported(f"EC curve {key.curve.name} is not supported")
        return spec
    if isinstance(key, rsa.RSAPublicKey):
        try:
            return KeySpec.parse(f"RSA-{key.key_size}")
        except AlgorithmNotSupported:
            raise AlgorithmNotSupported(f"RSA keys of {key.key_size} bits are not supported") from None
    for spec, cls in _MLDSA_CLASSES.items():
        if isinstance(key, cls):
            return spec
    raise AlgorithmNotSupported(f"public key type {type(key).__name__} is not supported")


_FROM_JWK: dict[tuple[Any, ...], PublicKey] = {}  # PublicKey.from_jwk, by the class and the JWK's members
_FROM_JWK_MAX = 4096


class PublicKey:
    """An immutable public key with a known KeySpec; equal when the keys are equal."""

    __slots__ = ("_der", "_jwk", "_key", "_key_id", "_spec")

    def __init__(self, key: CryptoPublicKey) -> None:
        self._key = key
        self._spec = spec_of(key)
        self._der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._key_id: str | None = None
        self._jwk: dict[str, str] | None = None  # the required JWK members, computed once (the key is immutable)

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_der(cls, der: bytes) -> PublicKey:
        """From a DER SubjectPublicKeyInfo; ConfigError when it is not one, of a supported key."""
        return cls._loaded(serialization.load_der_public_key, der, "not a DER SubjectPublicKeyInfo of a supported key")

    @classmethod
    def from_pem(cls, pem: bytes | str) -> PublicKey:
        """From a PEM public key; ConfigError when it is not one, of a supported type."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        return cls._loaded(serialization.load_pem_public_key, data, "not a PEM public key of a supported type")

    @classmethod
    def _loaded(cls, load: Callable[[bytes], Any], data: bytes, refusal: str) -> PublicKey:
        try:
            key = load(data)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise ConfigError(refusal) from e
        return cls(key)

    @classmethod
    def from_raw_mldsa(cls, spec: KeySpec, raw: bytes) -> PublicKey:
        """From the FIPS 204 public key encoding (what PKCS#11, GCP's NIST_PQC format and JWK `pub` carry)."""
        key_class = _MLDSA_CLASSES.get(spec)
        if key_class is None:
            raise AlgorithmNotSupported(f"{spec.value} is not an ML-DSA key spec")
        try:
            return cls(key_class.from_public_bytes(raw))
        except ValueError as e:
            raise ConfigError(f"not a {spec.value} public key") from e

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any] | str) -> PublicKey:
        """From a public JWK (OKP Ed25519, EC P-256/P-384/secp256k1, RSA, AKP ML-DSA).

        A JWK carrying private members (`d`, `p`, `priv`, ...) is refused: a public key
        slot must never silently accept a private key.
        """
        jwk = json_object(jwk, "JWK")
        try:  # the same members give the same key: a verifier or issuer sees one agent's cnf.jwk again and again
            cache_key: tuple[Any, ...] | None = (cls, *sorted(jwk.items()))
            known = _FROM_JWK.get(cache_key)  # type: ignore[arg-type]
        except TypeError:  # a member that is a list or object (key_ops, oth): not cached
            cache_key, known = None, None
        if known is not None:
            return known
        key = cls._from_jwk(jwk)
        if cache_key is not None:
            if len(_FROM_JWK) >= _FROM_JWK_MAX:
                _FROM_JWK.clear()  # a bound, not an LRU
            _FROM_JWK[cache_key] = key
        return key

    @classmethod
    def _from_jwk(cls, jwk: Mapping[str, Any]) -> PublicKey:
        if any(m in jwk for m in ("d", "p", "q", "dp", "dq", "qi", "priv")):
            raise ConfigError("JWK holds private key material; give the public key only")
        kty = jwk.get("kty")
        try:
            if kty == "OKP" and jwk.get("crv") == "Ed25519":
                return cls(ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])))
            if kty == "EC":
                spec = {"P-256": KeySpec.P256, "P-384": KeySpec.P384, "secp256k1": KeySpec.SECP256K1}.get(
                    str(jwk.get("crv"))
                )
                if spec is None:
                    raise AlgorithmNotSupported(f"JWK curve {jwk.get('crv')!r} is not supported")
                x = int.from_bytes(b64url_decode(jwk["x"]), "big")
                y = int.from_bytes(b64url_decode(jwk["y"]), "big")
                return cls(ec.EllipticCurvePublicNumbers(x, y, _CURVE_OBJECTS[spec]).public_key())
            if kty == "RSA":
                n = int.from_bytes(b64url_decode(jwk["n"]), "big")
                exponent = int.from_bytes(b64url_decode(jwk["e"]), "big")
                return cls(rsa.RSAPublicNumbers(exponent, n).public_key())
            if kty == "AKP":
                spec = KeySpec.parse(str(jwk.get("alg", "")))
                return cls.from_raw_mldsa(spec, b64url_decode(jwk["pub"]))
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"malformed {kty} JWK") from e
        raise AlgorithmNotSupported(f"JWK key type {kty!r} (crv {jwk.get('crv')!r}) is not supported")

    # -- properties --------------------------------------------------------------------

    @property
    def spec(self) -> KeySpec:
        return self._spec

    @property
    def family(self) -> KeyFamily:
        return self._spec.family

    @property
    def key(self) -> CryptoPublicKey:
        """The underlying `cryptography` object."""
        return self._key

    @property
    def key_id(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url): the same key gives the same id in every back end."""
        if self._key_id is None:
            self._key_id = self.thumbprint()
        return self._key_id

    # -- export ------------------------------------------------------------------------

    def to_der(self) -> bytes:
        return self._der

    def to_pem(self) -> str:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def to_raw(self) -> bytes:
        """Raw public key bytes for Ed25519 and ML-DSA; X9.62 uncompressed point for EC."""
        if isinstance(self._key, ec.EllipticCurvePublicKey):
            return self._key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        if isinstance(self._key, rsa.RSAPublicKey):
            raise AlgorithmNotSupported("RSA keys have no raw encoding; use DER")
        return self._key.public_bytes_raw()

    def _jwk_required(self) -> dict[str, str]:
        """The RFC 7638 required members, in the fields that define the key (a fresh dict: callers add to it)."""
        if self._jwk is None:
            self._jwk = self._compute_jwk()
        return dict(self._jwk)

    def _compute_jwk(self) -> dict[str, str]:
        key = self._key
        if isinstance(key, ed25519.Ed25519PublicKey):
            return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(key.public_bytes_raw())}
        if isinstance(key, ec.EllipticCurvePublicKey):
            numbers = key.public_numbers()
            size = (key.curve.key_size + 7) // 8
            return {
                "crv": str(self._spec.info.curve),
                "kty": "EC",
                "x": b64url_encode(numbers.x.to_bytes(size, "big")),
                "y": b64url_encode(numbers.y.to_bytes(size, "big")),
            }
        if isinstance(key, rsa.RSAPublicKey):
            rn = key.public_numbers()
            return {
                "e": b64url_encode(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big")),
                "kty": "RSA",
                "n": b64url_encode(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
            }
        # ML-DSA (draft-ietf-cose-dilithium): thumbprint members are alg, kty, pub.
        return {"alg": self._spec.value, "kty": "AKP", "pub": b64url_encode(key.public_bytes_raw())}

    def to_jwk(self, *, kid: bool = True, alg: SignatureAlgorithm | None = None, use: str | None = None) -> dict[str, str]:
        """A public JWK; `kid` is the thumbprint unless turned off."""
        jwk = self._jwk_required()
        if alg is not None:
            alg.check_spec(self._spec)
            jwk["alg"] = alg.jose_name
        return with_use_and_kid(jwk, use, self.key_id if kid else None)

    def thumbprint(self) -> str:
        return jwk_thumbprint(self._jwk_required())

    # -- verification ------------------------------------------------------------------

    def verify(
        self,
        signature: bytes,
        message: bytes,
        algorithm: SignatureAlgorithm | None = None,
        *,
        context: bytes | None = None,
    ) -> None:
        """Raise InvalidSignature unless `signature` over `message` is valid.

        `algorithm` defaults to the spec's default; one that does not fit the key raises
        AlgorithmNotSupported (never a silent False). ECDSA signatures are DER, the
        standard X.509 form. `context` is ML-DSA's context string (empty by default).
        """
        alg = algorithm or self._spec.default_algorithm
        alg.check_spec(self._spec)
        key = self._key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, message, ec.ECDSA(alg.hash_algorithm()))
            elif isinstance(key, rsa.RSAPublicKey):
                h = alg.hash_algorithm()
                pad: padding.AsymmetricPadding = (
                    padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if alg.is_pss else padding.PKCS1v15()
                )
                key.verify(signature, message, pad, h)
            else:
                key.verify(signature, message, context)
        except _CryptoInvalidSignature:
            raise InvalidSignature(f"{alg.value} signature does not verify with key {self.key_id}") from None
        except (ValueError, TypeError) as e:
            # Wrong-length or malformed encodings: also just an invalid signature.
            raise InvalidSignature(f"{alg.value} signature is malformed for key {self.key_id}") from e

    def verify_mu(self, signature: bytes, mu: bytes) -> None:
        """Verify an ML-DSA signature over an external mu (FIPS 204 Algorithm 7 input, 64 bytes)."""
        key = self._key
        if self._spec.family is not KeyFamily.MLDSA:
            raise AlgorithmNotSupported(f"external mu is ML-DSA only, not {self._spec.value}")
        try:
            key.verify_mu(signature, mu)  # type: ignore[union-attr]
        except _CryptoInvalidSignature:
            raise InvalidSignature(f"ML-DSA signature over mu does not verify with key {self.key_id}") from None
        except (ValueError, TypeError) as e:
            raise InvalidSignature(f"ML-DSA signature or mu is malformed for key {self.key_id}") from e

    def is_valid(self, signature: bytes, message: bytes, algorithm: SignatureAlgorithm | None = None) -> bool:
        try:
            self.verify(signature, message, algorithm)
        except InvalidSignature:
            return False
        return True

    # -- value semantics ---------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._der == self._der

    def __hash__(self) -> int:
        return hash(self._der)

    def __repr__(self) -> str:
        return f"PublicKey({self._spec.value}, key_id={self.key_id!r})"
