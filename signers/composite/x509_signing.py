"""Certificates and CRLs signed by, or issued for, composite keys.

`cryptography`'s builders know neither the composite OIDs nor composite keys, and sign only
with a local key. So a builder is signed once with a throwaway key (Ed25519 when the issuer
is composite, else one of the issuer's spec), and its to-be-signed part is re-assembled:
the signature AlgorithmIdentifier becomes the composite OID (parameters absent, as the
draft requires) and, for a composite subject, the SubjectPublicKeyInfo becomes the
composite one. The issuer's Signer signs the final TBS bytes, the signature is verified
with the issuer's public key, and SEQUENCE{tbs, AlgorithmIdentifier, BIT STRING} is the
result, which `cryptography` loads like any certificate or CRL.
"""

from __future__ import annotations

import hashlib
from typing import Any, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from signers.algorithms import KeyFamily, KeySpec
from signers.errors import InvalidSignature
from signers.keys import PublicKey
from signers.signer import Signer
from signers.x509.der import encode_bit_string, encode_sequence, split_sequence
from signers.x509.tbs_signing import throwaway_key

from .der import algorithm_identifier
from .public_key import CompositePublicKey

__all__ = ["AnyPublicKey", "sign_certificate", "sign_crl", "subject_key_identifier"]

AnyPublicKey = Union[CompositePublicKey, PublicKey]

_TBS_SIGNATURE = {"certificate": 2, "crl": 1}  # index of `signature` in TBSCertificate (v3) / TBSCertList (v2)
_TBS_SPKI = 6


def subject_key_identifier(key: AnyPublicKey) -> x509.SubjectKeyIdentifier:
    """RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits (composite: the raw composite key)."""
    if isinstance(key, CompositePublicKey):
        return x509.SubjectKeyIdentifier(hashlib.sha1(key.to_bytes()).digest())  # SHA-1: RFC 5280 method (1), an identifier, not a signature
    return x509.SubjectKeyIdentifier.from_public_key(key.key)


def _stand_in(builder: Any, issuer: Signer) -> bytes:
    """DER of `builder` signed by a throwaway key that fixes the classical issuer's AlgorithmIdentifier."""
    algorithm = issuer.algorithm
    if isinstance(issuer.public_key, CompositePublicKey):
        return bytes(builder.sign(throwaway_key(KeySpec.ED25519), None).public_bytes(Encoding.DER))
    options: dict[str, Any] = {}
    digest: hashes.HashAlgorithm | None = None
    if algorithm.family in (KeyFamily.EC, KeyFamily.RSA):
        digest = algorithm.hash_algorithm()
        if algorithm.family is KeyFamily.RSA:
            options["rsa_padding"] = (padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
                                      if algorithm.is_pss else padding.PKCS1v15())
    return bytes(builder.sign(throwaway_key(issuer.public_key.spec), digest, **options).public_bytes(Encoding.DER))


def _signed(builder: Any, issuer: Signer, kind: str, subject_spki: bytes | None = None) -> bytes:
    tbs, outer_algorithm, _ = split_sequence(_stand_in(builder, issuer))
    fields = split_sequence(tbs)
    if isinstance(issuer.public_key, CompositePublicKey):
        outer_algorithm = algorithm_identifier(issuer.public_key.variant.oid)
        fields[_TBS_SIGNATURE[kind]] = outer_algorithm
    if subject_spki is not None:
        fields[_TBS_SPKI] = subject_spki
    tbs = encode_sequence(*fields)
    signature = issuer.sign(tbs)
    try:
        issuer.public_key.verify(signature, tbs, issuer.algorithm)
    except InvalidSignature as e:
        raise InvalidSignature(f"the {kind} signature by {issuer.uri} does not verify; nothing was issued") from e
    return encode_sequence(tbs, outer_algorithm, encode_bit_string(signature))


def sign_certificate(builder: x509.CertificateBuilder, issuer: Signer, subject_key: AnyPublicKey) -> x509.Certificate:
    """`builder` (everything but the public key set) for `subject_key`, signed by `issuer` (either may be composite).

    Raises InvalidSignature when the issuer's back end returns a signature its public key rejects.
    """
    if isinstance(subject_key, CompositePublicKey):
        placeholder = throwaway_key(KeySpec.ED25519).public_key()
        der = _signed(builder.public_key(placeholder), issuer, "certificate", subject_key.to_der())
    else:
        der = _signed(builder.public_key(subject_key.key), issuer, "certificate")
    return x509.load_der_x509_certificate(der)


def sign_crl(builder: x509.CertificateRevocationListBuilder, issuer: Signer) -> x509.CertificateRevocationList:
    """`builder` signed by `issuer` (composite or not)."""
    return x509.load_der_x509_crl(_signed(builder, issuer, "crl"))
