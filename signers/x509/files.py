"""Reading and writing certificates, CRLs and CSRs as PEM (or DER) files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signers.errors import ConfigError

__all__ = ["load_certificates", "load_crl", "load_csr", "read_certificates", "to_pem", "write_pem"]

X509Object = Union[x509.Certificate, x509.CertificateRevocationList, x509.CertificateSigningRequest]


def to_pem(*objects: X509Object) -> bytes:
    return b"".join(o.public_bytes(Encoding.PEM) for o in objects)


def write_pem(path: str | os.PathLike[str], *objects: X509Object) -> Path:
    """Write `objects` as one PEM file (replaced atomically: a reader never sees half a chain)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.part")
    temporary.write_bytes(to_pem(*objects))
    os.replace(temporary, target)
    return target


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, or the one in DER data."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as e:
        raise ConfigError(f"not a PEM or DER certificate: {e}") from e


def read_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    try:
        return load_certificates(Path(path).read_bytes())
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as e:
        raise ConfigError(f"not a PEM or DER CRL: {e}") from e


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as e:
        raise ConfigError(f"not a PEM or DER certificate signing request: {e}") from e
