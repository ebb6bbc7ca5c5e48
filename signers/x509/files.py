"""Reading and writing certificates, CRLs and CSRs as PEM (or DER) files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signers.errors import ConfigError
from signers.keys import PublicKey

from .errors import plain_error

__all__ = ["load_certificates", "load_crl", "load_csr", "read_bytes", "read_certificates", "read_crl", "read_csr",
           "read_public_key", "summary", "to_pem", "write_pem"]

T = TypeVar("T")
X509Object = Union[x509.Certificate, x509.CertificateRevocationList, x509.CertificateSigningRequest]


def to_pem(*objects: X509Object) -> bytes:
    """The PEM text of every object, concatenated."""
    return b"".join(o.public_bytes(Encoding.PEM) for o in objects)


def write_pem(path: str | os.PathLike[str], *objects: X509Object) -> Path:
    """Write `objects` as one PEM file (replaced atomically: a reader never sees half a chain).

    Raises OSError when the file cannot be written.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.part")
    temporary.write_bytes(to_pem(*objects))
    os.replace(temporary, target)
    return target


def read_bytes(path: str | os.PathLike[str], what: str = "file") -> bytes:
    """The file's bytes; ConfigError naming the path when it is missing or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror or e}") from None


def _pem_or_der(data: bytes, pem: Callable[[bytes], T], der: Callable[[bytes], T], what: str) -> T:
    try:
        return pem(data) if b"-----BEGIN" in data else der(data)
    except ValueError as e:
        raise ConfigError(f"not a PEM or DER {what} ({plain_error(e)})") from None


def _read(path: str | os.PathLike[str], what: str, load: Callable[[bytes], T]) -> T:
    """`load` of the file's bytes; its ConfigError (or the file's) names the path once."""
    try:
        return load(read_bytes(path, what))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if not str(e).startswith(str(path)) else str(e)) from None


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, or the one in DER data; ConfigError in one line otherwise."""
    return _pem_or_der(data, x509.load_pem_x509_certificates, lambda der: [x509.load_der_x509_certificate(der)],
                       "certificate")


def read_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in the file at `path`; ConfigError naming the path when missing or damaged."""
    return _read(path, "certificate file", load_certificates)


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """The CRL in PEM or DER data; ConfigError in one line otherwise."""
    return _pem_or_der(data, x509.load_pem_x509_crl, x509.load_der_x509_crl, "CRL")


def read_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """The CRL in the file at `path`; ConfigError naming the path when missing or damaged."""
    return _read(path, "CRL file", load_crl)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """The CSR in PEM or DER data; ConfigError in one line otherwise."""
    return _pem_or_der(data, x509.load_pem_x509_csr, x509.load_der_x509_csr, "certificate signing request")


def read_csr(path: str | os.PathLike[str]) -> x509.CertificateSigningRequest:
    """The CSR in the file at `path`; ConfigError naming the path when missing or damaged."""
    return _read(path, "CSR file", load_csr)


def read_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """A public key from a PEM, DER (SubjectPublicKeyInfo) or JWK file; ConfigError naming the path otherwise."""
    data = read_bytes(path, "public key file")
    try:
        if data.lstrip().startswith(b"{"):
            return PublicKey.from_jwk(data.decode("utf-8"))
        if b"-----BEGIN" in data:
            return PublicKey.from_pem(data)
        return PublicKey.from_der(data)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a JWK (not UTF-8 text)") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def summary(certificate: x509.Certificate) -> dict[str, Any]:
    """Subject, issuer, serial (hex), dates and signature algorithm: what the CLI prints about a certificate."""
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": f"{certificate.serial_number:x}",
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "signature_algorithm": getattr(certificate.signature_algorithm_oid, "_name", None)
        or certificate.signature_algorithm_oid.dotted_string,
    }
