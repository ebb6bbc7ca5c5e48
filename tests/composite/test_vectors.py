"""The draft authors' vectors: every implemented variant imports, matches, verifies and refuses tampering."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest
from cryptography import x509

from signers.composite import (
    UNIMPLEMENTED,
    CompositeAlgorithm,
    CompositePublicKey,
    CompositeSigner,
    import_pkcs8,
    import_private_key,
)
from signers.composite.der import parse_algorithm_identifier, parse_spki
from signers.errors import AlgorithmNotSupported, InvalidSignature
from signers.x509.der import split_sequence

from .vectors import Case, load

VECTORS = load()
IMPLEMENTED = [c for c in VECTORS.cases if c.name not in UNIMPLEMENTED]


def _public_key(case: Case) -> CompositePublicKey:
    return CompositePublicKey.from_bytes(case.name, case.pk)


def test_every_vector_is_implemented_or_listed(summary_lines: list[str]) -> None:
    names = {c.name for c in VECTORS.cases}
    assert {v.value for v in CompositeAlgorithm} | set(UNIMPLEMENTED) == names
    summary_lines.append(f"composite vectors: {len(IMPLEMENTED)} variants implemented and checked")
    for name, why in sorted(UNIMPLEMENTED.items()):
        summary_lines.append(f"composite vectors: {name} NOT IMPLEMENTED ({why})")
        with pytest.raises(AlgorithmNotSupported, match="not implemented"):
            CompositeAlgorithm.parse(name)


@pytest.mark.parametrize("case", IMPLEMENTED, ids=lambda c: c.name)
def test_signatures_verify(case: Case) -> None:
    key = _public_key(case)
    assert key.to_bytes() == case.pk
    key.verify(case.s, VECTORS.message)
    key.verify(case.s_with_context, VECTORS.message, context=VECTORS.context)
    with pytest.raises(InvalidSignature):  # the context is bound
        key.verify(case.s_with_context, VECTORS.message)
    with pytest.raises(InvalidSignature):
        key.verify(case.s, VECTORS.message, context=VECTORS.context)
    with pytest.raises(InvalidSignature):
        key.verify(case.s, VECTORS.message + b".")


@pytest.mark.parametrize("case", IMPLEMENTED, ids=lambda c: c.name)
def test_private_keys_import_and_sign(case: Case) -> None:
    key = _public_key(case)
    mldsa, classical = import_private_key(case.name, case.sk)
    signer = CompositeSigner(mldsa, classical, case.name)
    assert signer.public_key == key
    variant, mldsa8, classical8 = import_pkcs8(case.sk_pkcs8)
    assert variant.value == case.name
    assert CompositeSigner(mldsa8, classical8, variant).public_key == key
    signature = signer.sign(VECTORS.message, context=VECTORS.context)
    key.verify(signature, VECTORS.message, context=VECTORS.context)


@pytest.mark.parametrize("case", IMPLEMENTED, ids=lambda c: c.name)
def test_x5c_self_signature(case: Case) -> None:
    certificate = x509.load_der_x509_certificate(case.x5c)
    variant = CompositeAlgorithm.parse(case.name)
    assert certificate.signature_algorithm_oid.dotted_string == variant.oid
    tbs = split_sequence(certificate.tbs_certificate_bytes)
    oid, raw = parse_spki(tbs[6])
    assert oid == variant.oid and raw == case.pk
    assert parse_algorithm_identifier(tbs[2]) == variant.oid
    key = CompositePublicKey.from_der(tbs[6])
    key.verify(certificate.signature, certificate.tbs_certificate_bytes)
    with pytest.raises(InvalidSignature):
        key.verify(certificate.signature, certificate.tbs_certificate_bytes[:-1] + b"\x00")


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("case", IMPLEMENTED, ids=lambda c: c.name)
def test_either_half_broken_is_refused(case: Case) -> None:
    key = _public_key(case)
    size = key.variant.mldsa_signature_size
    for index in (0, size // 2, size - 1, size, len(case.s) - 1):
        with pytest.raises(InvalidSignature):
            key.verify(_flip(case.s, index), VECTORS.message)
    for cut in (0, size - 1, size, len(case.s) - 1):
        with pytest.raises(InvalidSignature):
            key.verify(case.s[:cut], VECTORS.message)


def test_halves_swapped_between_variants_are_refused() -> None:
    """An ML-DSA half and a traditional half lifted from other variants' signatures never verify."""
    by_name = {c.name: c for c in IMPLEMENTED}
    pairs = [
        ("MLDSA65-Ed25519-SHA512", "MLDSA65-ECDSA-P256-SHA512"),
        ("MLDSA65-ECDSA-P256-SHA512", "MLDSA65-ECDSA-P384-SHA512"),
        ("MLDSA44-Ed25519-SHA512", "MLDSA44-ECDSA-P256-SHA256"),
        ("MLDSA65-RSA3072-PSS-SHA512", "MLDSA65-RSA3072-PKCS15-SHA512"),
        ("MLDSA87-ECDSA-P384-SHA512", "MLDSA87-RSA3072-PSS-SHA512"),
    ]
    for first, second in pairs:
        a, b = by_name[first], by_name[second]
        key_a, key_b = _public_key(a), _public_key(b)
        size = key_a.variant.mldsa_signature_size
        # a's signature checked under b's variant and key, and a signature mixing the halves
        for key, signature in ((key_b, a.s), (key_a, b.s), (key_a, a.s[:size] + b.s[size:]),
                               (key_a, b.s[:size] + a.s[size:])):
            with pytest.raises(InvalidSignature):
                key.verify(signature, VECTORS.message)


def test_halves_in_reverse_order_are_refused() -> None:
    case = next(c for c in IMPLEMENTED if c.name == "MLDSA65-Ed25519-SHA512")
    key = _public_key(case)
    size = key.variant.mldsa_signature_size
    with pytest.raises(InvalidSignature):
        key.verify(case.s[size:] + case.s[:size], VECTORS.message)


def test_vendored_files_match_their_published_checksums() -> None:
    folder = Path(__file__).resolve().parents[1] / "vectors" / "composite"
    listed = re.findall(r"^([0-9a-f]{64})  (\S+)", (folder / "README.md").read_text(), re.MULTILINE)
    assert len(listed) == 3
    for digest, name in listed:
        path = folder / name
        data = gzip.decompress((folder / f"{name}.gz").read_bytes()) if not path.exists() else path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
