"""Recoverable secp256k1 signatures: DER from any back end -> Ethereum's (v, r, s).

KMSs and HSMs return ECDSA as DER (r, s) with either s; Ethereum wants s in the lower half
of the group order (EIP-2) and a recovery bit v so `ecrecover(hash, v, r, s)` yields the
signer's address. No back end returns v, so it is found here by recovering the public key
for both candidates and keeping the one that is this key: a signature whose candidates
both miss (a back end that signed with another key) is refused, never returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..algorithms import KeySpec
from ..errors import AlgorithmNotSupported, ConfigError, InvalidSignature
from ..keys import PublicKey
from ..signer import DigestSigner, Signer
from .libs import eth_keys, keccak, to_checksum_address

__all__ = ["SECP256K1_ORDER", "EthSignature", "address_of", "recover_address", "sign_hash"]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = SECP256K1_ORDER // 2


@dataclass(frozen=True)
class EthSignature:
    """An Ethereum ECDSA signature: `v` is the recovery parity (0 or 1), `s` is always low."""

    v: int
    r: int
    s: int

    def to_bytes(self) -> bytes:
        """65 bytes r || s || v with v as 27 / 28 (what eth-account, x402 and ecrecover take)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([27 + self.v])

    def to_hex(self) -> str:
        return "0x" + self.to_bytes().hex()

    @property
    def vrs(self) -> tuple[int, int, int]:
        """(v, r, s) with the raw parity v, as eth-keys' Signature takes it."""
        return self.v, self.r, self.s


def _uncompressed(public_key: PublicKey) -> bytes:
    if public_key.spec is not KeySpec.SECP256K1:
        raise AlgorithmNotSupported(f"Ethereum signatures need a secp256k1 key, not {public_key.spec.value}")
    return _ec_key(public_key).public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _ec_key(public_key: PublicKey) -> ec.EllipticCurvePublicKey:
    key = public_key.key
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AlgorithmNotSupported(f"Ethereum signatures need a secp256k1 key, not {public_key.spec.value}")
    return key


def address_of(public_key: PublicKey) -> str:
    """The EIP-55 checksummed address of a secp256k1 public key; AlgorithmNotSupported for any other key."""
    return to_checksum_address(keccak(_uncompressed(public_key)[1:])[-20:])


def recover_address(digest: bytes, signature: EthSignature | bytes) -> str:
    """The address `ecrecover` yields for `signature` over the 32-byte `digest`; InvalidSignature if none."""
    sig = signature if isinstance(signature, EthSignature) else _parse65(signature)
    try:
        recovered = eth_keys().Signature(vrs=sig.vrs).recover_public_key_from_msg_hash(digest)
    except Exception as e:  # eth-keys raises its own BadSignature / ValidationError types
        raise InvalidSignature(f"no public key recovers from this signature: {type(e).__name__}") from e
    return str(recovered.to_checksum_address())


def _parse65(signature: bytes) -> EthSignature:
    if len(signature) != 65:
        raise InvalidSignature(f"an Ethereum signature is 65 bytes, not {len(signature)}")
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    if v not in (0, 1):
        raise InvalidSignature(f"recovery byte {signature[64]} is not 0/1/27/28")
    return EthSignature(v, int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"))


def sign_hash(signer: Signer, digest: bytes) -> EthSignature:
    """Sign a 32-byte digest (Keccak-256 for Ethereum) with a secp256k1 key in any back end.

    Raises AlgorithmNotSupported (not secp256k1, or the back end cannot sign a digest),
    ConfigError (digest not 32 bytes) and InvalidSignature (the back end's signature does
    not verify under the signer's public key: nothing is returned then).
    """
    point = _uncompressed(signer.public_key)
    if not isinstance(digest, bytes | bytearray) or len(digest) != 32:
        raise ConfigError("an Ethereum digest is exactly 32 bytes")
    if not isinstance(signer, DigestSigner):
        raise AlgorithmNotSupported(f"{type(signer).__name__} cannot sign a precomputed digest (no sign_digest)")
    der = signer.sign_digest(bytes(digest))
    try:
        r, s = decode_dss_signature(der)
    except ValueError as e:
        raise InvalidSignature("the back end returned a signature that is not DER ECDSA") from e
    if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
        raise InvalidSignature("the back end returned an ECDSA signature out of range")
    # No separate verify: a candidate that recovers exactly this key's public key proves the
    # signature valid under it (s*R = e*G + r*Q with R.x = r), so a wrong-key or forged
    # signature fails below. That halves the cost of a file-store signature.
    if s > _HALF_ORDER:  # EIP-2: the other s of the pair, with the same r
        s = SECP256K1_ORDER - s
    keys = eth_keys()
    for v in (0, 1):
        try:
            recovered = keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(bytes(digest))
        except Exception:  # a candidate that does not recover is simply not the one
            continue
        if recovered.to_bytes() == point[1:]:
            return EthSignature(v, r, s)
    raise InvalidSignature("neither recovery id yields this key's public key")


def der_signature(signature: EthSignature) -> bytes:
    """The DER form of an Ethereum signature (for verification with cryptography)."""
    return encode_dss_signature(signature.r, signature.s)
