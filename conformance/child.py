"""The concurrency checks, run in a child process so a crashing back end cannot take the run down.

Parent side: `run_concurrency()` starts ``python -m conformance.child``, sends it a job
(store URI, plugins, the keys made by the run and their public keys) on stdin, and reads
one JSON event per line from stdout. A child killed by a signal (a segfault in a native
module) or silent for too long becomes a FAIL for the key spec it was working on, and the
remaining specs go to a fresh child.

Child side: re-open the store from the URI (so the URI plus environment must be enough),
open each key, record its key_id (compared with the parent's: stable across processes),
then sign from 8 threads (each as many times as the measured latency allows, at most 200)
and with 64 concurrent ``sign_async`` calls while a ticker on the event loop measures how
long the loop stalls, verifying every signature (or the configured sample) against the
public key the parent saw. It reports the ECDSA ``r`` of every signature for the nonce
check and watches its own logs for secrets.
"""

from __future__ import annotations

import asyncio
import base64
import faulthandler
import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from signers.algorithms import KeyFamily
from signers.registry import open_store

from .leaks import LeakWatch
from .specs import parse_algorithm, parse_spec, public_key_from_der
from .target import load_plugins
from .wire import Supervised, emit

__all__ = ["ASYNC_CALLS", "THREADS", "ChildKey", "ChildOutcome", "async_check", "run_concurrency", "stall_limit",
           "threads_check"]

THREADS = 8
PER_THREAD = 200
ASYNC_CALLS = 64


@dataclass(frozen=True)
class ChildKey:
    spec: str
    name: str
    public_key_der: bytes
    algorithm: str
    per_thread: int = PER_THREAD
    latency: float = 0.0  # measured seconds per signature (shown in the row)


@dataclass
class ChildOutcome:
    """What the child said (or how it died) for one key spec."""

    key_id: str | None = None
    threads: tuple[bool, str, float] | None = None  # (ok, detail, seconds)
    async_: tuple[bool, str, float] | None = None
    loop: tuple[bool, str, float] | None = None  # the event-loop stall verdict
    nonces: list[tuple[str, str]] = field(default_factory=list)  # (r hex, message digest prefix), ECDSA only
    crash: str | None = None  # why there is no result: signal, hang, start-up failure


@dataclass
class ChildRun:
    outcomes: dict[str, ChildOutcome] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)


# -- parent side ------------------------------------------------------------------------


def run_concurrency(
    uri: str,
    keys: Sequence[ChildKey],
    *,
    env: Mapping[str, str],
    plugins: Mapping[str, str],
    secrets: Sequence[str],
    spec_timeout: float,
    stall: float = 0.1,
    sample: float = 1.0,
    on_outcome: Callable[[str, ChildOutcome], None] | None = None,
    on_leak: Callable[[str], None] | None = None,
) -> ChildRun:
    """Run the concurrency checks for `keys`, one child at a time until every spec has an outcome."""
    run = ChildRun()
    remaining = list(keys)
    settings = _Settings(uri, env, plugins, secrets, spec_timeout, {"stall": stall, "sample": sample}, on_outcome)
    while remaining:
        done = _one_child(settings, remaining, run)
        remaining = [k for k in remaining if k.spec not in done]
    if on_leak is not None:
        for finding in run.leaks:
            on_leak(f"child process {finding}")
    return run


@dataclass(frozen=True)
class _Settings:
    """What every child of one `run_concurrency` shares."""

    uri: str
    env: Mapping[str, str]
    plugins: Mapping[str, str]
    secrets: Sequence[str]
    spec_timeout: float
    options: Mapping[str, float]
    on_outcome: Callable[[str, ChildOutcome], None] | None


def _one_child(settings: _Settings, keys: Sequence[ChildKey], run: ChildRun) -> set[str]:
    """Run one child; returns the specs that got an outcome (a result, a crash or a hang)."""
    job = {
        "uri": settings.uri,
        "plugins": dict(settings.plugins),
        "secrets": list(settings.secrets),
        "options": dict(settings.options),
        "keys": [
            {"spec": k.spec, "name": k.name, "algorithm": k.algorithm, "per_thread": k.per_thread,
             "latency": k.latency, "public_key": base64.b64encode(k.public_key_der).decode()}
            for k in keys
        ],
    }
    child = Supervised("conformance.child", job, settings.env, settings.spec_timeout)
    done: set[str] = set()
    opened: dict[str, str] = {}  # key_ids seen before any result, kept even if the child then dies
    current: str | None = None
    for event in child.events():
        kind = event["event"]
        if kind == "start":
            current = event["spec"]
            child.deadline = time.monotonic() + settings.spec_timeout
        elif kind == "opened":
            opened[event["spec"]] = event["key_id"]
        elif kind == "result":
            outcome = ChildOutcome(
                key_id=event.get("key_id"),
                threads=_verdict(event.get("threads")),
                async_=_verdict(event.get("async")),
                loop=_verdict(event.get("loop")),
                nonces=[(r, m) for r, m in event.get("nonces", [])],
                crash=event.get("error"),
            )
            _outcome(settings, run, done, event["spec"], outcome)
            current = None
        elif kind == "leaks":
            run.leaks.extend(f for f in event["findings"] if f not in run.leaks)
    rc = child.finish()
    why = child.death(rc, settings.spec_timeout, "child process", "", settings.secrets, run.leaks)
    # The spec being worked on when the child died fails; the rest go to the next child. A child
    # that died between specs (or before the first) takes every spec without an outcome with it.
    unfinished = [current] if current is not None else [k.spec for k in keys if k.spec not in done]
    for spec in unfinished:
        _outcome(settings, run, done, spec, ChildOutcome(key_id=opened.get(spec), crash=why))
    return done


def _outcome(settings: _Settings, run: ChildRun, done: set[str], spec: str, outcome: ChildOutcome) -> None:
    run.outcomes[spec] = outcome
    done.add(spec)
    if settings.on_outcome:
        settings.on_outcome(spec, outcome)


def _verdict(value: Any) -> tuple[bool, str, float] | None:
    """A (ok, detail, seconds) triple from JSON (where it is a list)."""
    if not value:
        return None
    ok, detail, seconds = value
    return bool(ok), str(detail), float(seconds)


# -- child side -------------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


Verdict = tuple[bool, str, float, list[tuple[bytes, bytes]]]  # (ok, detail, seconds, (message, signature) pairs)


def threads_check(signer: Any, verify: Callable[[bytes, bytes], bool], spec: str, per_thread: int = PER_THREAD,
                  sample: float = 1.0) -> Verdict:
    """`THREADS` threads sign `per_thread` messages each, all starting together."""
    results: list[list[tuple[bytes, bytes]]] = [[] for _ in range(THREADS)]
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)

    def work(index: int) -> None:
        barrier.wait()  # all threads start signing together, to overlap as much as possible
        for i in range(per_thread):
            message = f"keyplane conformance {spec} thread {index} #{i}".encode()
            try:
                results[index].append((message, signer.sign(message)))
            except Exception as e:
                errors.append(_describe(e))

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,), name=f"conformance-{i}") for i in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    pairs = [p for per_thread_results in results for p in per_thread_results]
    ok, detail, seconds = _judge(f"{THREADS} threads x {per_thread}", THREADS * per_thread, pairs, errors, verify,
                                 seconds, sample)
    return ok, detail, seconds, pairs


def stall_limit(stall: float, latency: float) -> float:
    """The longest stall allowed: `stall`, or half of `ASYNC_CALLS` signatures one after another if more.

    A `sign_async` that signs on the loop's thread stalls it for about ASYNC_CALLS x latency in
    one stretch; worker threads of a CPU-bound signer (file keys, RSA-4096) contending for the
    GIL cause shorter stalls that do not mean the loop is blocked.
    """
    return max(stall, 0.5 * ASYNC_CALLS * latency)


def async_check(signer: Any, verify: Callable[[bytes, bytes], bool], spec: str,
                stall: float = 0.1, latency: float = 0.0) -> tuple[Verdict, tuple[bool, str, float]]:
    """64 concurrent `sign_async` while a ticker measures the event loop's longest stall.

    The event-loop verdict fails when `sign_async` returns without ever yielding to the loop
    (it signed on the loop's thread: deterministic, whatever the machine's load), or when the
    loop stalls beyond `stall_limit` in three runs and beyond four times the stall of the same
    signatures made in worker threads (`asyncio.to_thread(signer.sign)`, the control) plus the
    limit: a busy machine or a signer that holds the GIL stalls the control about as much; a
    `sign_async` that yields once and then signs on the loop's thread stalls it for the whole batch.
    """
    limit = stall_limit(stall, latency)
    messages = [f"keyplane conformance {spec} async #{i}".encode() for i in range(ASYNC_CALLS)]

    def own(message: bytes) -> Any:
        return signer.sign_async(message)

    def control(message: bytes) -> Any:
        return asyncio.to_thread(signer.sign, message)

    started = time.perf_counter()
    outcomes, longest, yielded = asyncio.run(_ticked(own, messages))
    seconds = time.perf_counter() - started
    control_ms = None
    for _ in range(2):  # a loop blocked by sign_async stalls every run; a busy machine only some
        if longest <= limit:
            break
        longest = min(longest, asyncio.run(_ticked(own, messages))[1])
    if longest > limit:
        control_ms = asyncio.run(_ticked(control, messages))[1] * 1000
    errors = [_describe(o) for o in outcomes if isinstance(o, BaseException)]
    pairs = [(m, o) for m, o in zip(messages, outcomes, strict=True) if isinstance(o, bytes)]
    ok, detail, seconds = _judge(f"{ASYNC_CALLS} concurrent sign_async", ASYNC_CALLS, pairs, errors, verify, seconds)
    ms = longest * 1000
    compared = f"; the control (sign in worker threads) stalled {control_ms:.0f} ms" if control_ms is not None else ""
    if not yielded:
        verdict = (False, "sign_async returned without ever yielding to the event loop: it signs on the loop's "
                          f"thread and blocks it (longest stall {ms:.0f} ms)", seconds)
    elif longest > limit and control_ms is not None and ms > 4 * control_ms + limit * 1000:
        verdict = (False, f"the event loop stalled for {ms:.0f} ms (the shortest of three runs; limit {limit * 1000:.0f} ms)"
                          f" while {ASYNC_CALLS} sign_async ran{compared}: sign_async blocks the loop", seconds)
    else:
        verdict = (True, f"sign_async yields; longest stall {ms:.1f} ms while {ASYNC_CALLS} sign_async ran "
                         f"(limit {limit * 1000:.0f} ms{compared})", seconds)
    return (ok, detail, seconds, pairs), verdict


async def _ticked(start: Callable[[bytes], Any], messages: list[bytes]) -> tuple[list[Any], float, bool]:
    """Run `start(m)` for every message at once under a ticker: (outcomes, longest stall, every call yielded)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    longest, tick = 0.0, 0.005
    yielded: list[bool] = []

    async def ticker() -> None:
        nonlocal longest
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(tick)
            longest = max(longest, loop.time() - before - tick)

    async def one(message: bytes) -> Any:
        ran = [False]
        loop.call_soon(ran.__setitem__, 0, True)  # runs only if the call gives the loop a turn
        try:
            return await start(message)
        finally:
            yielded.append(ran[0])

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    outcomes = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
    done.set()
    await task
    return list(outcomes), longest, all(yielded)


def nonces_of(pairs: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    out = []
    for message, signature in pairs:
        try:
            r, _ = decode_dss_signature(signature)
        except ValueError:
            continue
        out.append((format(r, "x"), hashlib.sha256(message).hexdigest()[:16]))
    return out


def _judge(
    what: str,
    expected: int,
    pairs: list[tuple[bytes, bytes]],
    errors: list[str],
    verify: Callable[[bytes, bytes], bool],
    seconds: float,
    sample: float = 1.0,
) -> tuple[bool, str, float]:
    step = 1 if sample >= 1.0 else max(1, round(1 / max(sample, 1e-6)))
    checked = pairs[::step]
    bad = sum(1 for message, signature in checked if not verify(signature, message))
    lost = expected - len(pairs) - len(errors)
    problems = []
    if errors:
        problems.append(f"{len(errors)} errors (first: {errors[0]})")
    if lost:
        problems.append(f"{lost} signatures lost")
    if bad:
        problems.append(f"{bad} of {len(checked)} signatures checked do not verify")
    if problems:
        return False, f"{what}: " + "; ".join(problems), seconds
    rate = expected / seconds if seconds > 0 else float("inf")
    verified = f"{expected} verified" if step == 1 else f"{len(checked)} of {expected} verified (sample 1/{step})"
    return True, f"{what}: {verified} ({rate:.0f}/s)", seconds


def child_main() -> int:
    faulthandler.enable()  # a segfault prints the Python stack to stderr, which the parent quotes
    job = json.loads(sys.stdin.read())
    watch = LeakWatch(job["secrets"])
    with watch:
        load_plugins(job["plugins"])
        try:
            store = open_store(job["uri"])
        except Exception as e:
            watch.check_exception("opening the store in a child process", e)
            for key in job["keys"]:
                emit({"event": "result", "spec": key["spec"], "error": f"child could not open the store: {_describe(e)}"})
            emit({"event": "leaks", "findings": watch.findings})
            return 0
        watch.check("repr(store) in a child process", f"{store!r} {store.uri}")
        for key in job["keys"]:
            spec = key["spec"]
            emit({"event": "start", "spec": spec})
            try:
                signer = store.open(key["name"])
            except Exception as e:
                watch.check_exception("open in a child process", e)
                emit({"event": "result", "spec": spec, "error": f"child could not open {key['name']}: {_describe(e)}"})
                continue
            watch.check("repr(signer) in a child process", f"{signer!r} {signer.uri}")
            emit({"event": "opened", "spec": spec, "key_id": signer.key_id})
            public_key = public_key_from_der(parse_spec(spec), base64.b64decode(key["public_key"]))
            algorithm = parse_algorithm(parse_spec(spec), key["algorithm"])

            def verify(signature: bytes, message: bytes, pk: Any = public_key, alg: Any = algorithm) -> bool:
                return pk.is_valid(signature, message, alg)

            options = job.get("options", {})
            threads = threads_check(signer, verify, spec, int(key.get("per_thread", PER_THREAD)),
                                    float(options.get("sample", 1.0)))
            latency = float(key.get("latency", 0.0))
            async_, loop = async_check(signer, verify, spec, float(options.get("stall", 0.1)), latency)
            nonces = nonces_of(threads[3] + async_[3]) if public_key.family is KeyFamily.EC else []
            note = f" (latency {latency * 1000:.1f} ms/signature)" if latency else ""
            emit({"event": "result", "spec": spec, "key_id": signer.key_id, "threads": [*threads[:1],
                  threads[1] + note, threads[2]], "async": list(async_[:3]), "loop": list(loop), "nonces": nonces})
        try:
            store.close()
        except Exception as e:
            watch.check_exception("close in a child process", e)
    emit({"event": "leaks", "findings": watch.findings})
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
