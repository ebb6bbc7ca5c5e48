"""CKM_RSA_AES_KEY_WRAP: how Vault / OpenBao Transit and AWS KMS both take imported key material.

``RSA-OAEP(SHA-256, MGF1-SHA-256)(ephemeral AES-256 key) || AES-KWP(ephemeral key, material)``
(RFC 5649 key wrap with padding). Transit's BYOK import and KMS's RSA_AES_KEY_WRAP_SHA_256
wrapping algorithm are this construction; the ephemeral key never leaves this function.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from signers.errors import BackendUnavailable

__all__ = ["rsa_aes_key_wrap"]


def rsa_aes_key_wrap(wrapping_key: object, material: bytes) -> bytes:
    """Wrap `material` (e.g. a PKCS#8 DER private key) for the RSA `wrapping_key` the service handed out.

    Raises BackendUnavailable when the service's wrapping key is not an RSA key of at least 2048 bits.
    """
    if not isinstance(wrapping_key, rsa.RSAPublicKey) or wrapping_key.key_size < 2048:
        raise BackendUnavailable("the service's wrapping key is not an RSA key of at least 2048 bits")
    ephemeral = os.urandom(32)
    wrapped_key = wrapping_key.encrypt(
        ephemeral, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    return wrapped_key + keywrap.aes_key_wrap_with_padding(ephemeral, material)
