"""Sign a certificate, CRL or CSR builder with any Signer, so the private key never leaves its store.

`cryptography`'s builders only sign with a local private key and offer no external-signer hook.
So: sign the builder once with a throwaway local key of the same spec, which fixes the
AlgorithmIdentifier (OID, and PSS parameters when the padding matches the Signer's), take the
to-be-signed bytes, have the Signer sign them, and re-wrap
SEQUENCE{toBeSigned, the same AlgorithmIdentifier, BIT STRING(signature)}.
A Signer's output is already the X.509 form (DER ECDSA, raw Ed25519 / RSA / ML-DSA), so the
BIT STRING content is exactly what `sign()` returns.

Every signature is verified with the Signer's public key before the object is returned: a
back end that signed with the wrong key or a malformed encoding never yields a certificate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import InvalidSignature
from signers.local_keys import PrivateKey, generate_private_key
from signers.signer import Signer

from .der import encode_bit_string, encode_sequence, split_sequence

__all__ = ["Builder", "sign_certificate", "sign_crl", "sign_csr", "throwaway_key"]

Builder = Union[x509.CertificateBuilder, x509.CertificateRevocationListBuilder, x509.CertificateSigningRequestBuilder]

_lock = threading.Lock()
_throwaway: dict[KeySpec, PrivateKey] = {}


def throwaway_key(spec: KeySpec) -> PrivateKey:
    """A process-wide local key that stands in for `spec` while a builder runs; never used to sign anything kept.

    Every RSA size shares one 2048-bit key: the AlgorithmIdentifier does not depend on the
    modulus, and a 4096-bit key would cost a CLI call seconds.
    """
    if spec.family is KeyFamily.RSA:
        spec = KeySpec.RSA2048
    with _lock:
        key = _throwaway.get(spec)
        if key is None:
            key = _throwaway[spec] = generate_private_key(spec)
        return key


def _builder_arguments(algorithm: SignatureAlgorithm) -> tuple[hashes.HashAlgorithm | None, dict[str, Any]]:
    """The `algorithm` and keyword arguments for `builder.sign` that produce `algorithm`'s AlgorithmIdentifier."""
    if algorithm.family in (KeyFamily.EDDSA, KeyFamily.MLDSA):
        return None, {}
    digest = algorithm.hash_algorithm()
    if algorithm.family is KeyFamily.RSA:
        # Salt = digest length with MGF1 over the same hash: what every keyplane Signer produces for PSS.
        pad: padding.PSS | padding.PKCS1v15 = (
            padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            if algorithm.is_pss
            else padding.PKCS1v15()
        )
        return digest, {"rsa_padding": pad}
    return digest, {}


def _sign_with(builder: Builder, signer: Signer, tbs_rewrite: Callable[[bytes], bytes] | None = None) -> bytes:
    """DER of the object `builder` describes, signed by `signer`."""
    digest, options = _builder_arguments(signer.algorithm)
    stand_in = builder.sign(throwaway_key(signer.public_key.spec), digest, **options)  # type: ignore[arg-type]
    tbs, algorithm_identifier, _ = split_sequence(stand_in.public_bytes(Encoding.DER))
    if tbs_rewrite is not None:
        tbs = tbs_rewrite(tbs)
    signature = signer.sign(tbs)
    try:
        signer.public_key.verify(signature, tbs, signer.algorithm)
    except InvalidSignature as e:
        raise InvalidSignature(f"the back end's {signer.algorithm.value} signature over the TBS does not verify "
                               f"with key {signer.key_id}; nothing was issued") from e
    return encode_sequence(tbs, algorithm_identifier, encode_bit_string(signature))


def sign_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    """The certificate `builder` describes, signed by `signer` (the key stays in its store).

    Raises AlgorithmNotSupported for a key spec the builder cannot describe, ValueError from
    `cryptography` for an incomplete builder, and whatever `signer.sign` raises.
    """
    return x509.load_der_x509_certificate(_sign_with(builder, signer))


def sign_crl(builder: x509.CertificateRevocationListBuilder, signer: Signer) -> x509.CertificateRevocationList:
    """The CRL `builder` describes, signed by `signer`. Raises as `sign_certificate`."""
    return x509.load_der_x509_crl(_sign_with(builder, signer))


def sign_csr(builder: x509.CertificateSigningRequestBuilder, signer: Signer) -> x509.CertificateSigningRequest:
    """A CSR for the Signer's key: the builder takes its subject key from the private key it signs
    with, so the throwaway key's SubjectPublicKeyInfo is swapped for the Signer's in the TBS.
    Raises as `sign_certificate`."""
    spki = signer.public_key.to_der()

    def swap_key(info: bytes) -> bytes:
        # CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, [0] attributes }
        version, subject, _, *attributes = split_sequence(info)
        return encode_sequence(version, subject, spki, *attributes)

    return x509.load_der_x509_csr(_sign_with(builder, signer, swap_key))
