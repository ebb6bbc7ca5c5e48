"""Timing helpers shared by the benchmark scripts (run as `python benchmarks/bench_X.py`).

Every script compares keyplane with the raw SDK call in the same run; these helpers make
sure both sides are timed the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def sample_for(fn: Callable[[], Any], seconds: float) -> list[float]:
    """Call `fn` back to back for `seconds`; the duration of each call, in seconds."""
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def summarize(samples: list[float]) -> tuple[float, float, float]:
    """(calls per second, p50 ms, p99 ms) of sequential per-call durations in seconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return len(samples) / sum(samples), statistics.median(ordered) * 1e3, p99 * 1e3


@dataclass(frozen=True)
class CallRun:
    seconds: float  # wall time for all calls
    latencies_ms: list[float]
    cpu_seconds: float  # this process's CPU time over the run

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds


def run_calls(fn: Callable[[], Any], ops: int, threads: int) -> CallRun:
    """`ops` calls of `fn` spread over `threads` threads (1: a plain loop), each call timed."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        started = time.perf_counter()
        fn()
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)

    cpu, started = time.process_time(), time.perf_counter()
    if threads == 1:
        for i in range(ops):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(ops)))
    return CallRun(time.perf_counter() - started, latencies, time.process_time() - cpu)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, inclusive method."""
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def comparison_options(doc: str | None, default_ops: int, argv: list[str] | None,
                       hidden: tuple[str, ...] = ()) -> argparse.Namespace:
    """The options of a keyplane-vs-raw-SDK script: --ops, --threads, --json (and `hidden` path options)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=default_ops, help="signatures per implementation and mode")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    for name in hidden:
        parser.add_argument(name, type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def save_results(path: Path | None, results: list[Any]) -> None:
    """Write the result dataclasses as JSON to `path` (nothing when None)."""
    if path is not None:
        path.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


@dataclass(frozen=True)
class Timed:
    """One implementation's figures for one case (a message size, a key type) and mode of a comparison."""

    case: str
    mode: str
    impl: str
    ops: int
    per_second: float
    p50_ms: float
    p99_ms: float


def p50_ratios(results: Sequence[Timed], baseline: str) -> list[str]:
    """Per result, its p50 over that of the `baseline` implementation's result of the same case and mode ("" for those)."""
    base: dict[tuple[str, str], Timed] = {}
    out = []
    for r in results:
        if r.impl == baseline:
            base[(r.case, r.mode)] = r
            out.append("")
        else:
            out.append(f"{r.p50_ms / base[(r.case, r.mode)].p50_ms:.2f}")
    return out
