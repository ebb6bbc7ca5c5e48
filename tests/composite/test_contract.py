"""The KeyStore / Signer contract, checked on the composite: store (the harness's rows, by hand).

The conformance harness iterates KeySpecs, which composite variants are not; until it takes
composite variants as specs, these are its checks for ``composite:`` over two file stores.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import signers
from signers import KeyStore, Signer
from signers.composite import CompositeAlgorithm, CompositeKeyStore, composite_uri
from signers.errors import AlgorithmNotSupported, AuthenticationFailed, InvalidSignature, KeyNotFound

V = CompositeAlgorithm
PASSWORD = "composite-contract-password"


@pytest.fixture
def store_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KEYPLANE_TEST_COMPOSITE_PASSWORD", PASSWORD)
    source = "?password-source=env:KEYPLANE_TEST_COMPOSITE_PASSWORD"
    return composite_uri(None, f"file:{tmp_path / 'pq'}{source}", f"file:{tmp_path / 'trad'}{source}")


@pytest.mark.parametrize("variant", [V.MLDSA65_ED25519_SHA512, V.MLDSA87_ECDSA_P384_SHA512], ids=str)
def test_contract(store_uri: str, variant: CompositeAlgorithm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with signers.open_store(store_uri) as store:
        assert isinstance(store, KeyStore) and isinstance(store, CompositeKeyStore)
        signer = store.create_key("k1", variant)
        assert isinstance(signer, Signer)
        reopened = signers.open(next(iter(store.list_keys())).uri)
        assert reopened.public_key == signer.public_key and reopened.key_id == signer.key_id
        for message in (b"", b"short", b"\x00" * (1 << 20)):
            signature = signer.sign(message)
            reopened.public_key.verify(signature, message)
            with pytest.raises(InvalidSignature):
                signer.public_key.verify(signature, message + b"x")
            flipped = bytearray(signature)
            flipped[len(flipped) // 2] ^= 0x10
            with pytest.raises(InvalidSignature):
                signer.public_key.verify(bytes(flipped), message)
        other = store.create_key("k2", variant)
        with pytest.raises(InvalidSignature):
            other.public_key.verify(signer.sign(b"m"), b"m")
        with pytest.raises(KeyNotFound):
            store.open("absent", variant)
        with pytest.raises(AlgorithmNotSupported):
            store.create_key("k3", "Ed25519")
        with ThreadPoolExecutor(8) as pool:
            signatures = list(pool.map(lambda i: signer.sign(b"%d" % i), range(32)))
        for i, s in enumerate(signatures):
            signer.public_key.verify(s, b"%d" % i)
        signer.public_key.verify(asyncio.run(signer.sign_async(b"a")), b"a")
        store.delete_key("k2")
        assert [i.name for i in store.list_keys()] == ["k1"]
    for text in (repr(signer), signer.uri, caplog.text):
        assert PASSWORD not in text


def test_bad_credentials_in_one_half(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with signers.open_store(store_uri) as store:
        signer = store.create_key("k1", V.MLDSA65_ED25519_SHA512)
    monkeypatch.setenv("KEYPLANE_TEST_COMPOSITE_PASSWORD", "wrong")
    with pytest.raises(AuthenticationFailed):
        signers.open(signer.uri)


def test_failed_create_leaves_neither_store_changed(store_uri: str) -> None:
    with signers.open_store(store_uri) as store:
        store.create_key("k1", V.MLDSA65_ED25519_SHA512)
        classical = store._store("classical")
        classical.delete_key("k1")
        classical.create_key("k2", "Ed25519")
        pq = store._store("mldsa")
        with pytest.raises(signers.KeyExists):
            store.create_key("k2", V.MLDSA65_ED25519_SHA512)  # ML-DSA made, Ed25519 exists: rolled back
        assert sorted(i.name for i in pq.list_keys()) == ["k1"]
