"""How a request names things: subjects, SANs, key usages, extended key usages.

Callers and the CLI say `CN=agent-7,O=acme`, `uri:spiffe://acme/agent/7`, `client_auth`; these
helpers turn that into `cryptography` objects, and refuse anything they do not understand
(a typo in a usage name must not silently drop the usage).
"""

from __future__ import annotations

import ipaddress
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
    """An RFC 4514 string (`CN=agent,O=acme`) or a bare common name (`agent`) as an X.509 Name."""
    if isinstance(name, x509.Name):
        return name
    text = name.strip()
    if not text:
        raise ConfigError("empty subject name")
    if "=" not in text:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])
    try:
        return x509.Name.from_rfc4514_string(text)
    except ValueError as e:
        raise ConfigError(f"not an RFC 4514 name: {text!r}") from e


def key_usage(names: Iterable[str]) -> x509.KeyUsage:
    """A KeyUsage extension value with exactly the named bits set."""
    wanted = {_canonical(n) for n in names}
    unknown = wanted - set(KEY_USAGES)
    if unknown:
        raise ConfigError(f"unknown key usage(s) {sorted(unknown)}; known: {', '.join(KEY_USAGES)}")
    flags = {usage: usage in wanted for usage in KEY_USAGES}
    if not flags["key_agreement"] and (flags["encipher_only"] or flags["decipher_only"]):
        raise ConfigError("encipher_only / decipher_only need key_agreement")
    return x509.KeyUsage(**flags)


def extended_key_usage(names: Iterable[str | x509.ObjectIdentifier]) -> tuple[x509.ObjectIdentifier, ...]:
    """EKU OIDs from names (`client_auth`), dotted OIDs (`1.3.6.1.5.5.7.3.2`) or OID objects."""
    out: list[x509.ObjectIdentifier] = []
    for name in names:
        if isinstance(name, x509.ObjectIdentifier):
            oid = name
        elif name.replace(".", "").isdigit():
            oid = x509.ObjectIdentifier(name)
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
        """From `dns:host`, `uri:spiffe://...`, `email:a@b`, `ip:10.0.0.1`; an untagged entry is guessed from its shape."""
        dns: list[str] = []
        uris: list[str] = []
        emails: list[str] = []
        ips: list[str] = []
        for entry in entries:
            kind, sep, value = entry.partition(":")
            kind = kind.lower()
            if sep and kind in ("dns", "uri", "email", "ip"):
                {"dns": dns, "uri": uris, "email": emails, "ip": ips}[kind].append(value)
            elif "://" in entry:
                uris.append(entry)
            elif "@" in entry:
                emails.append(entry)
            elif _is_ip(entry):
                ips.append(entry)
            else:
                dns.append(entry)
        return cls(tuple(dns), tuple(uris), tuple(emails), tuple(ips))

    @classmethod
    def from_extension(cls, value: x509.SubjectAlternativeName) -> SubjectAltNames:
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
        names: list[x509.GeneralName] = []
        try:
            names += [x509.DNSName(v) for v in self.dns_names]
            names += [x509.UniformResourceIdentifier(v) for v in self.uris]
            names += [x509.RFC822Name(v) for v in self.emails]
            names += [x509.IPAddress(ipaddress.ip_address(v)) for v in self.ip_addresses]
        except ValueError as e:
            raise ConfigError(f"invalid subject alternative name: {e}") from e
        for value in self.uris:
            if "://" not in value:
                raise ConfigError(f"URI SAN {value!r} has no scheme (e.g. spiffe://trust-domain/path)")
        return x509.SubjectAlternativeName(names)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
