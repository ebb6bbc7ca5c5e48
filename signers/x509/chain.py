"""verify_chain: is this leaf certificate trusted, by these roots, at this time, given these CRLs?

The validator is OpenSSL's RFC 5280 path validation (see `openssl_path`), with the flags
of ``openssl verify -x509_strict``: every chain it can judge gets OpenSSL's verdict, and
its verify error becomes a `CertificateError` carrying a typed `Reason` (and
`.openssl_code`). Roots must be self-signed trust anchors; a certificate passed as a root
that is not self-signed is not an anchor (OpenSSL's default, no partial chains).

The one custom path: a signature algorithm OpenSSL cannot verify (composite ML-DSA, for
one). A module that can verify such certificates registers a `ChainVerifier` for the
algorithm's OID with `register_chain_verifier`; `verify_chain` hands the whole question to
it when any certificate given uses a registered OID, and to OpenSSL otherwise. An OID
keyplane itself serves (composite ML-DSA: `signers.algorithm_modules`) registers on first
use, by importing its module. Nothing else is decided here.
"""

from __future__ import annotations

import datetime
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from signers.algorithm_modules import SIGNATURE_OID_MODULES, load_signature_oid
from signers.clock import utc
from signers.errors import ConfigError

from .errors import CertificateError, Reason, plain_error
from .openssl_path import PURPOSES, OpenSSLPath
from .profile import extended_key_usage

__all__ = ["ChainQuestion", "ChainVerifier", "register_chain_verifier", "verify_chain"]


@dataclass(frozen=True)
class ChainQuestion:
    """Everything `verify_chain` was asked, normalised: what a registered verifier receives."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    roots: tuple[x509.Certificate, ...]
    at: datetime.datetime | None
    crls: tuple[x509.CertificateRevocationList, ...]
    require_crl: bool
    extended_key_usages: tuple[x509.ObjectIdentifier, ...]


class ChainVerifier(Protocol):
    """Verifies a chain OpenSSL cannot: returns the path leaf -> root or raises CertificateError."""

    def __call__(self, question: ChainQuestion) -> list[x509.Certificate]: ...


_VERIFIERS: dict[str, ChainVerifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def register_chain_verifier(signature_algorithm: str | x509.ObjectIdentifier, verifier: ChainVerifier) -> None:
    """Route chains with a certificate signed with, or holding a key of, `signature_algorithm` (an OID) to `verifier`.

    Raises ConfigError for a malformed OID or an OID that already has a different verifier.
    """
    try:
        oid = signature_algorithm.dotted_string if isinstance(signature_algorithm, x509.ObjectIdentifier) else (
            x509.ObjectIdentifier(signature_algorithm).dotted_string)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"not an object identifier: {signature_algorithm!r}") from e
    with _VERIFIERS_LOCK:
        if _VERIFIERS.get(oid, verifier) is not verifier:
            raise ConfigError(f"signature algorithm {oid} already has a chain verifier")
        _VERIFIERS[oid] = verifier


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] = (),
    *,
    at: datetime.datetime | None = None,
    crl: x509.CertificateRevocationList | None = None,
    crls: Iterable[x509.CertificateRevocationList] = (),
    require_crl: bool = False,
    extended_key_usages: Iterable[str | x509.ObjectIdentifier] = (),
) -> list[x509.Certificate]:
    """The path leaf -> ... -> root, or CertificateError with the first reason it does not hold.

    `at` (timezone-aware) defaults to now. A certificate whose issuer has a CRL among
    `crl`/`crls` is checked against it, and a CRL that does not apply to it (wrong scope,
    bad signature, stale, unknown critical extension) refuses the chain; with `require_crl`
    every certificate below the root must be covered. `extended_key_usages` (names such as
    `client_auth`, or OIDs) are required of the leaf and, for the purposes OpenSSL knows
    (client_auth, server_auth, email_protection, time_stamping), of every CA in the path:
    an intermediate whose EKU excludes the purpose refuses the chain.

    Raises CertificateError (an InvalidSignature) when the chain does not verify, and
    ConfigError for a call that cannot be a question (no roots, a naive `at`, an unknown EKU name).
    """
    if not roots:
        raise ConfigError("verify_chain needs at least one trusted root")
    question = ChainQuestion(
        leaf, tuple(intermediates), tuple(roots), utc(at, "at") if at is not None else None,
        (*([crl] if crl is not None else []), *crls), require_crl, extended_key_usage(extended_key_usages),
    )
    custom = _custom_verifier(question)
    if custom is not None:
        return custom(question)
    purposes = [PURPOSES[oid] for oid in question.extended_key_usages if oid in PURPOSES]
    path = OpenSSLPath(question.leaf, question.intermediates, question.roots, question.at, question.crls,
                       question.require_crl, purposes).verify()
    _check_leaf_usage(leaf, [oid for oid in question.extended_key_usages if oid not in PURPOSES])
    return path


def _custom_verifier(question: ChainQuestion) -> ChainVerifier | None:
    """The verifier of the first registered algorithm a certificate is signed with or holds a key of.

    A key counts too: OpenSSL cannot even load a certificate whose key algorithm it does not
    know (composite ML-DSA OIDs name both the signature and the key).
    """
    for certificate in itertools.chain([question.leaf], question.intermediates, question.roots):
        for oid in (certificate.signature_algorithm_oid.dotted_string, certificate.public_key_algorithm_oid.dotted_string):
            verifier = _VERIFIERS.get(oid)
            if verifier is None and oid in SIGNATURE_OID_MODULES and load_signature_oid(oid):
                verifier = _VERIFIERS.get(oid)
            if verifier is not None:
                return verifier
    return None


def _check_leaf_usage(leaf: x509.Certificate, required: Sequence[x509.ObjectIdentifier]) -> None:
    """EKUs OpenSSL has no purpose for: the leaf's EKU, when present, must list them (absent = any, as OpenSSL)."""
    if not required:
        return
    try:
        present = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return
    except ValueError as e:  # OpenSSL accepted the path, so this would be cryptography's stricter parser
        raise CertificateError(Reason.INVALID, leaf, f"unreadable extensions: {plain_error(e)}") from None
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in present:
        return
    missing = [oid.dotted_string for oid in required if oid not in present]
    if missing:
        raise CertificateError(Reason.KEY_USAGE, leaf, f"extendedKeyUsage lacks {', '.join(missing)}")
