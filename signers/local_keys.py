"""Local private keys: generate one for a KeySpec and sign with it.

Used by the file back end (the key lives here, encrypted at rest), by emulators, and by
the CA for the throwaway key that only fixes a certificate's AlgorithmIdentifier.
"""

from __future__ import annotations

from typing import Any, Union

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa

from .algorithms import KeySpec, SignatureAlgorithm
from .errors import AlgorithmNotSupported

__all__ = ["PrivateKey", "generate_private_key", "sign_with_private_key"]

PrivateKey = Union[
    ed25519.Ed25519PrivateKey,
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    mldsa.MLDSA44PrivateKey,
    mldsa.MLDSA65PrivateKey,
    mldsa.MLDSA87PrivateKey,
]

_CURVES: dict[KeySpec, type[ec.EllipticCurve]] = {
    KeySpec.P256: ec.SECP256R1,
    KeySpec.P384: ec.SECP384R1,
    KeySpec.SECP256K1: ec.SECP256K1,
}
_MLDSA: dict[KeySpec, Any] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}


def generate_private_key(spec: KeySpec) -> PrivateKey:
    if spec is KeySpec.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if spec in _CURVES:
        return ec.generate_private_key(_CURVES[spec]())
    if spec in _MLDSA:
        key: PrivateKey = _MLDSA[spec].generate()
        return key
    bits = spec.info.rsa_bits
    if bits is None:  # pragma: no cover - every spec is covered above
        raise AlgorithmNotSupported(f"cannot generate a {spec.value} key")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def sign_with_private_key(key: PrivateKey, algorithm: SignatureAlgorithm, message: bytes) -> bytes:
    """Sign with a local key in the standard encoding (DER ECDSA, PSS salt = hash length)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(algorithm.hash_algorithm()))
    if isinstance(key, rsa.RSAPrivateKey):
        h = algorithm.hash_algorithm()
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if algorithm.is_pss else padding.PKCS1v15()
        )
        return key.sign(message, pad, h)
    return key.sign(message)
