"""The DER a composite key needs beyond signers.x509.der: OIDs, AlgorithmIdentifiers, SPKI, OCTET STRING.

Composite keys and signatures are raw concatenations (no ASN.1 inside); only their wrappers
are DER: SubjectPublicKeyInfo, the signature AlgorithmIdentifier (parameters absent) and
PKCS#8 OneAsymmetricKey. `cryptography` refuses OIDs it does not know, so these few
structures are read and written here (strict DER, ConfigError on anything else).
"""

from __future__ import annotations

from signers.errors import ConfigError
from signers.x509.der import encode_bit_string, encode_sequence, encode_tlv, split_sequence

__all__ = [
    "algorithm_identifier",
    "decode_oid",
    "element_content",
    "encode_oid",
    "parse_algorithm_identifier",
    "parse_spki",
    "spki",
]

OID = 0x06
OCTET_STRING = 0x04
BIT_STRING = 0x03
INTEGER = 0x02


def encode_oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER element from its dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode_tlv(OID, bytes(body))


def element_content(element: bytes, tag: int, what: str) -> bytes:
    """The content octets of one complete element with `tag`; ConfigError otherwise."""
    if not element or element[0] != tag:
        raise ConfigError(f"DER: {what} has the wrong tag")
    # split_sequence checks lengths strictly; wrap the element in a SEQUENCE to reuse it.
    (inner,) = split_sequence(encode_sequence(element))
    header = 2 if inner[1] < 0x80 else 2 + (inner[1] & 0x7F)
    return inner[header:]


def decode_oid(element: bytes) -> str:
    body = element_content(element, OID, "OBJECT IDENTIFIER")
    if not body or body[-1] & 0x80:
        raise ConfigError("DER: malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value, starting = 0, True
    for octet in body:
        if starting and octet == 0x80:
            raise ConfigError("DER: OBJECT IDENTIFIER arc not minimally encoded")
        value = (value << 7) | (octet & 0x7F)
        starting = not octet & 0x80
        if starting:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def algorithm_identifier(oid: str) -> bytes:
    """AlgorithmIdentifier with parameters absent (what every composite OID requires)."""
    return encode_sequence(encode_oid(oid))


def parse_algorithm_identifier(element: bytes) -> str:
    """The OID of an AlgorithmIdentifier whose parameters are absent; ConfigError if they are present."""
    parts = split_sequence(element)
    if len(parts) != 1:
        raise ConfigError("DER: composite AlgorithmIdentifier must have absent parameters")
    return decode_oid(parts[0])


def spki(oid: str, public_key: bytes) -> bytes:
    """SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }."""
    return encode_sequence(algorithm_identifier(oid), encode_bit_string(public_key))


def parse_spki(der: bytes) -> tuple[str, bytes]:
    """(algorithm OID, subjectPublicKey octets) of a SubjectPublicKeyInfo."""
    parts = split_sequence(der)
    if len(parts) != 2:
        raise ConfigError("DER: SubjectPublicKeyInfo must have two elements")
    bits = element_content(parts[1], BIT_STRING, "subjectPublicKey")
    if not bits or bits[0] != 0:
        raise ConfigError("DER: subjectPublicKey must be whole octets")
    return parse_algorithm_identifier(parts[0]), bits[1:]
