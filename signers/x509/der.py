"""The little DER this package needs: split a SEQUENCE into its elements, and build one.

A certificate, CRL and CSR all share the outer shape SEQUENCE{toBeSigned, AlgorithmIdentifier,
BIT STRING}; re-signing one with a remote key means taking the first two elements verbatim and
writing a new BIT STRING. That is all this module does, so it stays far smaller than a
general ASN.1 library (and adds no dependency).
"""

from __future__ import annotations

from signers.errors import ConfigError

__all__ = ["SEQUENCE", "BIT_STRING", "encode_bit_string", "encode_sequence", "encode_tlv", "split_sequence"]

SEQUENCE = 0x30
BIT_STRING = 0x03


def _encode_length(length: int) -> bytes:
    """Definite-length form: short for < 128, else 0x80|n followed by n big-endian octets."""
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode_tlv(tag: int, content: bytes) -> bytes:
    """One element with a single-octet tag (all this package writes)."""
    return bytes([tag]) + _encode_length(len(content)) + content


def encode_sequence(*elements: bytes) -> bytes:
    """SEQUENCE of already-encoded elements."""
    return encode_tlv(SEQUENCE, b"".join(elements))


def encode_bit_string(data: bytes) -> bytes:
    """BIT STRING of whole octets (no unused bits): what every X.509 signature value is."""
    return encode_tlv(BIT_STRING, b"\x00" + data)


def _read_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the element at `offset`; ConfigError on anything not strict DER."""
    if offset + 2 > len(data):
        raise ConfigError("DER: truncated element header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise ConfigError("DER: multi-octet tags are not expected here")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise ConfigError("DER: indefinite length is not DER")
    else:
        count = first & 0x7F
        if count > 4 or pos + count > len(data):
            raise ConfigError("DER: unreasonable length field")
        raw = data[pos : pos + count]
        if raw[0] == 0 or (count == 1 and raw[0] < 0x80):
            raise ConfigError("DER: length not minimally encoded")
        length = int.from_bytes(raw, "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ConfigError("DER: element runs past the end of the data")
    return tag, pos, end


def split_sequence(der: bytes) -> list[bytes]:
    """The encoded elements (tag, length and content each) of the one SEQUENCE that is `der`."""
    tag, start, end = _read_element(der, 0)
    if tag != SEQUENCE:
        raise ConfigError(f"DER: expected a SEQUENCE, found tag 0x{tag:02x}")
    if end != len(der):
        raise ConfigError("DER: trailing data after the SEQUENCE")
    elements = []
    offset = start
    while offset < end:
        _, _, element_end = _read_element(der, offset)
        if element_end > end:
            raise ConfigError("DER: element runs past its SEQUENCE")
        elements.append(der[offset:element_end])
        offset = element_end
    return elements
