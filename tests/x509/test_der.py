"""The tiny DER codec: lengths in every form, strictness, and a real certificate split and re-joined."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from signers.errors import ConfigError
from signers.x509.der import encode_bit_string, encode_sequence, encode_tlv, split_sequence


@pytest.mark.parametrize(("size", "header"), [(0, "3000"), (127, "307f"), (128, "308180"), (255, "3081ff"),
                                              (256, "30820100"), (65536, "3083010000")])
def test_length_forms(size: int, header: str) -> None:
    encoded = encode_tlv(0x30, b"\x00" * size)
    assert encoded.hex().startswith(header)
    assert len(encoded) == len(header) // 2 + size


@given(st.lists(st.binary(max_size=300), max_size=6))
def test_sequence_round_trip(contents: list[bytes]) -> None:
    elements = [encode_tlv(0x04, c) for c in contents]
    assert split_sequence(encode_sequence(*elements)) == elements


def test_bit_string_has_no_unused_bits() -> None:
    assert encode_bit_string(b"\xab\xcd") == bytes.fromhex("030300abcd")


@pytest.mark.parametrize("bad", [
    "", "30", "3080", "0400", "300104", "3081050000000000",  # empty, truncated, indefinite, not a SEQUENCE, short
    "30820003000000", "3000ff",  # non-minimal length, trailing data
    "3003040500",  # inner element runs past its SEQUENCE
])
def test_strictness(bad: str) -> None:
    with pytest.raises(ConfigError):
        split_sequence(bytes.fromhex(bad))


def test_split_and_rejoin_a_certificate(file_key) -> None:  # type: ignore[no-untyped-def]
    from signers.x509 import CertificateAuthority

    ca = CertificateAuthority.create_root(file_key("der", "P-256"), "CN=DER test")
    der = ca.chain[0].public_bytes(Encoding.DER)
    tbs, algorithm, signature = split_sequence(der)
    assert tbs == ca.chain[0].tbs_certificate_bytes
    assert encode_sequence(tbs, algorithm, signature) == der
    assert x509.load_der_x509_certificate(encode_sequence(tbs, algorithm, signature)) == ca.chain[0]
