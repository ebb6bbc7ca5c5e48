"""Key specs and signature algorithms, as tables.

Every back end maps its own names onto these two enums, so an unsupported combination
is one missing table row, visible in one place. Nothing here talks to a key store.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from cryptography.hazmat.primitives import hashes

from .errors import AlgorithmNotSupported

__all__ = ["AlgorithmInfo", "KeyFamily", "KeySpec", "SignatureAlgorithm", "SpecInfo"]


class KeyFamily(enum.Enum):
    """How a key signs; decides signature format and the JWK key type."""

    EDDSA = "OKP"
    EC = "EC"
    RSA = "RSA"
    MLDSA = "AKP"

    @property
    def jwk_kty(self) -> str:
        return self.value


class KeySpec(enum.StrEnum):
    """The kind of key a store holds; its value is the name used in URIs, config and CLI."""

    ED25519 = "Ed25519"
    P256 = "P-256"
    P384 = "P-384"
    SECP256K1 = "secp256k1"
    RSA2048 = "RSA-2048"
    RSA3072 = "RSA-3072"
    RSA4096 = "RSA-4096"
    ML_DSA_44 = "ML-DSA-44"
    ML_DSA_65 = "ML-DSA-65"
    ML_DSA_87 = "ML-DSA-87"

    @property
    def info(self) -> SpecInfo:
        return _SPECS[self]

    @property
    def family(self) -> KeyFamily:
        return _SPECS[self].family

    @property
    def default_algorithm(self) -> SignatureAlgorithm:
        return _SPECS[self].default_algorithm

    @property
    def algorithms(self) -> tuple[SignatureAlgorithm, ...]:
        """Every algorithm a key of this spec can produce, default first."""
        return tuple(a for a in SignatureAlgorithm if self in a.specs)

    @classmethod
    def parse(cls, name: str | KeySpec) -> KeySpec:
        """Accept the canonical name or a common alias (case-insensitive, `_` for `-`)."""
        if isinstance(name, KeySpec):
            return name
        return _named(cls, name, "key spec", lambda spec: {_normalise(spec.value), *_SPECS[spec].aliases})


class SignatureAlgorithm(enum.StrEnum):
    """What a signature is; its value is the JOSE name (RFC 9864 `Ed25519` for EdDSA)."""

    ED25519 = "Ed25519"
    ES256 = "ES256"
    ES384 = "ES384"
    ES256K = "ES256K"
    PS256 = "PS256"
    PS384 = "PS384"
    PS512 = "PS512"
    RS256 = "RS256"
    RS384 = "RS384"
    RS512 = "RS512"
    ML_DSA_44 = "ML-DSA-44"
    ML_DSA_65 = "ML-DSA-65"
    ML_DSA_87 = "ML-DSA-87"

    @property
    def info(self) -> AlgorithmInfo:
        return _ALGORITHMS[self]

    @property
    def family(self) -> KeyFamily:
        return _ALGORITHMS[self].family

    @property
    def jose_name(self) -> str:
        """The `alg` header value we write (EdDSA for Ed25519, which every JOSE library knows)."""
        return _ALGORITHMS[self].jose_name

    @property
    def x509_oid(self) -> str:
        return _ALGORITHMS[self].x509_oid

    @property
    def hash_name(self) -> str | None:
        """`sha256` / `sha384` / `sha512` for algorithms that hash first; None for EdDSA and ML-DSA."""
        return _ALGORITHMS[self].hash_name

    @property
    def specs(self) -> frozenset[KeySpec]:
        return _ALGORITHMS[self].specs

    @property
    def is_pss(self) -> bool:
        return self.value.startswith("PS")

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """A fresh `cryptography` hash object for algorithms that hash (ECDSA, RSA)."""
        name = self.hash_name
        if name is None:
            raise AlgorithmNotSupported(f"{self.value} signs the whole message; it has no pre-hash")
        return _HASHES[name]()

    def check_spec(self, spec: KeySpec) -> None:
        """Raise AlgorithmNotSupported unless a key of `spec` can make this algorithm."""
        if spec not in self.specs:
            raise AlgorithmNotSupported(f"algorithm {self.value} cannot be used with a {spec.value} key")

    @classmethod
    def parse(cls, name: str | SignatureAlgorithm) -> SignatureAlgorithm:
        """Accept our name, the JOSE name (EdDSA) or a common alias, case-insensitive."""
        if isinstance(name, SignatureAlgorithm):
            return name
        return _named(cls, name, "signature algorithm", lambda alg: {_normalise(alg.value), _normalise(alg.jose_name)})


@dataclass(frozen=True)
class SpecInfo:
    family: KeyFamily
    default_algorithm: SignatureAlgorithm
    curve: str | None = None  # JWK crv for EC / OKP keys
    rsa_bits: int | None = None
    aliases: frozenset[str] = frozenset()

    @property
    def signature_size(self) -> int | None:
        """Exact signature length in bytes, where the format fixes it (not for DER ECDSA)."""
        if self.family is KeyFamily.EDDSA:
            return 64
        if self.rsa_bits is not None:
            return self.rsa_bits // 8
        return _MLDSA_SIGNATURE_SIZE.get(self.default_algorithm)


@dataclass(frozen=True)
class AlgorithmInfo:
    family: KeyFamily
    jose_name: str
    x509_oid: str
    hash_name: str | None
    specs: frozenset[KeySpec]


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "")


_Member = TypeVar("_Member", KeySpec, SignatureAlgorithm)


def _named(members: Iterable[_Member], name: str, what: str, names: Callable[[_Member], set[str]]) -> _Member:
    """The member one of whose (normalised) `names` is `name`; AlgorithmNotSupported listing them all otherwise."""
    wanted = _normalise(name)
    for member in members:
        if wanted in names(member):
            return member
    known = ", ".join(m.value for m in members)
    raise AlgorithmNotSupported(f"unknown {what} {name!r}; known: {known}")


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

_RSA = frozenset({KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096})
S = KeySpec
A = SignatureAlgorithm

_SPECS: dict[KeySpec, SpecInfo] = {
    S.ED25519: SpecInfo(KeyFamily.EDDSA, A.ED25519, curve="Ed25519", aliases=frozenset({"ed25519", "eddsa"})),
    S.P256: SpecInfo(KeyFamily.EC, A.ES256, curve="P-256", aliases=frozenset({"p256", "secp256r1", "prime256v1", "ec-p256", "ecc-nist-p256"})),
    S.P384: SpecInfo(KeyFamily.EC, A.ES384, curve="P-384", aliases=frozenset({"p384", "secp384r1", "ec-p384", "ecc-nist-p384"})),
    S.SECP256K1: SpecInfo(KeyFamily.EC, A.ES256K, curve="secp256k1", aliases=frozenset({"k256", "p256k", "ecc-secg-p256k1"})),
    S.RSA2048: SpecInfo(KeyFamily.RSA, A.PS256, rsa_bits=2048, aliases=frozenset({"rsa2048", "rsa-2048"})),
    S.RSA3072: SpecInfo(KeyFamily.RSA, A.PS256, rsa_bits=3072, aliases=frozenset({"rsa3072"})),
    S.RSA4096: SpecInfo(KeyFamily.RSA, A.PS256, rsa_bits=4096, aliases=frozenset({"rsa4096"})),
    S.ML_DSA_44: SpecInfo(KeyFamily.MLDSA, A.ML_DSA_44, aliases=frozenset({"mldsa44", "mldsa-44"})),
    S.ML_DSA_65: SpecInfo(KeyFamily.MLDSA, A.ML_DSA_65, aliases=frozenset({"mldsa65", "mldsa-65"})),
    S.ML_DSA_87: SpecInfo(KeyFamily.MLDSA, A.ML_DSA_87, aliases=frozenset({"mldsa87", "mldsa-87"})),
}

_ALGORITHMS: dict[SignatureAlgorithm, AlgorithmInfo] = {
    A.ED25519: AlgorithmInfo(KeyFamily.EDDSA, "EdDSA", "1.3.101.112", None, frozenset({S.ED25519})),
    A.ES256: AlgorithmInfo(KeyFamily.EC, "ES256", "1.2.840.10045.4.3.2", "sha256", frozenset({S.P256})),
    A.ES384: AlgorithmInfo(KeyFamily.EC, "ES384", "1.2.840.10045.4.3.3", "sha384", frozenset({S.P384})),
    A.ES256K: AlgorithmInfo(KeyFamily.EC, "ES256K", "1.2.840.10045.4.3.2", "sha256", frozenset({S.SECP256K1})),
    A.PS256: AlgorithmInfo(KeyFamily.RSA, "PS256", "1.2.840.113549.1.1.10", "sha256", _RSA),
    A.PS384: AlgorithmInfo(KeyFamily.RSA, "PS384", "1.2.840.113549.1.1.10", "sha384", _RSA),
    A.PS512: AlgorithmInfo(KeyFamily.RSA, "PS512", "1.2.840.113549.1.1.10", "sha512", _RSA),
    A.RS256: AlgorithmInfo(KeyFamily.RSA, "RS256", "1.2.840.113549.1.1.11", "sha256", _RSA),
    A.RS384: AlgorithmInfo(KeyFamily.RSA, "RS384", "1.2.840.113549.1.1.12", "sha384", _RSA),
    A.RS512: AlgorithmInfo(KeyFamily.RSA, "RS512", "1.2.840.113549.1.1.13", "sha512", _RSA),
    A.ML_DSA_44: AlgorithmInfo(KeyFamily.MLDSA, "ML-DSA-44", "2.16.840.1.101.3.4.3.17", None, frozenset({S.ML_DSA_44})),
    A.ML_DSA_65: AlgorithmInfo(KeyFamily.MLDSA, "ML-DSA-65", "2.16.840.1.101.3.4.3.18", None, frozenset({S.ML_DSA_65})),
    A.ML_DSA_87: AlgorithmInfo(KeyFamily.MLDSA, "ML-DSA-87", "2.16.840.1.101.3.4.3.19", None, frozenset({S.ML_DSA_87})),
}

# FIPS 204 Table 2: signature sizes.
_MLDSA_SIGNATURE_SIZE = {A.ML_DSA_44: 2420, A.ML_DSA_65: 3309, A.ML_DSA_87: 4627}

del S, A
