"""The primitives for judging composite ML-DSA keys (draft-ietf-lamps-pq-composite-sigs), computed here.

A composite signature is verified twice: by the project's composite verifier
(`CompositePublicKey.verify`) and by `verify_independently`, which rebuilds M' =
Prefix || Label || len(ctx) || ctx || PH(M) itself and checks each half with `cryptography`
alone (the ML-DSA half with the label as its FIPS 204 context). The key id is recomputed
from the halves' `cryptography` keys, and the negatives break either half, swap them,
truncate, and verify as another variant: every one must be refused by both verifiers.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signers.composite import CompositeAlgorithm, CompositePublicKey
from signers.keys import PublicKey, b64url_encode
from signers.local_keys import generate_private_key

__all__ = ["FORMAT", "format_problem", "other_public_key", "tampered", "thumbprint", "verify_independently"]

PREFIX = b"CompositeAlgorithmSignatures2025"
_MLDSA_SIGNATURE = {"ML-DSA-44": 2420, "ML-DSA-65": 3309, "ML-DSA-87": 4627}  # FIPS 204, Table 2
_PREHASH: dict[str, type[hashes.HashAlgorithm]] = {"SHA256": hashes.SHA256, "SHA512": hashes.SHA512}
FORMAT = "mldsaSig (FIPS 204 length) || tradSig (its X.509 form)"

Verify = Callable[[bytes, bytes], None]


def _classical_bytes(key: object) -> bytes:
    """tradPK as the draft encodes it: raw Ed25519, uncompressed X9.62 point, PKCS#1 RSAPublicKey."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes_raw()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert isinstance(key, rsa.RSAPublicKey)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _mldsa(public_key: CompositePublicKey) -> Any:
    """The ML-DSA half's `cryptography` key (MLDSA44/65/87PublicKey)."""
    return public_key.mldsa.key


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes(
        (size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def thumbprint(public_key: CompositePublicKey) -> str:
    """The key id from the halves' `cryptography` keys: RFC 7638 over the AKP JWK (alg, kty, pub), or, for
    a variant the JOSE draft does not name, SHA-256 of the SubjectPublicKeyInfo built here."""
    variant = public_key.variant
    raw = _mldsa(public_key).public_bytes_raw() + _classical_bytes(public_key.classical.key)
    if variant.has_jose_name:
        members = {"alg": variant.jose_name, "kty": "AKP", "pub": b64url_encode(raw)}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    else:
        arc = int(variant.oid.rsplit(".", 1)[1])
        algorithm = _der(0x30, _der(0x06, bytes.fromhex("2b060105050706") + bytes([arc])))
        canonical = _der(0x30, algorithm + _der(0x03, b"\x00" + raw))
    return b64url_encode(hashlib.sha256(canonical).digest())


def _representative(variant: CompositeAlgorithm, message: bytes) -> bytes:
    digest = hashes.Hash(_PREHASH[variant.value.rsplit("-", 1)[1]]())
    digest.update(message)
    return PREFIX + f"COMPSIG-{variant.value}".encode() + b"\x00" + digest.finalize()


def _split(variant: CompositeAlgorithm, signature: bytes) -> tuple[bytes, bytes]:
    size = _MLDSA_SIGNATURE[variant.mldsa_spec.value]
    if len(signature) <= size:
        raise CryptoInvalidSignature(f"{len(signature)} bytes cannot hold a {size}-byte ML-DSA half and another")
    return signature[:size], signature[size:]


def _classical_verify(public_key: PublicKey, variant: CompositeAlgorithm, signature: bytes, data: bytes) -> None:
    key, algorithm = public_key.key, variant.classical_algorithm
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, data)
        return
    h = algorithm.hash_algorithm()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(h))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if algorithm.is_pss else padding.PKCS1v15()
        key.verify(signature, data, pad, h)


def verify_independently(public_key: CompositePublicKey, signature: bytes, message: bytes,
                         variant: CompositeAlgorithm | None = None) -> None:
    """Raise (cryptography's InvalidSignature, ValueError) unless both halves verify over M' of `variant`
    (default: the key's own), each with `cryptography` alone."""
    variant = variant or public_key.variant
    representative = _representative(variant, message)
    mldsa_half, classical_half = _split(variant, signature)
    _mldsa(public_key).verify(mldsa_half, representative, f"COMPSIG-{variant.value}".encode())
    _classical_verify(public_key.classical, variant, classical_half, representative)


def format_problem(variant: CompositeAlgorithm, public_key: CompositePublicKey, signature: bytes,
                   classical_problem: Callable[[PublicKey, bytes], str | None]) -> str | None:
    """Why `signature` is not mldsaSig || tradSig with each half in its standard form, or None."""
    size = _MLDSA_SIGNATURE[variant.mldsa_spec.value]
    if len(signature) <= size:
        return f"{len(signature)} bytes: no room for a traditional half after the {size}-byte ML-DSA half"
    problem = classical_problem(public_key.classical, signature[size:])
    return None if problem is None else f"traditional half: {problem}"


@functools.cache
def other_public_key(variant: CompositeAlgorithm) -> CompositePublicKey:
    """A different composite key of the same variant (made once per process), for the other-key negative."""
    return CompositePublicKey(variant, PublicKey(generate_private_key(variant.mldsa_spec).public_key()),
                              PublicKey(generate_private_key(variant.classical_spec).public_key()))


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index % len(out)] ^= 0x04
    return bytes(out)


def _other_variant(variant: CompositeAlgorithm) -> CompositeAlgorithm:
    """Another variant with the same two key specs if there is one (only the label and PH differ), else any."""
    same = [v for v in CompositeAlgorithm if v is not variant and (v.mldsa_spec, v.classical_spec) ==
            (variant.mldsa_spec, variant.classical_spec)]
    return same[0] if same else next(v for v in CompositeAlgorithm if v is not variant)


def tampered(public_key: CompositePublicKey, signature: bytes,
             message: bytes) -> dict[str, tuple[Verify, bytes, bytes]]:
    """Cases of (verifier, signature, message) that must all be refused, each by both verifiers."""
    variant = public_key.variant
    mldsa_half, classical_half = _split(variant, signature)
    other = _other_variant(variant)
    own: Verify = public_key.verify
    independent: Verify = functools.partial(verify_independently, public_key)
    cases: dict[str, tuple[Verify, bytes, bytes]] = {}
    for name, bad in (("ML-DSA half broken", _flip(mldsa_half, len(mldsa_half) // 2) + classical_half),
                      ("traditional half broken", mldsa_half + _flip(classical_half, len(classical_half) // 2)),
                      ("halves swapped", classical_half + mldsa_half),
                      ("truncated by one byte", signature[:-1]),
                      ("ML-DSA half alone", mldsa_half)):
        cases[f"{name} (composite verifier)"] = (own, bad, message)
        cases[f"{name} (independent)"] = (independent, bad, message)

    def as_other(sig: bytes, msg: bytes) -> None:
        verify_independently(public_key, sig, msg, other)

    def ml_dsa_without_label(sig: bytes, msg: bytes) -> None:
        _mldsa(public_key).verify(_split(variant, sig)[0], _representative(variant, msg))

    def traditional_over_message(sig: bytes, msg: bytes) -> None:
        _classical_verify(public_key.classical, variant, _split(variant, sig)[1], msg)

    cases[f"verified as {other.value} (its label and PH)"] = (as_other, signature, message)
    cases[f"algorithm={other.value} given to the composite verifier"] = (
        functools.partial(public_key.verify, algorithm=other), signature, message)
    cases["the ML-DSA half without the label as its context"] = (ml_dsa_without_label, signature, message)
    cases["the traditional half over M instead of M'"] = (traditional_over_message, signature, message)
    return cases
