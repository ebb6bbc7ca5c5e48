"""Certificate serial numbers: new ones, and one spelling for every way a user writes one.

`0x0AB`, `ab`, `AB`, `00:ab` and `171` (an int) are the same serial; `serial_id` turns any of
them into the one key the revocation store and the CRL use (lower-case hex, no leading
zeros), so one certificate cannot be revoked twice under two spellings.
"""

from __future__ import annotations

import re
import secrets

from cryptography import x509

from signers.errors import ConfigError

__all__ = ["MAX_SERIAL_BITS", "new_serial", "parse_serial", "serial_id"]

MAX_SERIAL_BITS = 159  # RFC 5280 4.1.2.2: a positive integer of at most 20 octets
_HEX = re.compile(r"[0-9a-f]+")


def new_serial() -> int:
    """A positive 128-bit random serial (RFC 5280 allows up to 20 octets; CA/B asks for 64+ random bits)."""
    while True:
        serial = secrets.randbits(128)
        if serial:
            return serial


def parse_serial(serial: int | str | x509.Certificate) -> int:
    """The serial as an int, from an int, a certificate, or hex text (`0x`, colons, case, leading zeros allowed).

    Text is always hexadecimal (as `openssl x509 -serial` and the CRL print it). Raises
    ConfigError for anything else, for zero or negative serials and for more than 20 octets.
    """
    if isinstance(serial, x509.Certificate):
        return serial.serial_number
    if isinstance(serial, bool) or not isinstance(serial, int | str):
        raise ConfigError(f"a certificate serial is hex text or an int, not {type(serial).__name__}")
    if isinstance(serial, str):
        text = serial.strip().lower().replace(":", "")
        text = text.removeprefix("0x")
        if not _HEX.fullmatch(text):
            raise ConfigError(f"certificate serial {serial[:60]!r} is not hexadecimal")
        number = int(text, 16)
    else:
        number = serial
    if number <= 0:
        raise ConfigError("a certificate serial must be positive (RFC 5280 4.1.2.2)")
    if number.bit_length() > MAX_SERIAL_BITS:
        raise ConfigError("a certificate serial has at most 20 octets (RFC 5280 4.1.2.2)")
    return number


def serial_id(serial: int | str | x509.Certificate) -> str:
    """The revocation-store key for a serial: lower-case hex without leading zeros. Raises as parse_serial."""
    return format(parse_serial(serial), "x")
