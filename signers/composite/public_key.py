"""CompositePublicKey: the two component public keys of one composite key, and its verifier.

Verification follows the draft's Verify(): split the signature at the fixed ML-DSA length,
rebuild M' (prefix, label, context, PH(M)), and require BOTH halves to verify, the ML-DSA
half with the label as its FIPS 204 context. Each half is checked by `PublicKey.verify`
(`cryptography` underneath), so the project keeps its one verifier. The object has the
shape JOSE and X.509 code expects of a public key: `key_id`, `to_jwk`, `to_der`, `verify`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signers.algorithms import KeyFamily, KeySpec
from signers.errors import AlgorithmNotSupported, ConfigError, InvalidSignature
from signers.json_text import json_object
from signers.keys import PublicKey, b64url_decode, b64url_encode, jwk_thumbprint, with_use_and_kid

from .der import parse_spki, spki
from .variants import CompositeAlgorithm

__all__ = ["CompositePublicKey"]

_CURVES: dict[KeySpec, ec.EllipticCurve] = {KeySpec.P256: ec.SECP256R1(), KeySpec.P384: ec.SECP384R1()}
_PRIVATE_MEMBERS = ("priv", "d", "p", "q", "dp", "dq", "qi")


def _classical_bytes(key: PublicKey) -> bytes:
    """The draft's encoding of the traditional public key: raw Ed25519, X9.62 uncompressed EC, PKCS#1 RSA."""
    if key.family is KeyFamily.RSA:
        return key.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.to_raw()


def _classical_from_bytes(spec: KeySpec, raw: bytes) -> PublicKey:
    try:
        if spec is KeySpec.ED25519:
            if len(raw) != 32:
                raise ValueError("an Ed25519 public key is 32 bytes")
            return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        if spec in _CURVES:
            curve = _CURVES[spec]
            if len(raw) != 1 + 2 * ((curve.key_size + 7) // 8) or raw[0] != 0x04:
                raise ValueError("an EC public key must be an uncompressed X9.62 point of its curve")
            return PublicKey(ec.EllipticCurvePublicKey.from_encoded_point(curve, raw))
        if spec.family is KeyFamily.RSA:
            key = serialization.load_der_public_key(raw)
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("not an RSAPublicKey")
            found = PublicKey(key)
            if found.spec is not spec:
                raise ValueError(f"the RSA key is {found.spec.value}, not {spec.value}")
            return found
    except (ValueError, TypeError, AlgorithmNotSupported) as e:
        raise ConfigError(f"not a valid {spec.value} component public key: {e}") from e
    raise AlgorithmNotSupported(f"no composite encoding for {spec.value} keys")  # pragma: no cover - table covers all


class CompositePublicKey:
    """An immutable composite public key: `variant`, `mldsa` half, `classical` half, `key_id` (read-only)."""

    __slots__ = ("_raw", "classical", "key_id", "mldsa", "variant")
    family = KeyFamily.MLDSA  # a composite key is an AKP JWK, like an ML-DSA one

    def __init__(self, variant: CompositeAlgorithm | str, mldsa: PublicKey, classical: PublicKey) -> None:
        """Raises AlgorithmNotSupported when a half is not the spec the variant names."""
        variant = CompositeAlgorithm.parse(variant)
        if mldsa.spec is not variant.mldsa_spec:
            raise AlgorithmNotSupported(f"{variant.value} needs a {variant.mldsa_spec.value} key, not {mldsa.spec.value}")
        if classical.spec is not variant.classical_spec:
            raise AlgorithmNotSupported(
                f"{variant.value} needs a {variant.classical_spec.value} key, not {classical.spec.value}"
            )
        self.variant: CompositeAlgorithm = variant
        self.mldsa: PublicKey = mldsa
        self.classical: PublicKey = classical
        self._raw = mldsa.to_raw() + _classical_bytes(classical)
        self.key_id: str = self.thumbprint()  # RFC 7638 over the AKP members (alg, kty, pub), as for ML-DSA JWKs

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_bytes(cls, variant: CompositeAlgorithm | str, raw: bytes) -> CompositePublicKey:
        """From SerializePublicKey's output (mldsaPK || tradPK); ConfigError if either half is malformed."""
        variant = CompositeAlgorithm.parse(variant)
        size = variant.mldsa_public_key_size
        if not isinstance(raw, bytes | bytearray) or len(raw) <= size:
            raise ConfigError(f"a {variant.value} public key is longer than its {size}-byte ML-DSA half")
        mldsa = PublicKey.from_raw_mldsa(variant.mldsa_spec, bytes(raw[:size]))
        return cls(variant, mldsa, _classical_from_bytes(variant.classical_spec, bytes(raw[size:])))

    @classmethod
    def from_der(cls, der: bytes) -> CompositePublicKey:
        """From a SubjectPublicKeyInfo with a composite OID (parameters absent)."""
        oid, raw = parse_spki(der)
        variant = CompositeAlgorithm.by_oid(oid)
        if variant is None:
            raise AlgorithmNotSupported(f"SubjectPublicKeyInfo algorithm {oid} is not a composite keyplane implements")
        return cls.from_bytes(variant, raw)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any] | str) -> CompositePublicKey:
        """From an AKP JWK whose ``alg`` is a JOSE composite name; private members are refused."""
        jwk = json_object(jwk, "JWK")
        if any(m in jwk for m in _PRIVATE_MEMBERS):
            raise ConfigError("JWK holds private key material; give the public key only")
        variant = CompositeAlgorithm.by_jose_name(jwk.get("alg"))
        if jwk.get("kty") != "AKP" or variant is None:
            raise AlgorithmNotSupported(f"not a composite AKP JWK (kty {jwk.get('kty')!r}, alg {jwk.get('alg')!r})")
        try:
            raw = b64url_decode(jwk["pub"])
        except (KeyError, ValueError) as e:
            raise ConfigError("composite JWK 'pub' is missing or not base64url") from e
        return cls.from_bytes(variant, raw)

    @property
    def spec(self) -> CompositeAlgorithm:
        """The variant: a composite key is a key of exactly one composite algorithm."""
        return self.variant

    @property
    def key(self) -> Any:
        """No single `cryptography` key exists for a composite: AlgorithmNotSupported, naming what to use instead."""
        raise AlgorithmNotSupported(
            f"a {self.variant.value} key has no single cryptography key object: use .mldsa / .classical, "
            "CompositePublicKey.verify, or signers.composite.CompositeCertificateAuthority for certificates"
        )

    # -- export ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """SerializePublicKey: mldsaPK || tradPK."""
        return self._raw

    def to_raw(self) -> bytes:
        return self._raw

    def to_der(self) -> bytes:
        """SubjectPublicKeyInfo: the composite OID (parameters absent) and the raw key as the BIT STRING."""
        return spki(self.variant.oid, self._raw)

    def to_pem(self) -> str:
        body = base64.encodebytes(self.to_der()).decode("ascii").replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def _jwk_required(self) -> dict[str, str]:
        return {"alg": self.variant.jose_name, "kty": "AKP", "pub": b64url_encode(self._raw)}

    def to_jwk(self, *, kid: bool = True, alg: object = None, use: str | None = None) -> dict[str, str]:
        """The AKP JWK of draft-ietf-jose-pq-composite-sigs; AlgorithmNotSupported for variants without a JOSE name."""
        if alg is not None and alg != self.variant:
            raise AlgorithmNotSupported(f"a {self.variant.value} key only makes {self.variant.value} signatures")
        return with_use_and_kid(self._jwk_required(), use, self.key_id if kid else None)

    def thumbprint(self) -> str:
        if self.variant.has_jose_name:
            return jwk_thumbprint(self._jwk_required())
        # No JOSE name, so no JWK: the thumbprint is over the SPKI instead (still stable across back ends).
        return b64url_encode(hashlib.sha256(self.to_der()).digest())

    # -- verification ------------------------------------------------------------------

    def split_signature(self, signature: bytes) -> tuple[bytes, bytes]:
        """DeserializeSignatureValue: (mldsaSig, tradSig); InvalidSignature when too short to hold both."""
        size = self.variant.mldsa_signature_size
        if not isinstance(signature, bytes | bytearray) or len(signature) <= size:
            raise InvalidSignature(f"{self.variant.value} signature is truncated (key {self.key_id})")
        return bytes(signature[:size]), bytes(signature[size:])

    def verify(self, signature: bytes, message: bytes, algorithm: object = None, *, context: bytes | None = None) -> None:
        """Raise InvalidSignature unless BOTH halves verify over M' (the draft's Verify()).

        `algorithm`, when given, must be this key's variant (AlgorithmNotSupported otherwise:
        never a silent pass); `context` is the composite application context (empty default,
        at most 255 bytes).
        """
        if algorithm is not None and algorithm != self.variant:
            raise AlgorithmNotSupported(f"a {self.variant.value} key cannot check {algorithm} signatures")
        context = context or b""
        try:
            representative = self.variant.message_representative(bytes(message), bytes(context))
        except ConfigError as e:
            raise InvalidSignature(f"{self.variant.value}: {e}") from e
        mldsa_signature, classical_signature = self.split_signature(signature)
        try:
            self.mldsa.verify(mldsa_signature, representative, context=self.variant.label)
            self.classical.verify(classical_signature, representative, self.variant.classical_algorithm)
        except InvalidSignature:
            raise InvalidSignature(f"{self.variant.value} signature does not verify with key {self.key_id}") from None

    def is_valid(self, signature: bytes, message: bytes, algorithm: object = None, *, context: bytes | None = None) -> bool:
        try:
            self.verify(signature, message, algorithm, context=context)
        except InvalidSignature:
            return False
        return True

    # -- value semantics ---------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompositePublicKey) and other.variant is self.variant and other._raw == self._raw

    def __hash__(self) -> int:
        return hash((self.variant, self._raw))

    def __repr__(self) -> str:
        return f"CompositePublicKey({self.variant.value}, key_id={self.key_id!r})"
