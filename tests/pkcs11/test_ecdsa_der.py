"""The one r||s -> DER encoder (signers.signature_format) equals cryptography's encode_dss_signature.

PKCS#11 and Azure convert every ECDSA signature with it, working on the bytes without an
int round trip; this proves the bytes are the same, on random
halves and on the edge cases a DER INTEGER has (leading zero bytes to drop, a high bit that
needs a 0x00 put back, zero itself, lengths that need the long form).
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from signers.errors import InvalidSignature
from signers.signature_format import ecdsa_der_to_raw, ecdsa_raw_to_der


def _reference(raw: bytes) -> bytes:
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def _halves(rng: random.Random, size: int) -> list[bytes]:
    """Random scalars of `size` bytes, plus shaped ones: high bit set, leading zeros, zero, all 0xff."""
    out = [rng.randbytes(size) for _ in range(40)]
    for _ in range(20):
        value = bytearray(rng.randbytes(size))
        value[0] |= 0x80  # high bit: DER needs a leading 0x00
        out.append(bytes(value))
        value = bytearray(rng.randbytes(size))
        value[0] &= 0x7F  # high bit clear: no padding
        out.append(bytes(value))
        zeros = rng.randrange(1, size + 1)  # leading zero bytes: dropped, maybe exposing a high bit
        out.append(bytes(zeros) + rng.randbytes(size - zeros))
        out.append(bytes(zeros - 1) + bytes([0x80 | rng.randrange(128)]) + rng.randbytes(size - zeros))
        out.append(bytes(zeros - 1) + bytes([rng.randrange(1, 128)]) + rng.randbytes(size - zeros))
    out += [bytes(size), b"\xff" * size, bytes(size - 1) + b"\x01", bytes(size - 1) + b"\x80", b"\x80" + bytes(size - 1)]
    return out


@pytest.mark.parametrize("size", [1, 2, 20, 28, 32, 48, 60, 61, 62, 63, 64, 66, 100, 127, 128, 129, 200])
def test_equals_encode_dss_signature(size: int) -> None:
    rng = random.Random(size)  # reproducible
    halves = _halves(rng, size)
    pairs = [(r, s) for r in halves for s in rng.sample(halves, 8)] + [(h, h) for h in halves]
    for r, s in pairs:
        raw = r + s
        der = ecdsa_raw_to_der(raw)
        assert der == _reference(raw), (size, raw.hex())
        assert ecdsa_der_to_raw(der, size) == raw
        assert decode_dss_signature(der) == (int.from_bytes(r, "big"), int.from_bytes(s, "big"))


def test_many_random_signature_sized_inputs() -> None:
    rng = random.Random(20261122)
    for size in (32, 48, 66):  # P-256 / secp256k1, P-384, P-521-sized
        for _ in range(20_000):
            r, s = bytearray(rng.randbytes(size)), bytearray(rng.randbytes(size))
            for half in (r, s):
                if rng.random() < 0.3:  # plenty of leading zero bytes in either half
                    zeros = rng.randrange(size + 1)
                    half[:zeros] = bytes(zeros)
            raw = bytes(r + s)
            assert ecdsa_raw_to_der(raw) == _reference(raw), raw.hex()


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x01\x02\x03", bytes(65)])
def test_odd_or_empty_length_is_invalid_signature(raw: bytes) -> None:
    with pytest.raises(InvalidSignature):
        ecdsa_raw_to_der(raw)
