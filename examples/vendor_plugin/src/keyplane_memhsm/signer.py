"""The Signer: one key, one algorithm, signatures in the standard X.509 encodings.

What the contract asks of every signer (and the harness checks): `sign()` takes the whole
message, of any length; ECDSA signatures are DER ``Ecdsa-Sig-Value`` (not raw r||s);
RSASSA-PSS uses a salt as long as the hash; `key_id` is the RFC 7638 thumbprint of
`public_key` (PublicKey computes it); `sign_async` never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import threading

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signers.algorithms import SignatureAlgorithm
from signers.errors import KeyNotFound
from signers.keys import PublicKey

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class MemHsmSigner:
    """Signs with a key held by a MemHsm slot; raises KeyNotFound once the key is deleted."""

    def __init__(self, uri: str, algorithm: SignatureAlgorithm, key: PrivateKey, alive: threading.Event) -> None:
        self.uri = uri
        self.algorithm = algorithm
        self.public_key = PublicKey(key.public_key())
        self.key_id = self.public_key.key_id
        algorithm.check_spec(self.public_key.spec)  # AlgorithmNotSupported for a PS256 on an EC key
        self._key = key
        self._alive = alive  # cleared when the key is deleted: never sign with a key that is gone

    def sign(self, message: bytes) -> bytes:
        if not self._alive.is_set():
            raise KeyNotFound(f"key {self.uri} was deleted")
        key, alg = self._key, self.algorithm
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(alg.hash_algorithm()))  # DER, as X.509 wants
        h = alg.hash_algorithm()
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if alg.is_pss else padding.PKCS1v15()
        return key.sign(message, pad, h)

    async def sign_async(self, message: bytes) -> bytes:
        # A blocking call goes to a worker thread; signing on the loop's thread would stall it.
        return await asyncio.to_thread(self.sign, message)

    def __repr__(self) -> str:  # never the key, never the PIN
        return f"MemHsmSigner(uri={self.uri!r}, algorithm={self.algorithm.value}, key_id={self.key_id!r})"
