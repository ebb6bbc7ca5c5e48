"""Signing throughput and latency of a store, single-threaded and from N threads.

Used by ``keyplane bench``. Each key spec gets a fresh key (deleted afterwards where the
store can), one warm-up signature, then two timed phases of `seconds` each. Latency is
per `sign()` call, as the caller sees it, including the round trip to the service.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from signers.algorithms import KeySpec
from signers.registry import open_store
from signers.signer import KeyStore, Signer

__all__ = ["BenchResult", "run_bench"]

MESSAGE = b"keyplane bench message: 32 bytes"  # short, so the figure is the signing, not the hashing


@dataclass(frozen=True)
class BenchResult:
    spec: str
    mode: str  # "single" or "N threads"
    threads: int
    signatures: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_bench(
    uri: str, specs: Sequence[KeySpec] | None = None, *, threads: int = 8, seconds: float = 2.0,
    key_prefix: str = "kpbench",
) -> list[BenchResult]:
    """Benchmark every spec in `specs` (default: every spec the store claims)."""
    results: list[BenchResult] = []
    run_id = secrets.token_hex(3)
    with open_store(uri) as store:
        wanted = list(specs) if specs else [s for s in KeySpec if s in store.capabilities.key_specs]
        for spec in wanted:
            name = f"{key_prefix}-{run_id}-{re.sub(r'[^a-z0-9]+', '-', spec.value.lower()).strip('-')}"
            signer, created = _key(store, spec, name)
            try:
                signer.sign(MESSAGE)  # warm-up: sessions, connections, caches
                results.append(_measure(signer, spec, 1, seconds))
                if threads > 1:
                    results.append(_measure(signer, spec, threads, seconds))
            finally:
                if created and store.capabilities.delete:
                    store.delete_key(name)
    return results


def _key(store: KeyStore, spec: KeySpec, name: str) -> tuple[Signer, bool]:
    if store.capabilities.create:
        return store.create_key(name, spec), True
    # A store that cannot create keys: the key provisioned for the conformance harness.
    slug = re.sub(r"[^a-z0-9]+", "-", spec.value.lower()).strip("-")
    return store.open(f"kpconf-{slug}"), False


def _measure(signer: Signer, spec: KeySpec, threads: int, seconds: float) -> BenchResult:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def work(index: int) -> None:
        barrier.wait()
        own = latencies[index]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                return
            try:
                signer.sign(MESSAGE)
            except Exception:
                errors[index] += 1
                continue
            own.append(time.perf_counter() - t0)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    merged = sorted(x for per_thread in latencies for x in per_thread)
    return BenchResult(
        spec=spec.value,
        mode="single" if threads == 1 else f"{threads} threads",
        threads=threads,
        signatures=len(merged),
        seconds=elapsed,
        per_second=len(merged) / elapsed if elapsed else 0.0,
        p50_ms=_percentile(merged, 0.50) * 1000,
        p99_ms=_percentile(merged, 0.99) * 1000,
        errors=sum(errors),
    )


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
