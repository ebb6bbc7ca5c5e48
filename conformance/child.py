"""The concurrency checks, run in a child process so a crashing back end cannot take the run down.

Parent side: `run_concurrency()` starts ``python -m conformance.child``, sends it a job
(store URI, plugins, the keys made by the run and their public keys) on stdin, and reads
one JSON event per line from stdout. A child killed by a signal (a segfault in a native
module) or silent for too long becomes a FAIL for the key spec it was working on, and the
remaining specs go to a fresh child.

Child side: re-open the store from the URI (so the URI plus environment must be enough),
open each key, record its key_id (compared with the parent's: stable across processes),
then sign from 8 threads x 200 and with 64 concurrent ``sign_async`` calls, verifying every
signature against the public key the parent saw. It also watches its own logs for secrets.
"""

from __future__ import annotations

import asyncio
import base64
import faulthandler
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from signers.algorithms import SignatureAlgorithm
from signers.keys import PublicKey
from signers.registry import open_store

from .leaks import LeakWatch, find_secret, redact
from .target import load_plugins

__all__ = ["ChildKey", "ChildOutcome", "run_concurrency"]

_PREFIX = "@@keyplane-conformance "  # marks our lines; anything else a back end prints is ignored
THREADS = 8
PER_THREAD = 200
ASYNC_CALLS = 64


@dataclass(frozen=True)
class ChildKey:
    spec: str
    name: str
    public_key_der: bytes
    algorithm: str


@dataclass
class ChildOutcome:
    """What the child said (or how it died) for one key spec."""

    key_id: str | None = None
    threads: tuple[bool, str, float] | None = None  # (ok, detail, seconds)
    async_: tuple[bool, str, float] | None = None
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
    on_outcome: Callable[[str, ChildOutcome], None] | None = None,
) -> ChildRun:
    """Run the concurrency checks for `keys`, one child at a time until every spec has an outcome."""
    run = ChildRun()
    remaining = list(keys)
    while remaining:
        done = _one_child(uri, remaining, env, plugins, secrets, spec_timeout, run, on_outcome)
        remaining = [k for k in remaining if k.spec not in done]
    return run


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    child = dict(os.environ)
    child.update(env)
    # The child must import what this process can (the harness, test-only plugins).
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    extra = child.get("PYTHONPATH")
    child["PYTHONPATH"] = os.pathsep.join(paths + ([extra] if extra else []))
    child["PYTHONFAULTHANDLER"] = "1"
    return child


def _one_child(
    uri: str,
    keys: Sequence[ChildKey],
    env: Mapping[str, str],
    plugins: Mapping[str, str],
    secrets: Sequence[str],
    spec_timeout: float,
    run: ChildRun,
    on_outcome: Callable[[str, ChildOutcome], None] | None,
) -> set[str]:
    """Run one child; returns the specs that got an outcome (a result, a crash or a hang)."""
    job = {
        "uri": uri,
        "plugins": dict(plugins),
        "secrets": list(secrets),
        "keys": [
            {"spec": k.spec, "name": k.name, "algorithm": k.algorithm,
             "public_key": base64.b64encode(k.public_key_der).decode()}
            for k in keys
        ],
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(env),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr_tail: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, lines.put), daemon=True).start()
    stderr_pump = threading.Thread(target=_pump, args=(proc.stderr, lambda s: _keep_tail(stderr_tail, s)), daemon=True)
    stderr_pump.start()
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; its exit status tells why below

    done: set[str] = set()
    opened: dict[str, str] = {}  # key_ids seen before any result, kept even if the child then dies
    current: str | None = None
    deadline = time.monotonic() + spec_timeout
    hung = False
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            hung = True
            break
        if line is None:
            break  # stdout closed: the child exited
        if not line.startswith(_PREFIX):
            continue
        event = json.loads(line[len(_PREFIX):])
        kind = event["event"]
        if kind == "start":
            current = event["spec"]
            deadline = time.monotonic() + spec_timeout
        elif kind == "opened":
            opened[event["spec"]] = event["key_id"]
        elif kind == "result":
            outcome = ChildOutcome(
                key_id=event.get("key_id"),
                threads=_verdict(event.get("threads")),
                async_=_verdict(event.get("async")),
                crash=event.get("error"),
            )
            run.outcomes[event["spec"]] = outcome
            done.add(event["spec"])
            current = None
            if on_outcome:
                on_outcome(event["spec"], outcome)
        elif kind == "leaks":
            run.leaks.extend(f for f in event["findings"] if f not in run.leaks)
    if hung:
        proc.kill()
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    stderr_pump.join(5)  # the last lines (a faulthandler traceback) arrive after the exit
    if hung:
        why = f"no result within {spec_timeout:.0f} s (hung); child killed"
    elif rc < 0:
        why = f"child process killed by {_signal_name(-rc)}"
    else:
        why = f"child process exited with status {rc} without a result"
    tail = _tail_text(stderr_tail)
    if tail and find_secret(tail, secrets):
        run.leaks.append(f"stderr of the child process: {redact(tail, secrets)}")
        tail = redact(tail, secrets)
    if tail:
        why += f"; stderr: {tail}"
    # The spec being worked on when the child died fails; the rest go to the next child. A child
    # that died between specs (or before the first) takes every spec without an outcome with it.
    unfinished = [current] if current is not None else [k.spec for k in keys if k.spec not in done]
    for spec in unfinished:
        outcome = ChildOutcome(key_id=opened.get(spec), crash=why)
        run.outcomes[spec] = outcome
        done.add(spec)
        if on_outcome:
            on_outcome(spec, outcome)
    return done


def _verdict(value: Any) -> tuple[bool, str, float] | None:
    """A (ok, detail, seconds) triple from JSON (where it is a list)."""
    if not value:
        return None
    ok, detail, seconds = value
    return bool(ok), str(detail), float(seconds)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _pump(stream: Any, put: Callable[[str | None], None]) -> None:
    for raw in iter(stream.readline, b""):
        put(raw.decode("utf-8", "replace").rstrip("\n"))
    put(None)


def _keep_tail(tail: list[str], line: str | None) -> None:
    if line is not None:
        tail.append(line)
        del tail[:-400]


def _tail_text(tail: list[str]) -> str:
    """What explains a death: faulthandler's "Fatal Python error" line and the top of the crashing
    thread's stack when there is one, else the last lines of stderr."""
    lines = [line.strip() for line in tail if line.strip()]
    fatal = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
    if fatal:
        start = fatal[-1]
        current = next((i for i in range(start, len(lines)) if lines[i].startswith("Current thread")), None)
        keep = [lines[start]] + (lines[current: current + 5] if current is not None else [])
    else:
        keep = lines[-6:]
    return " | ".join(keep)[:800]


# -- child side -------------------------------------------------------------------------


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(_PREFIX + json.dumps(event) + "\n")
    sys.stdout.flush()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _threads_check(signer: Any, verify: Callable[[bytes, bytes], bool], spec: str) -> tuple[bool, str, float]:
    results: list[list[tuple[bytes, bytes]]] = [[] for _ in range(THREADS)]
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)

    def work(index: int) -> None:
        barrier.wait()  # all threads start signing together, to overlap as much as possible
        for i in range(PER_THREAD):
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
    pairs = [p for per_thread in results for p in per_thread]
    return _judge(f"{THREADS} threads x {PER_THREAD}", THREADS * PER_THREAD, pairs, errors, verify, seconds)


def _async_check(signer: Any, verify: Callable[[bytes, bytes], bool], spec: str) -> tuple[bool, str, float]:
    messages = [f"keyplane conformance {spec} async #{i}".encode() for i in range(ASYNC_CALLS)]

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(signer.sign_async(m) for m in messages), return_exceptions=True)

    started = time.perf_counter()
    outcomes = asyncio.run(all_at_once())
    seconds = time.perf_counter() - started
    errors = [_describe(o) for o in outcomes if isinstance(o, BaseException)]
    pairs = [(m, o) for m, o in zip(messages, outcomes, strict=True) if isinstance(o, bytes)]
    return _judge(f"{ASYNC_CALLS} concurrent sign_async", ASYNC_CALLS, pairs, errors, verify, seconds)


def _judge(
    what: str,
    expected: int,
    pairs: list[tuple[bytes, bytes]],
    errors: list[str],
    verify: Callable[[bytes, bytes], bool],
    seconds: float,
) -> tuple[bool, str, float]:
    bad = sum(1 for message, signature in pairs if not verify(signature, message))
    lost = expected - len(pairs) - len(errors)
    problems = []
    if errors:
        problems.append(f"{len(errors)} errors (first: {errors[0]})")
    if lost:
        problems.append(f"{lost} signatures lost")
    if bad:
        problems.append(f"{bad} of {len(pairs)} signatures do not verify")
    if problems:
        return False, f"{what}: " + "; ".join(problems), seconds
    rate = expected / seconds if seconds > 0 else float("inf")
    return True, f"{what}: {expected} verified ({rate:.0f}/s)", seconds


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
                _emit({"event": "result", "spec": key["spec"], "error": f"child could not open the store: {_describe(e)}"})
            _emit({"event": "leaks", "findings": watch.findings})
            return 0
        watch.check("repr(store) in a child process", f"{store!r} {store.uri}")
        for key in job["keys"]:
            spec = key["spec"]
            _emit({"event": "start", "spec": spec})
            try:
                signer = store.open(key["name"])
            except Exception as e:
                watch.check_exception("open in a child process", e)
                _emit({"event": "result", "spec": spec, "error": f"child could not open {key['name']}: {_describe(e)}"})
                continue
            watch.check("repr(signer) in a child process", f"{signer!r} {signer.uri}")
            _emit({"event": "opened", "spec": spec, "key_id": signer.key_id})
            public_key = PublicKey.from_der(base64.b64decode(key["public_key"]))
            algorithm = SignatureAlgorithm.parse(key["algorithm"])

            def verify(signature: bytes, message: bytes, pk: PublicKey = public_key,
                       alg: SignatureAlgorithm = algorithm) -> bool:
                return pk.is_valid(signature, message, alg)

            threads = _threads_check(signer, verify, spec)
            async_ = _async_check(signer, verify, spec)
            _emit({"event": "result", "spec": spec, "key_id": signer.key_id, "threads": threads, "async": async_})
        try:
            store.close()
        except Exception as e:
            watch.check_exception("close in a child process", e)
    _emit({"event": "leaks", "findings": watch.findings})
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
