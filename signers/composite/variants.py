"""The composite ML-DSA algorithms of draft-ietf-lamps-pq-composite-sigs, as one table.

Each variant fixes everything the construction needs: the OID (1.3.6.1.5.5.7.6.x), the
signature label (also the ML-DSA context string), the pre-hash PH, the ML-DSA parameter
set, and the traditional half (key spec + the keyplane algorithm that signs M' with it).
The values are those of the April 2026 draft text and its test vectors (tests/vectors/composite).
Variants whose traditional half keyplane has no key spec for (brainpool curves, Ed448,
P-521) are listed in UNIMPLEMENTED so that tests and docs can name them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError

__all__ = ["PREFIX", "UNIMPLEMENTED", "CompositeAlgorithm", "VariantInfo"]

# "CompositeAlgorithmSignatures2025": the fixed prefix of every message representative M'.
PREFIX = b"CompositeAlgorithmSignatures2025"

# Variants the draft defines that keyplane does not implement, with why.
UNIMPLEMENTED: dict[str, str] = {
    "MLDSA65-ECDSA-brainpoolP256r1-SHA512": "keyplane has no brainpoolP256r1 key spec",
    "MLDSA87-ECDSA-brainpoolP384r1-SHA512": "keyplane has no brainpoolP384r1 key spec",
    "MLDSA87-Ed448-SHAKE256": "keyplane has no Ed448 key spec",
    "MLDSA87-ECDSA-P521-SHA512": "keyplane has no P-521 key spec",
}


@dataclass(frozen=True)
class VariantInfo:
    oid: str
    label: bytes
    prehash: type[hashes.HashAlgorithm]
    mldsa: KeySpec
    classical: KeySpec
    classical_algorithm: SignatureAlgorithm
    jose_name: str | None  # draft-ietf-jose-pq-composite-sigs `alg`, where that draft registers one


class CompositeAlgorithm(enum.StrEnum):
    """A composite signature algorithm; its value is the draft's name without ``id-``."""

    MLDSA44_RSA2048_PSS_SHA256 = "MLDSA44-RSA2048-PSS-SHA256"
    MLDSA44_RSA2048_PKCS15_SHA256 = "MLDSA44-RSA2048-PKCS15-SHA256"
    MLDSA44_ED25519_SHA512 = "MLDSA44-Ed25519-SHA512"
    MLDSA44_ECDSA_P256_SHA256 = "MLDSA44-ECDSA-P256-SHA256"
    MLDSA65_RSA3072_PSS_SHA512 = "MLDSA65-RSA3072-PSS-SHA512"
    MLDSA65_RSA3072_PKCS15_SHA512 = "MLDSA65-RSA3072-PKCS15-SHA512"
    MLDSA65_RSA4096_PSS_SHA512 = "MLDSA65-RSA4096-PSS-SHA512"
    MLDSA65_RSA4096_PKCS15_SHA512 = "MLDSA65-RSA4096-PKCS15-SHA512"
    MLDSA65_ECDSA_P256_SHA512 = "MLDSA65-ECDSA-P256-SHA512"
    MLDSA65_ECDSA_P384_SHA512 = "MLDSA65-ECDSA-P384-SHA512"
    MLDSA65_ED25519_SHA512 = "MLDSA65-Ed25519-SHA512"
    MLDSA87_ECDSA_P384_SHA512 = "MLDSA87-ECDSA-P384-SHA512"
    MLDSA87_RSA3072_PSS_SHA512 = "MLDSA87-RSA3072-PSS-SHA512"
    MLDSA87_RSA4096_PSS_SHA512 = "MLDSA87-RSA4096-PSS-SHA512"

    def __str__(self) -> str:
        return self.value

    @property
    def info(self) -> VariantInfo:
        return _VARIANTS[self]

    @property
    def oid(self) -> str:
        return _VARIANTS[self].oid

    @property
    def x509_oid(self) -> str:
        """Both the signature AlgorithmIdentifier and the SubjectPublicKeyInfo algorithm (params absent)."""
        return _VARIANTS[self].oid

    @property
    def label(self) -> bytes:
        return _VARIANTS[self].label

    @property
    def mldsa_spec(self) -> KeySpec:
        return _VARIANTS[self].mldsa

    @property
    def classical_spec(self) -> KeySpec:
        return _VARIANTS[self].classical

    @property
    def classical_algorithm(self) -> SignatureAlgorithm:
        return _VARIANTS[self].classical_algorithm

    @property
    def mldsa_algorithm(self) -> SignatureAlgorithm:
        return self.mldsa_spec.default_algorithm

    @property
    def family(self) -> KeyFamily:
        """JOSE key type family: composite keys are AKP JWKs, like ML-DSA ones."""
        return KeyFamily.MLDSA

    @property
    def jose_name(self) -> str:
        """The JOSE `alg`; AlgorithmNotSupported for variants the JOSE draft does not register."""
        name = _VARIANTS[self].jose_name
        if name is None:
            raise AlgorithmNotSupported(f"{self.value} has no JOSE algorithm name (draft-ietf-jose-pq-composite-sigs)")
        return name

    @property
    def has_jose_name(self) -> bool:
        return _VARIANTS[self].jose_name is not None

    @property
    def mldsa_signature_size(self) -> int:
        size = self.mldsa_spec.info.signature_size
        assert size is not None  # ML-DSA sizes are fixed (FIPS 204 Table 2)
        return size

    @property
    def mldsa_public_key_size(self) -> int:
        return _MLDSA_PUBLIC_KEY_SIZE[self.mldsa_spec]

    def prehash(self, message: bytes) -> bytes:
        """PH(M)."""
        digest = hashes.Hash(_VARIANTS[self].prehash())
        digest.update(message)
        return digest.finalize()

    def message_representative(self, message: bytes, context: bytes = b"") -> bytes:
        """M' = Prefix || Label || len(ctx) || ctx || PH(M). Raises ConfigError for a context over 255 bytes."""
        if len(context) > 255:
            raise ConfigError("a composite signature context is at most 255 bytes")
        return PREFIX + self.label + bytes([len(context)]) + context + self.prehash(message)

    @classmethod
    def parse(cls, name: str | CompositeAlgorithm) -> CompositeAlgorithm:
        """Accept the draft name (with or without ``id-``), the JOSE name or the dotted OID, case-insensitive."""
        if isinstance(name, CompositeAlgorithm):
            return name
        if not isinstance(name, str):
            raise AlgorithmNotSupported(f"a composite algorithm name must be a string, not {type(name).__name__}")
        wanted = name.strip().lower().removeprefix("id-")
        for variant in cls:
            info = _VARIANTS[variant]
            if wanted in (variant.value.lower(), info.oid, (info.jose_name or "").lower()):
                return variant
        for unimplemented, why in UNIMPLEMENTED.items():
            if wanted == unimplemented.lower():
                raise AlgorithmNotSupported(f"composite algorithm {unimplemented} is not implemented: {why}")
        raise AlgorithmNotSupported(f"unknown composite algorithm {name[:60]!r}; known: {', '.join(v.value for v in cls)}")

    @classmethod
    def matching(cls, mldsa: KeySpec, classical: KeySpec, classical_algorithm: SignatureAlgorithm) -> CompositeAlgorithm:
        """The one variant made of these halves; AlgorithmNotSupported if none is."""
        for variant, info in _VARIANTS.items():
            if (info.mldsa, info.classical, info.classical_algorithm) == (mldsa, classical, classical_algorithm):
                return variant
        raise AlgorithmNotSupported(
            f"no composite algorithm pairs {mldsa.value} with {classical.value} / {classical_algorithm.value}"
        )

    @classmethod
    def by_oid(cls, oid: str) -> CompositeAlgorithm | None:
        return _BY_OID.get(oid)

    @classmethod
    def by_jose_name(cls, name: object) -> CompositeAlgorithm | None:
        return _BY_JOSE.get(name) if isinstance(name, str) else None


_MLDSA_PUBLIC_KEY_SIZE = {KeySpec.ML_DSA_44: 1312, KeySpec.ML_DSA_65: 1952, KeySpec.ML_DSA_87: 2592}

C = CompositeAlgorithm
S = KeySpec
A = SignatureAlgorithm
_SHA256, _SHA512 = hashes.SHA256, hashes.SHA512


def _v(n: int, label: str, ph: type[hashes.HashAlgorithm], mldsa: KeySpec, spec: KeySpec, alg: SignatureAlgorithm,
       jose: str | None = None) -> VariantInfo:
    return VariantInfo(f"1.3.6.1.5.5.7.6.{n}", label.encode("ascii"), ph, mldsa, spec, alg, jose)


# Section 7 (Algorithm Identifiers and Parameters) of the draft; RSA-PSS: SHA-256 / salt 32 for
# 2048 and 3072 bits, SHA-384 / salt 48 for 4096 (keyplane's PS256 / PS384: salt = hash length).
_VARIANTS: dict[CompositeAlgorithm, VariantInfo] = {
    C.MLDSA44_RSA2048_PSS_SHA256: _v(37, "COMPSIG-MLDSA44-RSA2048-PSS-SHA256", _SHA256, S.ML_DSA_44, S.RSA2048, A.PS256),
    C.MLDSA44_RSA2048_PKCS15_SHA256: _v(38, "COMPSIG-MLDSA44-RSA2048-PKCS15-SHA256", _SHA256, S.ML_DSA_44, S.RSA2048, A.RS256),
    C.MLDSA44_ED25519_SHA512: _v(39, "COMPSIG-MLDSA44-Ed25519-SHA512", _SHA512, S.ML_DSA_44, S.ED25519, A.ED25519, "ML-DSA-44-Ed25519"),
    C.MLDSA44_ECDSA_P256_SHA256: _v(40, "COMPSIG-MLDSA44-ECDSA-P256-SHA256", _SHA256, S.ML_DSA_44, S.P256, A.ES256, "ML-DSA-44-ES256"),
    C.MLDSA65_RSA3072_PSS_SHA512: _v(41, "COMPSIG-MLDSA65-RSA3072-PSS-SHA512", _SHA512, S.ML_DSA_65, S.RSA3072, A.PS256),
    C.MLDSA65_RSA3072_PKCS15_SHA512: _v(42, "COMPSIG-MLDSA65-RSA3072-PKCS15-SHA512", _SHA512, S.ML_DSA_65, S.RSA3072, A.RS256),
    C.MLDSA65_RSA4096_PSS_SHA512: _v(43, "COMPSIG-MLDSA65-RSA4096-PSS-SHA512", _SHA512, S.ML_DSA_65, S.RSA4096, A.PS384),
    C.MLDSA65_RSA4096_PKCS15_SHA512: _v(44, "COMPSIG-MLDSA65-RSA4096-PKCS15-SHA512", _SHA512, S.ML_DSA_65, S.RSA4096, A.RS384),
    C.MLDSA65_ECDSA_P256_SHA512: _v(45, "COMPSIG-MLDSA65-ECDSA-P256-SHA512", _SHA512, S.ML_DSA_65, S.P256, A.ES256, "ML-DSA-65-ES256"),
    C.MLDSA65_ECDSA_P384_SHA512: _v(46, "COMPSIG-MLDSA65-ECDSA-P384-SHA512", _SHA512, S.ML_DSA_65, S.P384, A.ES384),
    C.MLDSA65_ED25519_SHA512: _v(48, "COMPSIG-MLDSA65-Ed25519-SHA512", _SHA512, S.ML_DSA_65, S.ED25519, A.ED25519, "ML-DSA-65-Ed25519"),
    C.MLDSA87_ECDSA_P384_SHA512: _v(49, "COMPSIG-MLDSA87-ECDSA-P384-SHA512", _SHA512, S.ML_DSA_87, S.P384, A.ES384, "ML-DSA-87-ES384"),
    C.MLDSA87_RSA3072_PSS_SHA512: _v(52, "COMPSIG-MLDSA87-RSA3072-PSS-SHA512", _SHA512, S.ML_DSA_87, S.RSA3072, A.PS256),
    C.MLDSA87_RSA4096_PSS_SHA512: _v(53, "COMPSIG-MLDSA87-RSA4096-PSS-SHA512", _SHA512, S.ML_DSA_87, S.RSA4096, A.PS384),
}

_BY_OID = {info.oid: variant for variant, info in _VARIANTS.items()}
_BY_JOSE = {info.jose_name: variant for variant, info in _VARIANTS.items() if info.jose_name}

del C, S, A
