"""Conversions between the signature encodings back ends and formats use.

PKCS#11 and Azure return ECDSA as raw r||s; X.509 and `cryptography` want DER
Ecdsa-Sig-Value; JOSE wants r||s again. Back ends that sign digests use `digest()`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .algorithms import KeySpec, SignatureAlgorithm
from .errors import InvalidSignature

__all__ = ["curve_size", "digest", "ecdsa_der_to_raw", "ecdsa_raw_to_der"]

_CURVE_BYTES = {KeySpec.P256: 32, KeySpec.P384: 48, KeySpec.SECP256K1: 32}


def curve_size(spec: KeySpec) -> int:
    """Bytes in one ECDSA scalar (r or s) for an EC spec."""
    return _CURVE_BYTES[spec]


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """r||s (two equal halves) to DER Ecdsa-Sig-Value."""
    if not raw or len(raw) % 2:
        raise InvalidSignature(f"raw ECDSA signature has odd length {len(raw)}")
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def ecdsa_der_to_raw(der: bytes, size: int) -> bytes:
    """DER Ecdsa-Sig-Value to fixed-width r||s, `size` bytes each."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError as e:
        raise InvalidSignature("not a DER ECDSA signature") from e
    if r.bit_length() > size * 8 or s.bit_length() > size * 8:
        raise InvalidSignature("ECDSA signature scalars are too large for the curve")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def digest(algorithm: SignatureAlgorithm, message: bytes) -> bytes:
    """The message digest a hash-then-sign algorithm signs (ECDSA, RSA)."""
    h = hashes.Hash(algorithm.hash_algorithm())
    h.update(message)
    return h.finalize()
