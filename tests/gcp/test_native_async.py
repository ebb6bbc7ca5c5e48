"""Cloud KMS sign_async on the SDK's async gRPC client (NativeAsyncSigner), against the emulator.

No worker thread: the signatures come from grpc.aio, concurrently, and verify like `sign`'s.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from signers.algorithms import KeySpec
from signers.errors import KeyNotFound
from signers.signer import NativeAsyncSigner, capabilities_of

gcp_kms = pytest.importorskip("backends.gcp_kms", reason="backends.gcp_kms failed to import (keyplane[gcp])")


class _NoWorkerThreads(ThreadPoolExecutor):
    """A default executor that refuses work: a sign_async that hides a thread behind it fails."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise AssertionError(f"sign_async ran {fn!r} in a worker thread")


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.ED25519, KeySpec.ML_DSA_44])
def test_sign_async_is_native_and_verifies(store: Any, spec: KeySpec) -> None:
    signer = store.create_key(f"aio-{uuid.uuid4().hex[:8]}", spec)
    assert isinstance(signer, NativeAsyncSigner)
    assert "native-async" in capabilities_of(store).protocols

    async def run() -> list[bytes]:
        asyncio.get_running_loop().set_default_executor(_NoWorkerThreads())  # to_thread would fail here
        try:
            return await asyncio.gather(*(signer.sign_async(b"m%d" % i) for i in range(32)))
        finally:
            await signer.aclose()

    signatures = asyncio.run(run())
    for i, signature in enumerate(signatures):
        signer.public_key.verify(signature, b"m%d" % i, signer.algorithm)


def test_sign_async_in_a_second_event_loop_and_after_deletion(store: Any) -> None:
    name = f"aio-{uuid.uuid4().hex[:8]}"
    signer = store.create_key(name, KeySpec.P256)
    for _ in range(2):  # a fresh loop each time: the client of a closed loop is not reused
        signature = asyncio.run(signer.sign_async(b"again"))
        signer.public_key.verify(signature, b"again", signer.algorithm)
    store.delete_key(name)

    async def after() -> None:
        try:
            await signer.sign_async(b"gone")
        finally:
            await signer.aclose()

    with pytest.raises(KeyNotFound):
        asyncio.run(after())
