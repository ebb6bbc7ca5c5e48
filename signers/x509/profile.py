"""How a request names things: subjects, SANs, key usages, extended key usages.

Callers and the CLI say `CN=agent-7,O=acme`, `uri:spiffe://acme/agent/7`, `client_auth`; these
helpers turn that into `cryptography` objects, and refuse anything they do not understand
(a typo in a usage name must not silently drop the usage).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signers.errors import ConfigError

__all__ = [
    "EXTENDED_KEY_USAGES",
    "KEY_USAGES",
    "SubjectAltNames",
    "extended_key_usage",
    "key_usage",
    "parse_name",
]

# RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" and something.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
# A DNS name (RFC 1035 labels, an optional leading wildcard label); nothing else is taken as one untagged.
_DNS = re.compile(r"(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?\.?")
_TAGS = ("dns", "uri", "email", "ip")

KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)

EXTENDED_KEY_USAGES: dict[str, x509.ObjectIdentifier] = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}


def _canonical(name: str) -> str:
    """`keyCertSign`, `key-cert-sign` and `key_cert_sign` are the same usage; so are `clientAuth` and `client_auth`."""
    out = []
    for ch in name.strip():
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append("_" if ch == "-" else ch)
    return "".join(out).lstrip("_")


def parse_name(name: str | x509.Name) -> x509.Name:
    """An RFC 4514 string (`CN=agent,O=acme`) or a bare common name (`agent`) as an X.509 Name.

    Raises ConfigError for an empty or malformed name, or an attribute too long for X.509
    (a common name has at most 64 characters).
    """
    if isinstance(name, x509.Name):
        return name
    if not isinstance(name, str):
        raise ConfigError(f"a subject name is text or an x509.Name, not {type(name).__name__}")
    text = name.strip()
    if not text:
        raise ConfigError("empty subject name")
    try:
        if "=" not in text:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])
        return x509.Name.from_rfc4514_string(text)
    except ValueError as e:
        raise ConfigError(f"not a usable subject name {text[:60]!r}{'...' if len(text) > 60 else ''}: "
                          f"{str(e)[:120]}") from None


def key_usage(names: Iterable[str]) -> x509.KeyUsage:
    """A KeyUsage extension value with exactly the named bits set; ConfigError for unknown names."""
    wanted = {_canonical(n) for n in names}
    unknown = wanted - set(KEY_USAGES)
    if unknown:
        raise ConfigError(f"unknown key usage(s) {sorted(unknown)}; known: {', '.join(KEY_USAGES)}")
    flags = {usage: usage in wanted for usage in KEY_USAGES}
    if not flags["key_agreement"] and (flags["encipher_only"] or flags["decipher_only"]):
        raise ConfigError("encipher_only / decipher_only need key_agreement")
    return x509.KeyUsage(**flags)


def extended_key_usage(names: Iterable[str | x509.ObjectIdentifier]) -> tuple[x509.ObjectIdentifier, ...]:
    """EKU OIDs from names (`client_auth`), dotted OIDs (`1.3.6.1.5.5.7.3.2`) or OID objects.

    Raises ConfigError for an unknown name or a malformed OID.
    """
    out: list[x509.ObjectIdentifier] = []
    for name in names:
        if isinstance(name, x509.ObjectIdentifier):
            oid = name
        elif not isinstance(name, str):
            raise ConfigError(f"an extended key usage is a name or an OID, not {type(name).__name__}")
        elif name.replace(".", "").isdigit():
            try:
                oid = x509.ObjectIdentifier(name)
            except ValueError:
                raise ConfigError(f"not an object identifier: {name[:60]!r}") from None
        else:
            found = EXTENDED_KEY_USAGES.get(_canonical(name))
            if found is None:
                raise ConfigError(f"unknown extended key usage {name!r}; known: {', '.join(EXTENDED_KEY_USAGES)}")
            oid = found
        if oid not in out:
            out.append(oid)
    return tuple(out)


@dataclass(frozen=True)
class SubjectAltNames:
    """The subject alternative names of one request, by kind."""

    dns_names: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> SubjectAltNames:
        """From `dns:host`, `uri:urn:uuid:...`, `email:a@b`, `ip:10.0.0.1`.

        An untagged entry is inferred strictly: an IP address, then `a@b` (no colon) as an
        email, then `scheme://...` or `urn:...` as a URI, then a plain host name as DNS;
        anything else (`host:8443`, `mailto:x`) is a ConfigError asking for a tag. A `urn:...`
        is never taken as a DNS name. Tagged `uri:` takes any RFC 3986 scheme.
        """
        found: dict[str, list[str]] = {tag: [] for tag in _TAGS}
        for entry in entries:
            kind, sep, value = entry.partition(":")
            if sep and kind.lower() in _TAGS:
                found[kind.lower()].append(value)
            elif _is_ip(entry):
                found["ip"].append(entry)
            elif "@" in entry and ":" not in entry:
                found["email"].append(entry)
            elif _URI.fullmatch(entry) and ("://" in entry or entry.lower().startswith("urn:")):
                found["uri"].append(entry)
            elif _DNS.fullmatch(entry):
                found["dns"].append(entry)
            else:
                raise ConfigError(f"cannot tell what kind of name {entry[:80]!r} is: "
                                  "write dns:NAME, uri:URI, email:ADDRESS or ip:ADDRESS")
        return cls(*(tuple(found[tag]) for tag in _TAGS))

    @classmethod
    def from_extension(cls, value: x509.SubjectAlternativeName) -> SubjectAltNames:
        """The names of an existing SAN extension, by kind (other kinds are left out)."""
        return cls(
            tuple(value.get_values_for_type(x509.DNSName)),
            tuple(value.get_values_for_type(x509.UniformResourceIdentifier)),
            tuple(value.get_values_for_type(x509.RFC822Name)),
            tuple(str(ip) for ip in value.get_values_for_type(x509.IPAddress)),
        )

    def __bool__(self) -> bool:
        return bool(self.dns_names or self.uris or self.emails or self.ip_addresses)

    def all(self) -> tuple[str, ...]:
        """Every name, tagged as `parse` reads it back."""
        return (
            tuple(f"dns:{v}" for v in self.dns_names)
            + tuple(f"uri:{v}" for v in self.uris)
            + tuple(f"email:{v}" for v in self.emails)
            + tuple(f"ip:{v}" for v in self.ip_addresses)
        )

    def extension(self) -> x509.SubjectAlternativeName:
        """The SubjectAlternativeName extension value; ConfigError for a name that cannot be one."""
        names: list[x509.GeneralName] = []
        try:
            names += [x509.DNSName(v) for v in self.dns_names]
            names += [x509.UniformResourceIdentifier(v) for v in self.uris]
            names += [x509.RFC822Name(v) for v in self.emails]
            names += [x509.IPAddress(ipaddress.ip_address(v)) for v in self.ip_addresses]
        except ValueError as e:
            raise ConfigError(f"invalid subject alternative name: {e}") from e
        for value in self.uris:
            if not _URI.fullmatch(value):
                raise ConfigError(f"URI SAN {value[:80]!r} is not an absolute URI with a scheme "
                                  "(e.g. spiffe://trust-domain/path, urn:uuid:...)")
        return x509.SubjectAlternativeName(names)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
