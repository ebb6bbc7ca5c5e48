"""The policy hook: what a CA is asked to sign, and a ready-made policy for the usual limits.

A policy is any callable taking an `IssueRequest`. It accepts by returning None or True, and
refuses by returning False or a reason string, or by raising `PolicyRefused`. The CA calls it
after the request is complete (defaults applied, CSR checked) and before anything is signed,
so a policy sees exactly what would be issued.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509

from signers.algorithms import KeySpec
from signers.keys import PublicKey

from .profile import SubjectAltNames

__all__ = ["IssueRequest", "NamePolicy", "Policy"]


@dataclass(frozen=True)
class IssueRequest:
    """A certificate the CA is about to issue, as the policy hook sees it."""

    subject: x509.Name
    public_key: PublicKey
    names: SubjectAltNames
    not_before: datetime.datetime
    not_after: datetime.datetime
    is_ca: bool
    path_length: int | None
    key_usage: x509.KeyUsage
    extended_key_usage: tuple[x509.ObjectIdentifier, ...]
    csr: x509.CertificateSigningRequest | None = None  # set when the request came as a CSR
    backdated: datetime.timedelta = datetime.timedelta(0)  # how far not_before lies before the issue time

    @property
    def validity(self) -> datetime.timedelta:
        """How long the certificate is valid from its issue time (the clock-skew backdating not counted)."""
        return self.not_after - self.not_before - self.backdated


Policy = Callable[[IssueRequest], "bool | str | None"]


@dataclass(frozen=True)
class NamePolicy:
    """Allow only names under given suffixes / prefixes, bounded validity, chosen key specs, no CA by default.

    An empty allow-list for a SAN kind allows none of that kind. A request must carry at
    least one SAN, so a certificate always names what it is for.
    """

    dns_suffixes: tuple[str, ...] = ()
    uri_prefixes: tuple[str, ...] = ()
    email_domains: tuple[str, ...] = ()
    max_validity: datetime.timedelta = datetime.timedelta(days=1)
    key_specs: frozenset[KeySpec] = field(default_factory=lambda: frozenset(KeySpec))
    allow_ca: bool = False

    def __call__(self, request: IssueRequest) -> str | None:
        """None to allow, or why the request is refused. Never raises."""
        if request.is_ca and not self.allow_ca:
            return "CA certificates are not allowed"
        if request.validity > self.max_validity:
            return f"validity {request.validity} exceeds the maximum {self.max_validity}"
        if request.public_key.spec not in self.key_specs:
            return f"{request.public_key.spec.value} keys are not allowed"
        if not request.names:
            return "the request names no subject alternative name"
        for dns in request.names.dns_names:
            if not any(dns == s.lstrip(".") or dns.endswith("." + s.lstrip(".")) for s in self.dns_suffixes):
                return f"DNS name {dns!r} is outside the allowed suffixes"
        for uri in request.names.uris:
            if not any(uri.startswith(p) for p in self.uri_prefixes):
                return f"URI {uri!r} is outside the allowed prefixes"
        for email in request.names.emails:
            if email.rpartition("@")[2].lower() not in {d.lower() for d in self.email_domains}:
                return f"email {email!r} is outside the allowed domains"
        if request.names.ip_addresses:
            return "IP address SANs are not allowed"
        return None
