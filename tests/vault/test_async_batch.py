"""Concurrent `sign_async` on Transit: the calls of one loop tick share one batch_input request.

Each caller still gets what `sign` would give it: its own verified signature, its own
item's typed error (the other callers' signatures are unaffected), or the error of the
request as a whole (a replaced key: KeyNotFound for every caller of that batch).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import pytest

from backends.vault_transit import VaultTransitKeyStore
from signers.algorithms import KeySpec
from signers.errors import ConfigError, KeyNotFound


def _count_requests(store: VaultTransitKeyStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of the sign requests sent (1 for a plain sign), by wrapping our own connection."""
    sizes: list[int] = []
    real = store.connection.post_json

    def post_json(path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        if "/sign/" in path:
            sizes.append(len(body.get("batch_input", [None])))
        return real(path, body, what)

    monkeypatch.setattr(store.connection, "post_json", post_json)
    return sizes


async def _all(signer: Any, messages: list[bytes]) -> list[Any]:
    return list(await asyncio.gather(*(signer.sign_async(m) for m in messages), return_exceptions=True))


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256], ids=str)
def test_64_concurrent_calls_go_out_as_one_request_and_each_verifies(
    store: VaultTransitKeyStore, key_name: str, spec: KeySpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = store.create_key(key_name, spec)
    sizes = _count_requests(store, monkeypatch)
    messages = [os.urandom(16) + bytes([i]) for i in range(64)]
    signatures = asyncio.run(_all(signer, messages))
    assert sizes == [64]
    for message, signature in zip(messages, signatures, strict=True):
        assert isinstance(signature, bytes)
        signer.public_key.verify(signature, message, signer.algorithm)  # each caller got its own message's


def test_a_lone_call_is_a_plain_sign_and_calls_of_later_ticks_are_later_batches(
    store: VaultTransitKeyStore, key_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = store.create_key(key_name, KeySpec.ED25519)
    sizes = _count_requests(store, monkeypatch)

    async def scenario() -> None:
        signer.public_key.verify(await signer.sign_async(b"alone"), b"alone")
        first = await _all(signer, [b"a", b"b", b"c"])
        second = await _all(signer, [b"d", b"e"])
        for message, signature in zip([b"a", b"b", b"c", b"d", b"e"], first + second, strict=True):
            signer.public_key.verify(signature, message)

    asyncio.run(scenario())
    asyncio.run(scenario())  # a second event loop: nothing is left over from the first
    assert sizes == [1, 3, 2, 1, 3, 2]


def test_a_replaced_key_fails_every_caller_of_the_batch(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, KeySpec.P256)
    store.delete_key(key_name)
    store.create_key(key_name, KeySpec.P256)  # same name, same version 1, another key
    results = asyncio.run(_all(signer, [b"x", b"y", b"z"]))
    assert all(isinstance(r, KeyNotFound) and "no longer the key" in str(r) for r in results), results


def test_a_cancelled_caller_leaves_the_others_signed(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, KeySpec.ED25519)

    async def scenario() -> list[Any]:
        tasks = [asyncio.ensure_future(signer.sign_async(b"m%d" % i)) for i in range(5)]
        await asyncio.sleep(0)  # yield once: every task has joined the pending batch (not a timing wait)
        tasks[1].cancel()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(scenario())
    assert isinstance(results[1], asyncio.CancelledError)
    for index in (0, 2, 3, 4):
        signer.public_key.verify(results[index], b"m%d" % index)


def test_a_message_that_is_not_bytes_is_a_typed_error(store: VaultTransitKeyStore, key_name: str) -> None:
    signer = store.create_key(key_name, KeySpec.ED25519)
    results = asyncio.run(_all(signer, [b"ok", "text", b"fine"]))  # type: ignore[list-item]
    assert isinstance(results[1], ConfigError)
    signer.public_key.verify(results[0], b"ok")
    signer.public_key.verify(results[2], b"fine")
