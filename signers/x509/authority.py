"""CertificateAuthority: roots, intermediates and leaves signed by a key that stays in its store.

```python
root = CertificateAuthority.create_root(signers.open("pkcs11:...object=root"), "CN=Acme Root")
issuing = root.create_intermediate(signers.open("awskms:///alias/issuing"), "CN=Acme Issuing", path_length=0)
cert = issuing.issue(agent_public_key, "CN=agent-7", uris=["spiffe://acme/agent/7"])
issuing.revoke(cert.serial_number, "key_compromise")
crl = issuing.crl()
```

Every certificate is built by `cryptography`'s CertificateBuilder and signed by the CA's
Signer (see tbs_signing). Leaves default to 24 hours, digitalSignature, clientAuth + serverAuth;
serials are 128 random bits. A leaf never outlives its CA: its end is cut to the CA's.
Validity counts from now: `not_before` is set a minute earlier (BACKDATE) for verifiers
whose clock is behind, and a validity shorter than that minute is refused.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from signers.clock import duration, now_utc, utc
from signers.errors import ConfigError
from signers.keys import CryptoPublicKey, PublicKey
from signers.revocation import MemoryRevocationStore, Revocation, RevocationStore
from signers.signer import Signer

from .crl import build_crl, reason_name
from .csr import check_csr
from .errors import PolicyRefused, plain_error
from .policy import IssueRequest, Policy
from .profile import SubjectAltNames, extended_key_usage, key_usage, parse_name
from .serials import new_serial, serial_id
from .tbs_signing import sign_certificate

__all__ = [
    "DEFAULT_CA_VALIDITY",
    "DEFAULT_CRL_VALIDITY",
    "DEFAULT_LEAF_VALIDITY",
    "CertificateAuthority",
    "new_serial",
]

DEFAULT_LEAF_VALIDITY = datetime.timedelta(hours=24)
DEFAULT_CA_VALIDITY = datetime.timedelta(days=3650)
DEFAULT_INTERMEDIATE_VALIDITY = datetime.timedelta(days=365)
DEFAULT_CRL_VALIDITY = datetime.timedelta(days=1)
# Certificates start a minute in the past so a verifier whose clock is slightly behind accepts them.
BACKDATE = datetime.timedelta(minutes=1)
# A CRL's thisUpdate is a few seconds in the past for the same reason: a verifier whose clock is a
# second behind (or steps back) would refuse a fresh CRL as "not yet valid" and so the whole chain.
CRL_BACKDATE = datetime.timedelta(seconds=10)

_LEAF_USAGE = ("digital_signature",)
_CA_USAGE = ("digital_signature", "key_cert_sign", "crl_sign")
_LEAF_EKU = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)

SubjectKey = PublicKey | CryptoPublicKey | Signer


class _Clock(Protocol):
    def __call__(self) -> datetime.datetime: ...


def _lifetime(validity: datetime.timedelta, what: str = "validity") -> datetime.timedelta:
    """`validity` checked: finite, and longer than the backdating (else the certificate is born useless).

    Raises ConfigError otherwise.
    """
    seconds = duration(validity, what)
    if seconds <= BACKDATE.total_seconds():
        raise ConfigError(f"{what} of {seconds:g} s is not longer than the {BACKDATE.total_seconds():g} s "
                          "certificates are backdated for clock skew")
    return datetime.timedelta(seconds=seconds)


def _public_key(subject_key: SubjectKey) -> PublicKey:
    if isinstance(subject_key, PublicKey):
        return subject_key
    if isinstance(subject_key, Signer):
        return subject_key.public_key
    return PublicKey(subject_key)


class CertificateAuthority:
    """A CA: its Signer, its certificate (and the chain above it), a revocation store and a policy.

    `certificate` is None only for a CA whose certificate is still to come (it can then make a
    CSR for itself with `signers.x509.create_csr`, but issue nothing). Raises ConfigError when
    `certificate` is not a usable CA certificate for `signer`'s key.
    """

    def __init__(
        self,
        signer: Signer,
        certificate: x509.Certificate | None = None,
        *,
        chain: Sequence[x509.Certificate] = (),
        revocations: RevocationStore | None = None,
        policy: Policy | None = None,
        leaf_validity: datetime.timedelta = DEFAULT_LEAF_VALIDITY,
        crl_validity: datetime.timedelta = DEFAULT_CRL_VALIDITY,
        clock: _Clock = now_utc,
    ) -> None:
        if certificate is not None:
            _check_ca_certificate(certificate, signer)
        self.signer = signer
        self._certificate = certificate
        self.parents = tuple(chain)  # the issuers above this CA, nearest first
        self.policy = policy
        self.leaf_validity = leaf_validity
        self.crl_validity = crl_validity
        self.clock = clock
        self._revocations = revocations
        self._crl_lock = threading.Lock()
        self._last_crl_number = 0

    def __repr__(self) -> str:
        subject = self._certificate.subject.rfc4514_string() if self._certificate is not None else "<no certificate>"
        return f"CertificateAuthority({subject!r}, key={self.signer.uri!r})"

    # -- construction ------------------------------------------------------------------

    @classmethod
    def create_root(
        cls,
        signer: Signer,
        subject: str | x509.Name,
        *,
        validity: datetime.timedelta = DEFAULT_CA_VALIDITY,
        path_length: int | None = None,
        **options: Any,
    ) -> CertificateAuthority:
        """A self-signed root for `signer`'s key; `options` go to the constructor (revocations, policy, ...).

        Raises ConfigError for a bad subject or validity, and whatever the Signer raises.
        """
        name = parse_name(subject)
        lifetime = _lifetime(validity)
        clock: _Clock = options.get("clock", now_utc)
        now = clock()
        public_key = signer.public_key
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key.key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key.key)
            .serial_number(new_serial())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(key_usage(_CA_USAGE), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        )
        return cls(signer, sign_certificate(builder, signer), **options)

    def create_intermediate(
        self,
        signer: Signer,
        subject: str | x509.Name,
        *,
        path_length: int | None = 0,
        validity: datetime.timedelta = DEFAULT_INTERMEDIATE_VALIDITY,
        **options: Any,
    ) -> CertificateAuthority:
        """Issue a CA certificate for `signer`'s key and return that CA (its chain ends at this CA's).

        Raises as `issue` (PolicyRefused when this CA's path length forbids a subordinate CA).
        """
        certificate = self.issue(signer, subject, is_ca=True, path_length=path_length, validity=validity)
        return CertificateAuthority(signer, certificate, chain=self.chain, **options)

    # -- properties --------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        """This CA's certificate; ConfigError for a CA still waiting for one."""
        return self._require_certificate()

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate, then its issuers up to the root; ConfigError for a CA still waiting for one."""
        return (self._require_certificate(), *self.parents)

    @property
    def revocations(self) -> RevocationStore:
        """The revocation store; an in-memory one is made on first use when none was given."""
        if self._revocations is None:
            self._revocations = MemoryRevocationStore()
        return self._revocations

    def chain_pem(self) -> bytes:
        """`chain` as one PEM bundle; ConfigError for a CA still waiting for its certificate."""
        return b"".join(c.public_bytes(Encoding.PEM) for c in self.chain)

    # -- issuance ----------------------------------------------------------------------

    def issue(
        self,
        subject_key: SubjectKey,
        subject: str | x509.Name | None = None,
        *,
        dns_names: Iterable[str] = (),
        uris: Iterable[str] = (),
        emails: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        key_usages: Iterable[str] | None = None,
        extended_key_usages: Iterable[str | x509.ObjectIdentifier] | None = None,
        validity: datetime.timedelta | None = None,
        not_before: datetime.datetime | None = None,
        is_ca: bool = False,
        path_length: int | None = None,
        csr: x509.CertificateSigningRequest | None = None,
    ) -> x509.Certificate:
        """Issue a certificate for a public key (or a Signer's); the policy may refuse with PolicyRefused.

        A leaf needs a subject or at least one SAN. `key_usages` / `extended_key_usages` take
        names (`digital_signature`, `client_auth`); CA certificates get no EKU unless asked.
        The certificate is valid from `not_before` (default: now, backdated a minute) until
        `validity` after `not_before` (or after now), cut to the CA's own end.

        Raises ConfigError (bad names, a naive `not_before`, a validity not longer than the backdating, an expired CA),
        PolicyRefused (the policy or the CA's path length), and whatever the Signer raises.
        """
        ca_certificate = self._require_certificate()
        public_key = _public_key(subject_key)
        names = SubjectAltNames(tuple(dns_names), tuple(uris), tuple(emails), tuple(ip_addresses))
        name = parse_name(subject) if subject is not None else x509.Name([])
        if not name and not names:
            raise ConfigError("a certificate needs a subject or at least one subject alternative name")
        if is_ca:
            self._check_may_issue_ca(path_length)
        lifetime = _lifetime(validity if validity is not None else (
            DEFAULT_INTERMEDIATE_VALIDITY if is_ca else self.leaf_validity))
        now = self.clock()
        backdated = datetime.timedelta(0)
        if not_before is not None:
            start = utc(not_before, "not_before")
            end = start + lifetime
        else:
            backdated = BACKDATE
            start, end = now - BACKDATE, now + lifetime  # backdated for skew; the validity counts from now
        end = min(end, ca_certificate.not_valid_after_utc)  # never outlive the issuer
        if end <= start:
            raise ConfigError("the certificate would end before it starts (is the CA certificate expired?)")
        usage = key_usage(key_usages if key_usages is not None else (_CA_USAGE if is_ca else _LEAF_USAGE))
        default_eku: tuple[x509.ObjectIdentifier, ...] = () if is_ca else _LEAF_EKU
        eku = extended_key_usage(extended_key_usages) if extended_key_usages is not None else default_eku
        request = IssueRequest(name, public_key, names, start, end, is_ca, path_length if is_ca else None,
                               usage, eku, csr, backdated=backdated)
        self._apply_policy(request)
        return sign_certificate(self._builder(request), self.signer)

    def sign_csr(self, csr: x509.CertificateSigningRequest, **overrides: Any) -> x509.Certificate:
        """Issue for a CSR after checking its signature (InvalidCSR if it fails; otherwise raises as `issue`).

        Subject and SANs come from the CSR unless given in `overrides` (same keywords as
        `issue`); other extensions the CSR asks for are ignored: the CA decides usages.
        """
        public_key = check_csr(csr)
        try:
            extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            requested = SubjectAltNames.from_extension(extension)
        except x509.ExtensionNotFound:
            requested = SubjectAltNames()
        overrides.setdefault("subject", csr.subject if len(csr.subject) else None)
        overrides.setdefault("dns_names", requested.dns_names)
        overrides.setdefault("uris", requested.uris)
        overrides.setdefault("emails", requested.emails)
        overrides.setdefault("ip_addresses", requested.ip_addresses)
        subject = overrides.pop("subject")
        return self.issue(public_key, subject, csr=csr, **overrides)

    # -- revocation --------------------------------------------------------------------

    def revoke(self, serial: int | str | x509.Certificate, reason: str = "unspecified",
               at: datetime.datetime | None = None) -> Revocation:
        """Record `serial` as revoked (idempotent: the first record stands); the next `crl()` lists it.

        `serial` is an int, a certificate, or hex text in any spelling (`0x0AB`, `ab`, `00:ab`):
        all are stored as one key. Raises ConfigError for a malformed serial or reason.
        """
        return self.revocations.revoke(serial_id(serial), kind="x509-serial", reason=reason_name(reason), at=at)

    def is_revoked(self, serial: int | str | x509.Certificate) -> bool:
        """Whether `serial` (as for `revoke`) is in this CA's revocation store. Raises ConfigError for a bad serial."""
        return self.revocations.is_revoked(serial_id(serial), kind="x509-serial")

    def crl(self, *, validity: datetime.timedelta | None = None) -> x509.CertificateRevocationList:
        """A fresh CRL of every revoked serial, signed by the CA's Signer, valid for `validity` (default a day).

        Its thisUpdate is `CRL_BACKDATE` before now (clock skew), its nextUpdate `validity` after that.

        The CRL number is the issue time in milliseconds, kept strictly increasing within a
        process: monotonic across restarts without storing a counter. Raises ConfigError for a
        non-finite validity or one not longer than the backdating, and whatever the Signer raises.
        """
        ca_certificate = self._require_certificate()
        lifetime = datetime.timedelta(seconds=duration(validity or self.crl_validity, "CRL validity", allow_zero=False))
        if lifetime <= CRL_BACKDATE:
            raise ConfigError(f"a CRL validity of {lifetime.total_seconds():g} s is not longer than the "
                              f"{CRL_BACKDATE.total_seconds():g} s its thisUpdate is backdated for clock skew")
        now = self.clock()
        with self._crl_lock:
            number = max(self._last_crl_number + 1, int(now.timestamp() * 1000))
            self._last_crl_number = number
        return build_crl(
            ca_certificate,
            self.signer,
            self.revocations.list(kind="x509-serial"),
            this_update=now - CRL_BACKDATE,
            next_update=now - CRL_BACKDATE + lifetime,
            number=number,
        )

    # -- internals ---------------------------------------------------------------------

    def _require_certificate(self) -> x509.Certificate:
        if self._certificate is None:
            raise ConfigError("this CA has no certificate yet: create a root, or have a parent CA sign its CSR")
        return self._certificate

    def _check_may_issue_ca(self, path_length: int | None) -> None:
        own = self._require_certificate().extensions.get_extension_for_class(x509.BasicConstraints).value
        if own.path_length is None:
            return
        if own.path_length == 0:
            raise PolicyRefused("this CA's path length is 0: it may issue leaves only")
        if path_length is None or path_length >= own.path_length:
            raise PolicyRefused(f"a subordinate CA's path length must be below this CA's ({own.path_length})")

    def _apply_policy(self, request: IssueRequest) -> None:
        if self.policy is None:
            return
        verdict = self.policy(request)
        if verdict is None or verdict is True:
            return
        raise PolicyRefused(verdict if isinstance(verdict, str) and verdict else "refused by policy", request)

    def _builder(self, request: IssueRequest) -> x509.CertificateBuilder:
        ca_certificate = self._require_certificate()
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(ca_certificate.subject)
            .public_key(request.public_key.key)
            .serial_number(new_serial())
            .not_valid_before(request.not_before)
            .not_valid_after(request.not_after)
            .add_extension(x509.BasicConstraints(ca=request.is_ca, path_length=request.path_length), critical=True)
            .add_extension(request.key_usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key.key), critical=False)
            .add_extension(_authority_key_identifier(ca_certificate), critical=False)
        )
        if request.extended_key_usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(request.extended_key_usage)), critical=False)
        if request.names:
            # RFC 5280 4.2.1.6: the SAN is critical when the subject is empty.
            builder = builder.add_extension(request.names.extension(), critical=not request.subject)
        return builder


def _authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)  # type: ignore[arg-type]


def _check_ca_certificate(certificate: x509.Certificate, signer: Signer) -> None:
    """A CA's certificate must hold its signer's key and allow certificate signing; ConfigError otherwise."""
    try:
        _check_ca_extensions(certificate, signer)
    except ValueError as e:  # a damaged extension or key in the certificate
        raise ConfigError(f"the CA certificate cannot be read: {plain_error(e)}") from None


def _check_ca_extensions(certificate: x509.Certificate, signer: Signer) -> None:
    if PublicKey(certificate.public_key()) != signer.public_key:  # type: ignore[arg-type]
        raise ConfigError(f"the CA certificate's public key is not the key of signer {signer.uri}")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ConfigError("the CA certificate is not a CA certificate (basicConstraints CA:TRUE missing)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise ConfigError("the CA certificate's key usage does not allow keyCertSign")
