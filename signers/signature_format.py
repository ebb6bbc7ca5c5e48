"""The one place signature encodings are converted, and digests sized and checked.

PKCS#11 and Azure return ECDSA as raw r||s; X.509 and `cryptography` want DER
Ecdsa-Sig-Value; JOSE wants r||s again. Back ends that sign digests use `digest()`, and
`checked_digest()` checks a caller's precomputed digest (DigestSigner) before it is sent.
`curve_size` is the one table of EC scalar sizes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .algorithms import KeySpec, SignatureAlgorithm
from .errors import AlgorithmNotSupported, ConfigError, InvalidSignature

__all__ = ["DIGEST_SIZES", "checked_digest", "curve_size", "digest", "ecdsa_der_to_raw", "ecdsa_raw_to_der"]

# Bytes in one ECDSA scalar (r or s), which is also one coordinate of a public point.
_CURVE_BYTES = {KeySpec.P256: 32, KeySpec.P384: 48, KeySpec.SECP256K1: 32}
# Digest length of each hash an algorithm may name (SignatureAlgorithm.hash_name).
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def curve_size(spec: KeySpec) -> int:
    """Bytes in one ECDSA scalar (r or s) for an EC spec; AlgorithmNotSupported for any other spec."""
    try:
        return _CURVE_BYTES[spec]
    except KeyError:
        raise AlgorithmNotSupported(f"{spec.value} is not an ECDSA curve") from None


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """r||s (two equal halves) to DER Ecdsa-Sig-Value; InvalidSignature for an empty or odd-length input.

    Works on the bytes directly (no int round trip; it is on PKCS#11's and Azure's hot
    path): each half becomes a minimal DER INTEGER, leading zero bytes dropped and one put
    back when the high bit is set. tests/pkcs11/test_ecdsa_der.py checks it byte for byte
    against `cryptography`'s encode_dss_signature.
    """
    size = len(raw)
    if not size or size & 1:
        raise InvalidSignature(f"raw ECDSA signature has odd length {size}")
    half = size >> 1
    r = raw[:half].lstrip(b"\x00")
    s = raw[half:].lstrip(b"\x00")
    if not r or r[0] > 0x7F:
        r = b"\x00" + r
    if not s or s[0] > 0x7F:
        s = b"\x00" + s
    r_len, s_len = len(r), len(s)
    if r_len + s_len < 0x7C:  # every curve up to P-384: short-form lengths throughout
        return b"\x30%c\x02%c%b\x02%c%b" % (r_len + s_len + 4, r_len, r, s_len, s)
    body = b"\x02" + _der_length(r_len) + r + b"\x02" + _der_length(s_len) + s
    return b"\x30" + _der_length(len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def ecdsa_der_to_raw(der: bytes, size: int) -> bytes:
    """DER Ecdsa-Sig-Value to fixed-width r||s, `size` bytes each; InvalidSignature if it is not one."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError as e:
        raise InvalidSignature("not a DER ECDSA signature") from e
    if r.bit_length() > size * 8 or s.bit_length() > size * 8:
        raise InvalidSignature("ECDSA signature scalars are too large for the curve")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def digest(algorithm: SignatureAlgorithm, message: bytes) -> bytes:
    """The message digest a hash-then-sign algorithm signs (ECDSA, RSA); AlgorithmNotSupported otherwise."""
    h = hashes.Hash(algorithm.hash_algorithm())
    h.update(message)
    return h.finalize()


def checked_digest(algorithm: SignatureAlgorithm, value: bytes) -> bytes:
    """A caller's precomputed digest, as bytes, once its length fits `algorithm`'s hash.

    Raises AlgorithmNotSupported for algorithms with no digest form (Ed25519, pure ML-DSA)
    and ConfigError for a digest of the wrong length (or not bytes). Never hashes it.
    """
    hash_name = algorithm.hash_name
    if hash_name is None:
        raise AlgorithmNotSupported(f"{algorithm.value} signs the whole message; it cannot sign a precomputed digest")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ConfigError("a digest is bytes")
    value = bytes(value)
    wanted = DIGEST_SIZES[hash_name]
    if len(value) != wanted:
        raise ConfigError(f"{algorithm.value} signs a {wanted}-byte digest ({hash_name}-sized); got {len(value)} bytes")
    return value
