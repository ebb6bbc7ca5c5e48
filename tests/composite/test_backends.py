"""Must show: an ML-DSA-65 key in OpenBao and an Ed25519 key in SoftHSM2 sign one passport together.

Both halves run on the real services (OpenBao dev server's Transit over HTTP, SoftHSM2
through PKCS#11), started by the session fixtures. The passport verifies offline from a
JWKS file; flipping one byte in either half of its signature is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

import signers
from signers import KeySpec
from signers.composite import (
    CompositeAlgorithm,
    CompositeSigner,
    LocalSigner,
    MuSigner,
    composite_jwks,
    composite_uri,
)
from signers.errors import AlgorithmNotSupported, ConfigError, InvalidSignature, TokenInvalid
from signers.jose import JWKS
from signers.keys import b64url_decode, b64url_encode
from signers.local_keys import generate_private_key
from signers.passport import code_hash_of, issue_passport, verify_passport

VARIANT = CompositeAlgorithm.MLDSA65_ED25519_SHA512


@pytest.fixture(scope="module")
def hybrid(openbao_store_uri: str, softhsm_store_uri: str) -> CompositeSigner:
    name = f"composite-{uuid.uuid4().hex[:8]}"
    with signers.open_store(openbao_store_uri) as bao:
        pq = bao.create_key(name, KeySpec.ML_DSA_65)
    with signers.open_store(softhsm_store_uri) as hsm:
        ed = hsm.create_key(name, KeySpec.ED25519)
    signer = signers.open(composite_uri(VARIANT, pq.uri, ed.uri))
    assert isinstance(signer, CompositeSigner)
    return signer


def _flip(token: str, index: int) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[index] ^= 0x01
    return f"{header}.{payload}.{b64url_encode(bytes(raw))}"


def test_passport_from_openbao_and_softhsm_verifies_offline(hybrid: CompositeSigner, tmp_path: Path) -> None:
    assert hybrid.mldsa_signer.uri.startswith("hashivault:") and hybrid.classical_signer.uri.startswith("pkcs11:")
    agent = LocalSigner(generate_private_key(KeySpec.ED25519))
    token = issue_passport(hybrid, sub="agent-7", name="Agent Seven", agent_key=agent.public_key,
                           code_hash=code_hash_of(b"code"), stage="production", trust_score=80, scopes=["read"])
    path = tmp_path / "jwks.json"
    composite_jwks(hybrid).write(path)
    # offline: a fresh process would have only the file and the token
    passport = verify_passport(token, JWKS.load(path))
    assert passport.issuer_kid == hybrid.key_id and passport.sub == "agent-7"
    size = VARIANT.mldsa_signature_size
    for index, half in ((0, "ML-DSA (OpenBao)"), (size // 2, "ML-DSA (OpenBao)"), (size, "Ed25519 (SoftHSM2)"),
                        (size + 63, "Ed25519 (SoftHSM2)")):
        with pytest.raises(TokenInvalid):
            verify_passport(_flip(token, index), JWKS.load(path))
            pytest.fail(f"a flipped byte in the {half} half was accepted")


def test_halves_in_parallel_and_async(hybrid: CompositeSigner) -> None:
    message = b"x" * 100_000
    signature = hybrid.sign(message)
    hybrid.public_key.verify(signature, message)
    signature = asyncio.run(hybrid.sign_async(message))
    hybrid.public_key.verify(signature, message)
    with pytest.raises(InvalidSignature):
        hybrid.public_key.verify(signature, message + b"!")


def test_reopened_by_uri_has_the_same_key_id(hybrid: CompositeSigner) -> None:
    again = signers.open(hybrid.uri)
    assert again.key_id == hybrid.key_id
    again.public_key.verify(again.sign(b"m"), b"m")


def test_sign_mu_hooks_refuse_bad_input(hybrid: CompositeSigner, file_store_uri: str) -> None:
    """The external-mu signing added to the OpenBao and file signers: exact 64 bytes, ML-DSA keys only."""
    bao_signer = hybrid.mldsa_signer
    with signers.open_store(file_store_uri) as store:
        file_pq, file_ed = store.create_key("pq", KeySpec.ML_DSA_65), store.create_key("ed", KeySpec.ED25519)
    for half in (bao_signer, file_pq):
        assert isinstance(half, MuSigner)
        for bad in (b"", b"\x00" * 63, b"\x00" * 65):
            with pytest.raises(ConfigError):
                half.sign_mu(bad)
        mu = hybrid._mu(VARIANT.message_representative(b"m"))  # the mu the composite signs
        signature = half.sign_mu(mu)
        half.public_key.verify_mu(signature, mu)
    with pytest.raises(AlgorithmNotSupported):
        file_ed.sign_mu(b"\x00" * 64)  # type: ignore[attr-defined]
