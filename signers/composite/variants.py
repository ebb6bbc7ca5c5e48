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


_SHA256, _SHA512 = hashes.SHA256, hashes.SHA512
S = KeySpec
A = SignatureAlgorithm


class CompositeAlgorithm(enum.StrEnum):
    """A composite signature algorithm; its value is the draft's name without ``id-``.

    Each member is one row of the draft's Section 7 table: (name, OID arc, PH, ML-DSA spec,
    traditional spec, the keyplane algorithm of the traditional half, JOSE `alg`). Its
    signature label (also the ML-DSA context) is ``COMPSIG-`` + the name. A variant is
    also its own key spec and only algorithm (`default_algorithm`, `algorithms`), which is
    how the conformance harness and `KeyStore.create_key` take it.
    """

    row: VariantInfo  # the whole table row
    oid: str
    x509_oid: str  # both the signature AlgorithmIdentifier and the SPKI algorithm (params absent)
    label: bytes
    mldsa_spec: KeySpec
    classical_spec: KeySpec
    classical_algorithm: SignatureAlgorithm
    mldsa_algorithm: SignatureAlgorithm
    family: KeyFamily  # JOSE key type family: composite keys are AKP JWKs, like ML-DSA ones
    default_algorithm: CompositeAlgorithm
    algorithms: tuple[CompositeAlgorithm, ...]

    def __new__(cls, value: str, arc: int, ph: type[hashes.HashAlgorithm], mldsa: KeySpec, classical: KeySpec,
                algorithm: SignatureAlgorithm, jose: str | None = None) -> CompositeAlgorithm:
        member = str.__new__(cls, value)
        member._value_ = value
        info = VariantInfo(f"1.3.6.1.5.5.7.6.{arc}", f"COMPSIG-{value}".encode("ascii"), ph, mldsa, classical,
                           algorithm, jose)
        member.row, member.oid, member.x509_oid, member.label = info, info.oid, info.oid, info.label
        member.mldsa_spec, member.classical_spec, member.classical_algorithm = mldsa, classical, algorithm
        member.mldsa_algorithm, member.family = mldsa.default_algorithm, KeyFamily.MLDSA
        member.default_algorithm, member.algorithms = member, (member,)
        return member

    # Section 7 (Algorithm Identifiers and Parameters) of the draft; RSA-PSS: SHA-256 / salt 32 for
    # 2048 and 3072 bits, SHA-384 / salt 48 for 4096 (keyplane's PS256 / PS384: salt = hash length).
    MLDSA44_RSA2048_PSS_SHA256 = "MLDSA44-RSA2048-PSS-SHA256", 37, _SHA256, S.ML_DSA_44, S.RSA2048, A.PS256
    MLDSA44_RSA2048_PKCS15_SHA256 = "MLDSA44-RSA2048-PKCS15-SHA256", 38, _SHA256, S.ML_DSA_44, S.RSA2048, A.RS256
    MLDSA44_ED25519_SHA512 = "MLDSA44-Ed25519-SHA512", 39, _SHA512, S.ML_DSA_44, S.ED25519, A.ED25519, "ML-DSA-44-Ed25519"
    MLDSA44_ECDSA_P256_SHA256 = "MLDSA44-ECDSA-P256-SHA256", 40, _SHA256, S.ML_DSA_44, S.P256, A.ES256, "ML-DSA-44-ES256"
    MLDSA65_RSA3072_PSS_SHA512 = "MLDSA65-RSA3072-PSS-SHA512", 41, _SHA512, S.ML_DSA_65, S.RSA3072, A.PS256
    MLDSA65_RSA3072_PKCS15_SHA512 = "MLDSA65-RSA3072-PKCS15-SHA512", 42, _SHA512, S.ML_DSA_65, S.RSA3072, A.RS256
    MLDSA65_RSA4096_PSS_SHA512 = "MLDSA65-RSA4096-PSS-SHA512", 43, _SHA512, S.ML_DSA_65, S.RSA4096, A.PS384
    MLDSA65_RSA4096_PKCS15_SHA512 = "MLDSA65-RSA4096-PKCS15-SHA512", 44, _SHA512, S.ML_DSA_65, S.RSA4096, A.RS384
    MLDSA65_ECDSA_P256_SHA512 = "MLDSA65-ECDSA-P256-SHA512", 45, _SHA512, S.ML_DSA_65, S.P256, A.ES256, "ML-DSA-65-ES256"
    MLDSA65_ECDSA_P384_SHA512 = "MLDSA65-ECDSA-P384-SHA512", 46, _SHA512, S.ML_DSA_65, S.P384, A.ES384
    MLDSA65_ED25519_SHA512 = "MLDSA65-Ed25519-SHA512", 48, _SHA512, S.ML_DSA_65, S.ED25519, A.ED25519, "ML-DSA-65-Ed25519"
    MLDSA87_ECDSA_P384_SHA512 = "MLDSA87-ECDSA-P384-SHA512", 49, _SHA512, S.ML_DSA_87, S.P384, A.ES384, "ML-DSA-87-ES384"
    MLDSA87_RSA3072_PSS_SHA512 = "MLDSA87-RSA3072-PSS-SHA512", 52, _SHA512, S.ML_DSA_87, S.RSA3072, A.PS256
    MLDSA87_RSA4096_PSS_SHA512 = "MLDSA87-RSA4096-PSS-SHA512", 53, _SHA512, S.ML_DSA_87, S.RSA4096, A.PS384

    def __str__(self) -> str:
        return self.value

    @property
    def jose_name(self) -> str:
        """The JOSE `alg`; AlgorithmNotSupported for variants the JOSE draft does not register."""
        name = self.row.jose_name
        if name is None:
            raise AlgorithmNotSupported(f"{self.value} has no JOSE algorithm name (draft-ietf-jose-pq-composite-sigs)")
        return name

    @property
    def has_jose_name(self) -> bool:
        return self.row.jose_name is not None

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
        digest = hashes.Hash(self.row.prehash())
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
            if wanted in (variant.value.lower(), variant.oid, (variant.row.jose_name or "").lower()):
                return variant
        for unimplemented, why in UNIMPLEMENTED.items():
            if wanted == unimplemented.lower():
                raise AlgorithmNotSupported(f"composite algorithm {unimplemented} is not implemented: {why}")
        raise AlgorithmNotSupported(f"unknown composite algorithm {name[:60]!r}; known: {', '.join(v.value for v in cls)}")

    @classmethod
    def matching(cls, mldsa: KeySpec, classical: KeySpec, classical_algorithm: SignatureAlgorithm) -> CompositeAlgorithm:
        """The one variant made of these halves; AlgorithmNotSupported if none is."""
        for variant in cls:
            if (variant.mldsa_spec, variant.classical_spec, variant.classical_algorithm) == (mldsa, classical,
                                                                                            classical_algorithm):
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
_BY_OID = {variant.oid: variant for variant in CompositeAlgorithm}
_BY_JOSE = {variant.row.jose_name: variant for variant in CompositeAlgorithm if variant.row.jose_name}

del S, A
