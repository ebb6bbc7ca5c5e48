"""signers.workers: bounded, configurable pools; a batch spread from inside its own pool cannot deadlock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from backends.file import FileKeyStore
from signers.algorithms import KeySpec
from signers.errors import ConfigError
from signers.workers import WorkerPool, configure_io_workers, io_pool, run_blocking


@pytest.mark.parametrize("bad", [0, -1, 1025, True, "8"])
def test_pool_sizes_outside_the_range_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        WorkerPool("t", bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        configure_io_workers(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [("7", "7"), ("", "32"), ("many", "ConfigError"), ("0", "ConfigError")])
def test_keyplane_io_workers_sizes_the_process_pool(value: str, expected: str) -> None:
    code = ("from signers.workers import io_pool\nfrom signers.errors import ConfigError\n"
            "try:\n    print(io_pool().max_workers)\nexcept ConfigError:\n    print('ConfigError')\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KEYPLANE_IO_WORKERS": value},
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert out == expected


def test_run_blocking_runs_on_the_pool_it_is_given() -> None:
    pool = WorkerPool("probe", 2)
    try:
        assert asyncio.run(run_blocking(pool.in_worker, pool=pool)) is True
        assert asyncio.run(run_blocking(io_pool().in_worker)) is True
        assert pool.in_worker() is False
    finally:
        pool.shutdown()


def test_a_batch_spread_from_inside_its_own_full_pool_runs_inline(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("inline", KeySpec.ED25519)
    pool = WorkerPool("one", 1)  # one thread: lanes submitted to it from it would wait forever
    signer.batch_width = 4
    signer.worker_pool = lambda: pool  # type: ignore[method-assign]
    try:
        messages = [b"%d" % i for i in range(9)]
        signatures = pool.executor().submit(signer.sign_many, messages).result(timeout=60)
        for message, signature in zip(messages, signatures, strict=True):
            signer.public_key.verify(signature, message, signer.algorithm)
        assert len(signer.sign_many(messages)) == 9  # and from outside, spread over the pool
    finally:
        pool.shutdown()
