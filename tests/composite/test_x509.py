"""Composite certificate chains and CRLs through `signers.x509.verify_chain`, and forged ones refused."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signers import KeySpec
from signers.composite import (
    CompositeAlgorithm,
    CompositeCertificateAuthority,
    CompositeSigner,
    LocalSigner,
    certificate_public_key,
    generate,
    verify_signed_by,
)
from signers.composite.der import algorithm_identifier
from signers.errors import ConfigError, InvalidSignature
from signers.local_keys import generate_private_key
from signers.x509 import CertificateError, Reason, verify_chain
from signers.x509.der import encode_bit_string, encode_sequence, split_sequence

from .vectors import load

V = CompositeAlgorithm


def _composite(variant: CompositeAlgorithm) -> CompositeSigner:
    return CompositeSigner(*generate(variant), variant)


@pytest.fixture(scope="module")
def pki() -> dict[str, object]:
    root = CompositeCertificateAuthority.create_root(_composite(V.MLDSA87_ECDSA_P384_SHA512), "CN=Composite Root",
                                                     path_length=1)
    issuing = root.create_intermediate(_composite(V.MLDSA65_ECDSA_P256_SHA512), "CN=Composite Issuing")
    agent = _composite(V.MLDSA44_ED25519_SHA512)
    leaf = issuing.issue(agent, "CN=agent-7", uris=["spiffe://acme/agent/7"])
    return {"root": root, "issuing": issuing, "agent": agent, "leaf": leaf}


def _der(item: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return item.public_bytes(Encoding.DER)


def _reassemble(certificate: x509.Certificate, *, tbs: bytes | None = None, outer: bytes | None = None,
                signature: bytes | None = None) -> x509.Certificate:
    original_tbs, original_outer, original_bits = split_sequence(_der(certificate))
    bits = encode_bit_string(signature) if signature is not None else original_bits
    return x509.load_der_x509_certificate(encode_sequence(tbs or original_tbs, outer or original_outer, bits))


def test_composite_root_intermediate_leaf_and_crl_verify(pki: dict[str, object]) -> None:
    root, issuing, leaf = pki["root"], pki["issuing"], pki["leaf"]
    assert isinstance(root, CompositeCertificateAuthority) and isinstance(issuing, CompositeCertificateAuthority)
    assert isinstance(leaf, x509.Certificate)
    assert leaf.signature_algorithm_oid.dotted_string == V.MLDSA65_ECDSA_P256_SHA512.oid
    assert leaf.public_key_algorithm_oid.dotted_string == V.MLDSA44_ED25519_SHA512.oid
    assert certificate_public_key(leaf) == pki["agent"].public_key  # type: ignore[attr-defined]
    path = verify_chain(leaf, [issuing.certificate], [root.certificate], crls=[issuing.crl(), root.crl()],
                        require_crl=True, extended_key_usages=["client_auth"])
    assert [c.subject.rfc4514_string() for c in path] == ["CN=agent-7", "CN=Composite Issuing", "CN=Composite Root"]


def test_revoked_composite_leaf_is_refused() -> None:
    root = CompositeCertificateAuthority.create_root(_composite(V.MLDSA65_ED25519_SHA512), "CN=Root R")
    leaf = root.issue(_composite(V.MLDSA65_ED25519_SHA512), "CN=revoked-agent")
    verify_chain(leaf, [], [root.certificate], crl=root.crl())
    root.revoke(leaf, "key_compromise")
    with pytest.raises(CertificateError) as caught:
        verify_chain(leaf, [], [root.certificate], crl=root.crl())
    assert caught.value.reason is Reason.REVOKED


def test_mixed_chains(pki: dict[str, object]) -> None:
    """A classical leaf under the composite CA, and a composite leaf under a classical (Ed25519) root."""
    issuing, root = pki["issuing"], pki["root"]
    assert isinstance(issuing, CompositeCertificateAuthority) and isinstance(root, CompositeCertificateAuthority)
    classical_leaf = issuing.issue(LocalSigner(generate_private_key(KeySpec.P256)), "CN=classical-agent")
    verify_chain(classical_leaf, [issuing.certificate], [root.certificate], crl=issuing.crl())
    classical_root = CompositeCertificateAuthority.create_root(LocalSigner(generate_private_key(KeySpec.ED25519)),
                                                               "CN=Classical Root")
    composite_leaf = classical_root.issue(_composite(V.MLDSA65_ED25519_SHA512), "CN=pq-agent")
    verify_chain(composite_leaf, [], [classical_root.certificate], crl=classical_root.crl())
    composite_leaf.verify_directly_issued_by(classical_root.certificate)  # cryptography checks this one itself


def test_forged_certificates_are_refused(pki: dict[str, object]) -> None:
    issuing, root, leaf = pki["issuing"], pki["root"], pki["leaf"]
    assert isinstance(issuing, CompositeCertificateAuthority) and isinstance(root, CompositeCertificateAuthority)
    assert isinstance(leaf, x509.Certificate)
    size = V.MLDSA65_ECDSA_P256_SHA512.mldsa_signature_size
    signature = leaf.signature
    other_issuing = root.create_intermediate(_composite(V.MLDSA65_ECDSA_P256_SHA512), "CN=Composite Issuing")
    impostor = other_issuing.issue(pki["agent"], "CN=agent-7")  # type: ignore[arg-type]
    forged = {
        "ML-DSA half flipped": _reassemble(leaf, signature=bytes([signature[0] ^ 1]) + signature[1:]),
        "ECDSA half flipped": _reassemble(leaf, signature=signature[:-1] + bytes([signature[-1] ^ 1])),
        "truncated": _reassemble(leaf, signature=signature[:size]),
        "halves swapped": _reassemble(leaf, signature=signature[size:] + signature[:size]),
        "ECDSA half from another issuer": _reassemble(leaf, signature=signature[:size] + impostor.signature[size:]),
        "outer OID of another variant": _reassemble(leaf, outer=algorithm_identifier(V.MLDSA65_ECDSA_P384_SHA512.oid)),
    }
    tbs = split_sequence(leaf.tbs_certificate_bytes)
    tbs[2] = algorithm_identifier(V.MLDSA65_ED25519_SHA512.oid)
    forged["inner OID differs from outer"] = _reassemble(leaf, tbs=encode_sequence(*tbs))
    for why, certificate in forged.items():
        with pytest.raises(CertificateError) as caught:
            verify_chain(certificate, [issuing.certificate], [root.certificate])
            pytest.fail(why)
        assert caught.value.reason is Reason.BAD_SIGNATURE, why
    with pytest.raises(CertificateError):  # signed by a same-named intermediate with another key
        verify_chain(impostor, [issuing.certificate], [root.certificate])


def test_forged_crl_is_refused(pki: dict[str, object]) -> None:
    issuing, root, leaf = pki["issuing"], pki["root"], pki["leaf"]
    assert isinstance(issuing, CompositeCertificateAuthority) and isinstance(root, CompositeCertificateAuthority)
    assert isinstance(leaf, x509.Certificate)
    crl = issuing.crl()
    tbs, outer, _ = split_sequence(_der(crl))
    bad_signature = bytearray(crl.signature)
    bad_signature[-1] ^= 1
    forged = x509.load_der_x509_crl(encode_sequence(tbs, outer, encode_bit_string(bytes(bad_signature))))
    with pytest.raises(CertificateError) as caught:
        verify_chain(leaf, [issuing.certificate], [root.certificate], crl=forged)
    assert caught.value.reason is Reason.BAD_CRL
    with pytest.raises(InvalidSignature):
        verify_signed_by(crl, root.certificate)  # the right CRL, the wrong issuer


def test_ca_certificate_must_hold_the_signers_key(pki: dict[str, object]) -> None:
    root = pki["root"]
    assert isinstance(root, CompositeCertificateAuthority)
    with pytest.raises(ConfigError):
        CompositeCertificateAuthority(_composite(V.MLDSA87_ECDSA_P384_SHA512), root.certificate)
    with pytest.raises(ConfigError, match="signs only"):
        root.issue(_composite(V.MLDSA44_ED25519_SHA512), "CN=x", key_usages=["digital_signature", "key_agreement"])


def test_vector_certificates_verify_with_the_composite_verifier() -> None:
    vectors = load()
    checked = 0
    for case in vectors.cases:
        variant = CompositeAlgorithm.by_oid(x509.load_der_x509_certificate(case.x5c).signature_algorithm_oid.dotted_string)
        if variant is None:
            continue
        certificate = x509.load_der_x509_certificate(case.x5c)
        verify_signed_by(certificate, certificate)
        verify_chain(certificate, [], [certificate])
        checked += 1
    assert checked == len(list(CompositeAlgorithm))
