"""sign_many over Transit's batch_input: chunked, in order, per-item errors typed, successes kept."""

from __future__ import annotations

import asyncio
import os

import pytest

from backends import vault_signer
from backends.vault_transit import VaultTransitKeyStore
from signers.algorithms import KeySpec
from signers.errors import BatchSignError, ConfigError, KeyNotFound
from signers.signer import BatchSigner

from .conftest import refuse_item


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256, KeySpec.RSA2048, KeySpec.ML_DSA_44], ids=str)
def test_batch_signatures_verify_in_order(store: VaultTransitKeyStore, key_name: str, spec: KeySpec,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_signer, "BATCH_ITEMS", 7)  # several chunks, the last one short
    signer = store.create_key(key_name, spec)
    assert isinstance(signer, BatchSigner)
    messages = [os.urandom(i % 50) for i in range(30)]
    signatures = signer.sign_many(messages)
    assert len(signatures) == len(messages)
    for message, signature in zip(messages, signatures, strict=True):
        signer.public_key.verify(signature, message, signer.algorithm)
    assert signer.sign_many([]) == []
    again = asyncio.run(signer.sign_many_async(messages[:3]))
    for message, signature in zip(messages[:3], again, strict=True):
        signer.public_key.verify(signature, message, signer.algorithm)


def test_a_failed_item_is_typed_and_the_others_are_kept(store: VaultTransitKeyStore, key_name: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    signer = store.create_key(key_name, KeySpec.ED25519)
    poisoned = b"poison"
    refuse_item(signer, monkeypatch, poisoned)  # Transit refuses that one item
    messages = [b"a", b"b", poisoned, b"d"]
    with pytest.raises(BatchSignError) as caught:
        signer.sign_many(messages)
    results = caught.value.results
    assert len(results) == 4 and isinstance(results[2], ConfigError) and "base64" in str(results[2])
    for index in (0, 1, 3):
        signature = results[index]
        assert isinstance(signature, bytes)
        signer.public_key.verify(signature, messages[index])

    async def concurrently() -> list[object]:  # coalesced into one batch: the refusal is its caller's only
        return list(await asyncio.gather(*(signer.sign_async(m) for m in messages), return_exceptions=True))

    each = asyncio.run(concurrently())
    assert isinstance(each[2], ConfigError) and "base64" in str(each[2])
    for index in (0, 1, 3):
        signature = each[index]
        assert isinstance(signature, bytes)
        signer.public_key.verify(signature, messages[index])


def test_a_replaced_key_stops_the_batch(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, KeySpec.P256)
    store.delete_key(key_name)
    store.create_key(key_name, KeySpec.P256)  # same name, same version 1, another key
    with pytest.raises(KeyNotFound, match="no longer the key"):
        signer.sign_many([b"x", b"y"])


def test_chunks_respect_items_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_signer, "BATCH_ITEMS", 3)
    monkeypatch.setattr(vault_signer, "BATCH_BYTES", 10)
    assert vault_signer._chunks(["a"] * 7) == [(0, 3), (3, 6), (6, 7)]
    assert vault_signer._chunks(["x" * 6, "x" * 6, "x" * 20, "x"]) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert vault_signer._chunks([]) == []
