"""Azure sign_async on azure.keyvault.keys.crypto.aio (aiohttp), against the HTTPS emulator.

No worker thread: a default executor that refuses work proves it; signatures verify like
`sign`'s, in several event loops one after another, and errors are translated the same way.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from backends.azure_keyvault import AzureKeyVaultKeyStore
from conformance.emulators.azure_keyvault import Handle
from signers.algorithms import KeySpec
from signers.errors import ConfigError, KeyDisabled
from signers.signer import NativeAsyncSigner, capabilities_of
from tests.fixtures.azure import TOKEN_ENV

pytest.importorskip("aiohttp", reason="aiohttp not installed (keyplane[azure] needs it for native async)")


class _NoSigningThreads(ThreadPoolExecutor):
    """A default executor that refuses to run a signer's blocking sign (asyncio.to_thread's shape).

    aiohttp itself uses the default executor for a netrc lookup and DNS; that is allowed.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        inner = [fn, *(fn.args if isinstance(fn, functools.partial) else ())]
        if {getattr(f, "__name__", "") for f in inner} & {"sign", "_sign_digest"}:
            raise AssertionError(f"sign_async ran {fn!r} in a worker thread")
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.RSA2048])
def test_sign_async_is_native_and_verifies(store: AzureKeyVaultKeyStore, name: str, spec: KeySpec) -> None:
    signer = store.create_key(name, spec)
    assert isinstance(signer, NativeAsyncSigner) and "native-async" in capabilities_of(store).protocols

    async def run() -> list[bytes]:
        asyncio.get_running_loop().set_default_executor(_NoSigningThreads())
        try:
            return await asyncio.gather(*(signer.sign_async(b"m%d" % i) for i in range(24)))
        finally:
            await signer.aclose()

    for _ in range(2):  # a second event loop gets its own pipeline
        for i, signature in enumerate(asyncio.run(run())):
            signer.public_key.verify(signature, b"m%d" % i, signer.algorithm)


def test_sign_async_errors_are_translated(store: AzureKeyVaultKeyStore, azure_emulator: Handle, name: str) -> None:
    signer = store.create_key(name, KeySpec.P256)
    store.disable_key(name)

    async def run() -> bytes:
        try:
            return await signer.sign_async(b"x")
        finally:
            await signer.aclose()

    with pytest.raises(KeyDisabled):
        asyncio.run(run())
    store.enable_key(name)
    uri = f"azurekms://{azure_emulator.url.removeprefix('https://')}?token-source=env:{TOKEN_ENV}"
    with AzureKeyVaultKeyStore.from_uri(uri.replace("?", f"?ca-bundle={azure_emulator.ca_pem_path}&")) as trusted:
        key = trusted.open(name)
    with AzureKeyVaultKeyStore.from_uri(uri) as untrusted:  # no CA bundle: the async path refuses the cert too
        stray = untrusted._signer(key._key, key.algorithm)

        async def untrusted_run() -> bytes:
            try:
                return await stray.sign_async(b"x")
            finally:
                await stray.aclose()

        with pytest.raises(ConfigError, match="ca-bundle"):
            asyncio.run(untrusted_run())
