"""Checking composite signatures on certificates and CRLs.

`cryptography` (and OpenSSL) cannot check a composite signature, so `verify_signed_by` does:
it reads the issuer's SubjectPublicKeyInfo from its TBS, requires the composite OID of the
signature to be the issuer key's own (inside the TBS and outside it), and checks both halves
with `CompositePublicKey.verify`. `signers.composite.chain` builds `verify_chain`'s path for
composite chains on it.
"""

from __future__ import annotations

from typing import Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from signers.errors import ConfigError, InvalidSignature
from signers.keys import PublicKey
from signers.x509.der import split_sequence

from .der import parse_algorithm_identifier
from .public_key import CompositePublicKey
from .variants import CompositeAlgorithm

__all__ = ["certificate_public_key", "verify_signed_by"]

Signed = Union[x509.Certificate, x509.CertificateRevocationList]


def certificate_public_key(certificate: x509.Certificate) -> CompositePublicKey | PublicKey:
    """The subject key of any certificate keyplane can read: composite or classical (ConfigError otherwise)."""
    fields = split_sequence(certificate.tbs_certificate_bytes)
    if CompositeAlgorithm.by_oid(certificate.public_key_algorithm_oid.dotted_string) is not None:
        return CompositePublicKey.from_der(fields[6])
    try:
        return PublicKey(certificate.public_key())  # type: ignore[arg-type]
    except UnsupportedAlgorithm as e:
        raise ConfigError(f"certificate key {certificate.public_key_algorithm_oid.dotted_string} is not supported") from e


def verify_signed_by(signed: Signed, issuer: x509.Certificate) -> None:
    """Raise InvalidSignature unless `issuer`'s composite key made `signed`'s composite signature."""
    oid = signed.signature_algorithm_oid.dotted_string
    variant = CompositeAlgorithm.by_oid(oid)
    try:
        key = certificate_public_key(issuer)
        if isinstance(signed, x509.Certificate):
            tbs = signed.tbs_certificate_bytes
            inner = parse_algorithm_identifier(split_sequence(tbs)[2])
        else:
            tbs = signed.tbs_certlist_bytes
            inner = parse_algorithm_identifier(split_sequence(tbs)[1])
    except ConfigError as e:
        raise InvalidSignature(f"the composite signature cannot be checked: {e}") from e
    if variant is None or not isinstance(key, CompositePublicKey) or key.variant is not variant:
        raise InvalidSignature(f"signature algorithm {oid} is not the issuer key's algorithm")
    if inner != oid:
        raise InvalidSignature("the signature algorithm inside the signed data differs from the one outside it")
    key.verify(signed.signature, tbs)

