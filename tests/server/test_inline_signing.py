"""The issuer service signs on its event loop only with an in-memory key it measured as quick.

A thread hop per passport cost about twice the context switches of signing inline at 8
clients (bench_server.py), so `inline_signing` chooses the loop for a file store's Ed25519 or
P-256 key. These tests hold the rule's edges: a key that is not in this process's memory (an
HSM session, a network call) always keeps the worker pool, however fast it answered; a key
slower than the limit keeps it; a key that cannot sign keeps it (readiness says why); and an
inline `sign_async` really is made on the calling thread, still through the timing wrapper.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from backends.file import FileKeyStore
from signers import KeySpec
from signers.composite.local import LocalSigner
from signers.errors import KeyNotFound
from signers.local_keys import generate_private_key
from signers.server.metrics import Metrics
from signers.server.service import TimedSigner, inline_signing
from signers.signer import BaseSigner, has_own_async, key_in_memory

PASSWORD_ENV = "KEYPLANE_INLINE_TEST_PASSWORD"


@pytest.fixture()
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(PASSWORD_ENV, "inline test password")
    with FileKeyStore.from_uri(f"file:{tmp_path / 'keys'}?password-source=env:{PASSWORD_ENV}") as store:
        yield store


class ThreadRecordingSigner(BaseSigner):
    """A signer whose key is not declared in memory (as an HSM or KMS signer), recording where it signs."""

    def __init__(self) -> None:
        self._local = LocalSigner(generate_private_key(KeySpec.ED25519))
        super().__init__("test:remote", self._local.algorithm, self._local.public_key)
        self.threads: list[int] = []

    def sign(self, message: bytes) -> bytes:
        self.threads.append(threading.get_ident())
        return self._local.sign(message)


def test_a_file_key_is_in_memory_and_quick_enough_to_sign_inline(file_store: Any) -> None:
    signer = file_store.create_key("issuer", KeySpec.ED25519)
    assert key_in_memory(signer) and not has_own_async(signer)
    assert inline_signing(signer, limit=10.0)
    assert not inline_signing(signer, limit=0.0)  # measured slower than the limit: the pool


def test_a_key_outside_this_process_keeps_the_pool_however_fast_it_is() -> None:
    signer = ThreadRecordingSigner()
    assert not key_in_memory(signer)
    assert not inline_signing(signer, limit=10.0)
    assert signer.threads == []  # not even measured: nothing is signed to decide


def test_a_key_that_cannot_sign_keeps_the_pool(file_store: Any) -> None:
    signer = file_store.create_key("gone", KeySpec.P256)
    file_store.delete_key("gone")
    with pytest.raises(KeyNotFound):
        signer.sign(b"x")
    assert not inline_signing(signer, limit=10.0)


def test_an_inline_signature_is_made_on_the_calling_thread_and_timed() -> None:
    inner = ThreadRecordingSigner()
    metrics = Metrics()
    timed = TimedSigner(inner, metrics, inline=True)
    assert has_own_async(timed)  # an audited signature then signs here and appends on the pool

    async def sign() -> tuple[bytes, int]:
        return await timed.sign_async(b"message"), threading.get_ident()

    signature, loop_thread = asyncio.run(sign())
    inner.public_key.verify(signature, b"message", inner.algorithm)
    assert inner.threads == [loop_thread]
    assert "keyplane_backend_seconds" in metrics.render()


def test_without_inline_the_signature_is_made_on_a_worker_thread() -> None:
    inner = ThreadRecordingSigner()
    timed = TimedSigner(inner, Metrics())
    assert not has_own_async(timed)

    async def sign() -> tuple[bytes, int]:
        return await timed.sign_async(b"message"), threading.get_ident()

    signature, loop_thread = asyncio.run(sign())
    inner.public_key.verify(signature, b"message", inner.algorithm)
    assert inner.threads and inner.threads[0] != loop_thread
