"""In-memory component signers and the draft's private-key formats.

`LocalSigner` is a Signer over a `cryptography` private key held in this process (tests,
the draft's vectors, short-lived keys); it also signs an external mu for ML-DSA keys.
`import_private_key` reads the draft's SerializePrivateKey output (mldsaSeed || tradSK)
or its PKCS#8 wrapper, and `generate` makes a fresh composite key (both halves new, as
the draft requires: component keys are never reused).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError
from signers.keys import PublicKey
from signers.local_keys import PrivateKey, generate_private_key, sign_with_private_key
from signers.signer import MU_SIZE, BaseSigner
from signers.x509.der import encode_sequence, encode_tlv, split_sequence

from .der import INTEGER, OCTET_STRING, algorithm_identifier, element_content, parse_algorithm_identifier
from .variants import CompositeAlgorithm

__all__ = ["LocalSigner", "export_private_key", "generate", "import_pkcs8", "import_private_key", "to_pkcs8"]

_MLDSA_SEED = 32
_MLDSA_CLASSES: dict[KeySpec, Any] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}


class LocalSigner(BaseSigner):
    """A Signer over an in-memory `cryptography` private key; `sign_mu` for ML-DSA keys."""

    key_in_memory = True  # `signers.signer.key_in_memory`: `sign` is CPU work only

    def __init__(self, private_key: PrivateKey, algorithm: SignatureAlgorithm | None = None,
                 uri: str = "memory:") -> None:
        public_key = PublicKey(private_key.public_key())
        super().__init__(uri, algorithm or public_key.spec.default_algorithm, public_key)
        self._key = private_key

    def sign(self, message: bytes) -> bytes:
        return sign_with_private_key(self._key, self.algorithm, bytes(message))

    def sign_mu(self, mu: bytes) -> bytes:
        """ML-DSA over an external mu; ConfigError unless 64 bytes, AlgorithmNotSupported for other keys."""
        if self.public_key.family is not KeyFamily.MLDSA:
            raise AlgorithmNotSupported(f"external mu is ML-DSA only, not {self.public_key.spec.value}")
        if len(mu) != MU_SIZE:
            raise ConfigError(f"an ML-DSA mu is {MU_SIZE} bytes, not {len(mu)}")
        return self._key.sign_mu(bytes(mu))  # type: ignore[union-attr]


def _classical_private_key(spec: KeySpec, raw: bytes) -> PrivateKey:
    """tradSK in the draft's encoding: raw Ed25519 seed, RFC 5915 ECPrivateKey, PKCS#1 RSAPrivateKey."""
    try:
        if spec is KeySpec.ED25519:
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ConfigError(f"the traditional half is not a {spec.value} private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"the traditional half is not a {spec.value} private key")
    found = PublicKey(key.public_key()).spec
    if found is not spec:
        raise ConfigError(f"the traditional half is a {found.value} key, not {spec.value}")
    return key


def import_private_key(variant: CompositeAlgorithm | str, raw: bytes) -> tuple[LocalSigner, LocalSigner]:
    """(ML-DSA half, traditional half) from DeserializePrivateKey input (mldsaSeed || tradSK)."""
    variant = CompositeAlgorithm.parse(variant)
    if len(raw) <= _MLDSA_SEED:
        raise ConfigError(f"a {variant.value} private key is longer than its 32-byte ML-DSA seed")
    try:
        mldsa_key = _MLDSA_CLASSES[variant.mldsa_spec].from_seed_bytes(bytes(raw[:_MLDSA_SEED]))
    except ValueError as e:  # pragma: no cover - any 32 bytes are a seed
        raise ConfigError("the ML-DSA seed is malformed") from e
    classical = _classical_private_key(variant.classical_spec, bytes(raw[_MLDSA_SEED:]))
    return LocalSigner(mldsa_key), LocalSigner(classical, variant.classical_algorithm)


def import_pkcs8(der: bytes) -> tuple[CompositeAlgorithm, LocalSigner, LocalSigner]:
    """From a OneAsymmetricKey whose algorithm is a composite OID (parameters absent)."""
    try:
        parts = split_sequence(der)
        if len(parts) < 3:
            raise ConfigError("PKCS#8: too few elements")
        version = element_content(parts[0], INTEGER, "version")
        if version not in (b"\x00", b"\x01"):
            raise ConfigError("PKCS#8: unknown version")
        oid = parse_algorithm_identifier(parts[1])
        private = element_content(parts[2], OCTET_STRING, "privateKey")
    except ConfigError as e:
        raise ConfigError(f"not a composite PKCS#8 private key: {e}") from e
    variant = CompositeAlgorithm.by_oid(oid)
    if variant is None:
        raise AlgorithmNotSupported(f"PKCS#8 algorithm {oid} is not a composite keyplane implements")
    return (variant, *import_private_key(variant, private))


def _mldsa_seed(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def export_private_key(variant: CompositeAlgorithm | str, mldsa_key: PrivateKey, classical_key: PrivateKey) -> bytes:
    """SerializePrivateKey: mldsaSeed || tradSK (for tests and for moving a composite key between stores)."""
    variant = CompositeAlgorithm.parse(variant)
    if isinstance(classical_key, ed25519.Ed25519PrivateKey):
        trad = classical_key.private_bytes_raw()
    elif isinstance(classical_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        trad = classical_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption())
    else:
        raise AlgorithmNotSupported(f"{variant.value}: unexpected traditional key {type(classical_key).__name__}")
    return _mldsa_seed(mldsa_key) + trad


def to_pkcs8(variant: CompositeAlgorithm | str, raw: bytes) -> bytes:
    """OneAsymmetricKey v0 around a serialized composite private key."""
    variant = CompositeAlgorithm.parse(variant)
    return encode_sequence(encode_tlv(INTEGER, b"\x00"), algorithm_identifier(variant.oid), encode_tlv(OCTET_STRING, raw))


def generate(variant: CompositeAlgorithm | str) -> tuple[LocalSigner, LocalSigner]:
    """A fresh in-memory composite key: (ML-DSA half, traditional half)."""
    variant = CompositeAlgorithm.parse(variant)
    return (LocalSigner(generate_private_key(variant.mldsa_spec)),
            LocalSigner(generate_private_key(variant.classical_spec), variant.classical_algorithm))
