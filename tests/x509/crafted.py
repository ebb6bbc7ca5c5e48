"""Crafted certificate chains for the validator scenarios, built directly with `cryptography`.

`Forge(kind)` holds one local private key per role and makes certificates and CRLs with
exactly the fields a scenario needs (wrong AKI, a CRL scoped to CA certificates, names that
differ only in case, malformed extensions, ...). A `Chain` is one verification question.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from signers.x509.der import encode_bit_string, encode_sequence, split_sequence

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
KINDS = ("P-256", "Ed25519", "RSA-PSS", "ML-DSA-65")
CA_USAGE = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
LEAF_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
NO_CRL_SIGN = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")


def name(text: str) -> x509.Name:
    return x509.Name.from_rfc4514_string(text)


@dataclass
class Chain:
    """verify_chain(leaf, intermediates, roots, crls=crls, **options); `cli` is extra `openssl verify` flags."""

    leaf: x509.Certificate
    intermediates: Sequence[x509.Certificate]
    roots: Sequence[x509.Certificate]
    crls: Sequence[x509.CertificateRevocationList] = ()
    options: dict[str, Any] = field(default_factory=dict)


_KEYS: dict[tuple[str, str], Any] = {}


class Forge:
    """Keys and signing for one key kind; every key is made once per process and role."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def key(self, role: str) -> Any:
        if (self.kind, role) not in _KEYS:
            if self.kind == "P-256":
                made: Any = ec.generate_private_key(ec.SECP256R1())
            elif self.kind == "Ed25519":
                made = ed25519.Ed25519PrivateKey.generate()
            elif self.kind == "RSA-PSS":
                made = rsa.generate_private_key(65537, 2048)
            else:
                made = mldsa.MLDSA65PrivateKey.generate()
            _KEYS[(self.kind, role)] = made
        return _KEYS[(self.kind, role)]

    def sign(self, builder: Any, key: Any) -> Any:
        if self.kind == "P-256":
            return builder.sign(key, hashes.SHA256())
        if self.kind == "RSA-PSS":
            return builder.sign(key, hashes.SHA256(),
                                rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH))
        return builder.sign(key, None)

    def cert(
        self,
        subject: str | x509.Name,
        role: str,
        issuer: str | x509.Name,
        issuer_role: str,
        *,
        ca: bool | None = False,
        path_length: int | None = None,
        usage: x509.KeyUsage | None = None,
        eku: Sequence[x509.ObjectIdentifier] | None = None,
        not_before: datetime.datetime = NOW - HOUR,
        not_after: datetime.datetime = NOW + DAY,
        serial: int = 1000,
        aki: str = "issuer",  # "issuer" (from the issuer's key), "other" (a wrong key id) or "none"
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> x509.Certificate:
        subject_name = name(subject) if isinstance(subject, str) else subject
        issuer_name = name(issuer) if isinstance(issuer, str) else issuer
        public_key = self.key(role).public_key()
        builder = (
            x509.CertificateBuilder().subject_name(subject_name).issuer_name(issuer_name).public_key(public_key)
            .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        usage = usage if usage is not None else (CA_USAGE if ca else LEAF_USAGE)
        builder = builder.add_extension(usage, critical=True)
        if aki != "none":
            source = self.key(issuer_role if aki == "issuer" else "aki-other").public_key()
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(source), critical=False)
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return self.sign(builder, self.key(issuer_role))

    def crl(
        self,
        issuer: str,
        issuer_role: str,
        revoked: Sequence[int] = (),
        *,
        last_update: datetime.datetime = NOW - HOUR,
        next_update: datetime.datetime = NOW + DAY,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(name(issuer))
            .last_update(last_update).next_update(next_update)
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key(issuer_role).public_key()),
                           critical=False)
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - HOUR).build())
        return self.sign(builder, self.key(issuer_role))

    # -- the standard three-level PKI every scenario varies ------------------------------

    def root(self, **changes: Any) -> x509.Certificate:
        return self.cert("CN=Scenario Root,O=keyplane", "root", "CN=Scenario Root,O=keyplane", "root",
                         **{"ca": True, "serial": 1, **changes})

    def issuing(self, **changes: Any) -> x509.Certificate:
        return self.cert("CN=Scenario Issuing,O=keyplane", "issuing", "CN=Scenario Root,O=keyplane", "root",
                         **{"ca": True, "path_length": 0, "serial": 2, **changes})

    def leaf(self, issuer: str | x509.Name = "CN=Scenario Issuing,O=keyplane", **changes: Any) -> x509.Certificate:
        return self.cert("CN=scenario-agent", "leaf", issuer, "issuing", **{"serial": 3, **changes})

    def root_crl(self, revoked: Sequence[int] = (), **changes: Any) -> x509.CertificateRevocationList:
        return self.crl("CN=Scenario Root,O=keyplane", "root", revoked, **changes)

    def issuing_crl(self, revoked: Sequence[int] = (), **changes: Any) -> x509.CertificateRevocationList:
        return self.crl("CN=Scenario Issuing,O=keyplane", "issuing", revoked, **changes)


def flip_signature(certificate: x509.Certificate) -> x509.Certificate:
    """The same certificate with one bit of its signature flipped."""
    tbs, algorithm, bit_string = split_sequence(certificate.public_bytes(Encoding.DER))
    signature = bytearray(bit_string[-len(certificate.signature):])
    signature[len(signature) // 2] ^= 0x01
    return x509.load_der_x509_certificate(encode_sequence(tbs, algorithm, encode_bit_string(bytes(signature))))


def change_contents(certificate: x509.Certificate, old: bytes, new: bytes) -> x509.Certificate:
    """The certificate with bytes of its TBS replaced (same length), the signature left as it was."""
    return x509.load_der_x509_certificate(certificate.public_bytes(Encoding.DER).replace(old, new, 1))


def raw(oid: x509.ObjectIdentifier, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(oid, value)


def printable(text: str) -> x509.Name:
    """The same name with every attribute encoded as PrintableString instead of UTF8String."""
    return x509.Name([x509.NameAttribute(a.oid, str(a.value), _type=x509.name._ASN1Type.PrintableString)
                      for a in x509.Name.from_rfc4514_string(text)])


__all__ = ["CA_USAGE", "DAY", "HOUR", "KINDS", "LEAF_USAGE", "NOW", "NO_CRL_SIGN", "UNKNOWN_OID", "Chain", "Forge",
           "change_contents", "flip_signature", "name", "printable", "raw"]
