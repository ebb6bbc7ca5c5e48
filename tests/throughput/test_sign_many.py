"""sign_many / sign_many_async on every back end, against the real servers.

Each back end either has its own batch call (Vault/OpenBao Transit, tested in tests/vault)
or BaseSigner's default, which loops and, where the service answers concurrent requests,
spreads the batch over `batch_width` lanes (PKCS#11: the session pool; AWS / Azure / GCP:
the client's connections). Checked here for each: every signature verifies with
`cryptography` (through PublicKey.verify), results come back in input order, and one
failing item is reported for that item with the other signatures kept.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from signers.errors import BatchSignError, KeyNotFound
from signers.signer import BaseSigner, BatchSigner, Signer

from .conftest import POISON, poisoned


def _verify_all(signer: Signer, messages: list[bytes], signatures: list[bytes]) -> None:
    assert len(signatures) == len(messages)
    for message, signature in zip(messages, signatures, strict=True):
        signer.public_key.verify(signature, message, signer.algorithm)  # raises InvalidSignature if not


def test_every_backend_offers_sign_many_and_results_verify_in_order(signer: Signer) -> None:
    assert isinstance(signer, BatchSigner)
    # distinct messages: a signature swapped between two items fails verification
    messages = [os.urandom(1 + i % 40) + i.to_bytes(2, "big") for i in range(23)]
    _verify_all(signer, messages, signer.sign_many(messages))
    assert signer.sign_many([]) == []
    _verify_all(signer, messages[:9], asyncio.run(signer.sign_many_async(messages[:9])))


def test_a_failing_item_is_reported_for_that_item_and_the_rest_kept(signer: Signer) -> None:
    if type(signer).sign_many is not BaseSigner.sign_many:
        pytest.skip("this back end has its own batch call, whose per-item errors tests/vault covers")
    messages = [b"m%d" % i for i in range(11)]
    messages[6] = POISON
    failing = poisoned(signer)
    for run in (failing.sign_many, lambda m: asyncio.run(failing.sign_many_async(m))):
        with pytest.raises(BatchSignError) as caught:
            run(messages)
        results = caught.value.results
        assert list(caught.value.errors) == [6]
        assert isinstance(results[6], KeyNotFound)
        good = [i for i in range(len(messages)) if i != 6]
        _verify_all(signer, [messages[i] for i in good], [results[i] for i in good])  # type: ignore[misc]


class _RefusingExecutor(ThreadPoolExecutor):
    """A default executor that refuses keyplane's work: a signature made there fails the test.

    An async SDK's own use of the loop's executor (aiohttp resolves netrc and DNS there) is
    the SDK's business and still runs; what is refused is any call into signers / backends,
    however wrapped (asyncio.to_thread wraps it in a partial of Context.run).
    """

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        target, rest = fn, args
        while True:
            if isinstance(target, functools.partial):
                target, rest = target.func, target.args + rest
            elif getattr(target, "__qualname__", "") == "Context.run" and rest:
                target, rest = rest[0], rest[1:]
            else:
                break
        module = getattr(target, "__module__", "") or ""
        if module.split(".")[0] in ("signers", "backends") or module == __name__:
            raise AssertionError(f"the event loop's default executor was used for {target!r}")
        return super().submit(fn, *args, **kwargs)


def _on_refusing_loop(coro_factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_RefusingExecutor(max_workers=1))
    try:
        return loop.run_until_complete(coro_factory())
    finally:
        loop.close()


def test_sign_async_never_uses_the_default_executor(signer: Signer) -> None:
    with pytest.raises(AssertionError, match="default executor"):  # the refusing loop does refuse
        _on_refusing_loop(lambda: asyncio.to_thread(signer.sign, b"m"))

    async def many_at_once() -> list[bytes]:
        return list(await asyncio.gather(*(signer.sign_async(b"x%d" % i) for i in range(12))))

    messages = [b"x%d" % i for i in range(12)]
    _verify_all(signer, messages, _on_refusing_loop(many_at_once))
    _verify_all(signer, messages, _on_refusing_loop(lambda: signer.sign_many_async(messages)))
