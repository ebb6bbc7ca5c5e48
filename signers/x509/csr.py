"""Certificate signing requests: make one with a back-end key, check one before signing it."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from signers.errors import AlgorithmNotSupported
from signers.keys import PublicKey
from signers.signer import Signer

from .errors import InvalidCSR, plain_error
from .profile import SubjectAltNames, parse_name
from .tbs_signing import sign_csr

__all__ = ["check_csr", "create_csr"]


def create_csr(
    signer: Signer,
    subject: str | x509.Name,
    *,
    dns_names: Iterable[str] = (),
    uris: Iterable[str] = (),
    emails: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for `signer`'s key, self-signed by the Signer (the key stays in its store).

    Raises ConfigError for a bad subject or SAN, and whatever the Signer raises.
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(parse_name(subject))
    names = SubjectAltNames(tuple(dns_names), tuple(uris), tuple(emails), tuple(ip_addresses))
    if names:
        builder = builder.add_extension(names.extension(), critical=False)
    return sign_csr(builder, signer)


def check_csr(csr: x509.CertificateSigningRequest) -> PublicKey:
    """The requested public key, after the CSR's self-signature verified.

    Raises InvalidCSR for a bad signature, an unsupported or unreadable key, or a damaged CSR.
    """
    try:
        public_key = PublicKey(csr.public_key())  # type: ignore[arg-type]
        valid = csr.is_signature_valid
    except AlgorithmNotSupported as e:
        raise InvalidCSR(f"the CSR's key type is not supported: {e}") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InvalidCSR(f"the CSR cannot be checked: {plain_error(e)}") from None
    if not valid:
        raise InvalidCSR(f"the CSR's signature does not verify with its own {public_key.spec.value} key")
    return public_key
