"""Store-wide steps a worker runs: the listing, the error checks, a replaced key, concurrency.

The listing step fills three kinds of cells (per spec: public-key, list-keys; the store's
listing row) from one `list_keys` over the run's keys plus a page of extra keys; the
concurrency step fills threads / async / event-loop per spec from a child process (or, for
a process-local store, from threads of this worker).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from signers.algorithms import KeySpec
from signers.composite import CompositeAlgorithm
from signers.errors import AuthenticationFailed, BackendUnavailable, KeyExists, KeyNotFound, KeyplaneError
from signers.registry import open_store
from signers.signer import KeyInfo, KeyStore
from signers.uri import parse_uri

from . import checks
from .checks import CheckFailed, Unsupported
from .child import ASYNC_CALLS, THREADS, ChildKey, ChildOutcome, async_check, run_concurrency, threads_check
from .leaks import find_secret
from .plan import STORE
from .report import FAIL, PASS
from .specs import Spec, create_key, parse_spec
from .wire import emit

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["STORE_STEPS", "call_with_deadline", "concurrency_step", "listing_step"]

T = TypeVar("T")
WORK_SECONDS = 4.0  # what the threaded check aims to take on a device of the measured latency
MIN_PER_THREAD, MAX_PER_THREAD = 5, 200
# Attributes that carry a secret inline (RFC 7512's pin-value and the like); `token` is not one:
# in a pkcs11: URI it is the token's label. Secrets belong behind a `*-source` attribute.
_SECRET_ATTRIBUTES = ("pin-value", "password", "passphrase", "secret", "client-secret", "secret-key")


def call_with_deadline(fn: Callable[[], T], limit: float) -> T:
    """Run `fn` in a daemon thread; CheckFailed if it does not return within `limit` seconds."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=target, name="conformance-check", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise CheckFailed(f"no answer within {limit:.0f} s (hung)")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _close_quietly(store: KeyStore) -> None:
    try:
        store.close()
    except Exception:  # closing a store that never connected may fail; the verdict stands
        return


# Cheap specs first, for keys made only to be listed, inspected or to test a power.
_CHEAP: tuple[Spec, ...] = (KeySpec.P256, KeySpec.ED25519, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048,
                            CompositeAlgorithm.MLDSA44_ED25519_SHA512, CompositeAlgorithm.MLDSA44_ECDSA_P256_SHA256,
                            CompositeAlgorithm.MLDSA65_ED25519_SHA512)


def page_spec(worker: Worker) -> Spec | None:
    """A cheap spec the store claims, for keys made only to be listed, inspected or to test a power."""
    claimed = [s for s in worker.target.spec_list() if worker.judged(s)]
    return next((spec for spec in _CHEAP if spec in claimed), claimed[0] if claimed else None)


# -- listing -------------------------------------------------------------------------------


def listing_step(worker: Worker) -> None:
    states = {spec: s for spec, s in worker.states.items() if worker.judged(spec)}
    caps = worker.capabilities
    page: list[str] = []
    listing: list[KeyInfo] | None = None
    error: str | None = None
    spec = page_spec(worker)
    try:
        if caps.list and caps.create and spec is not None:
            for i in range(worker.target.page):
                name = worker.key_name(None, f"page{i:02d}")
                create_key(worker.store, name, spec)
                page.append(name)
        if caps.list:
            listing = list(worker.store.list_keys())
    except Exception as e:
        worker.watch.check_exception("list_keys", e)
        error = f"{type(e).__name__}: {e}"
    for info in listing or []:
        worker.watch.check("KeyInfo", f"{info!r} {getattr(info, 'uri', '')}")
    for spec_, state in states.items():
        worker.record(spec_.value, "public-key", lambda s=state: checks.check_public_key(s, listing))  # type: ignore[misc]
        worker.record(spec_.value, "list-keys", lambda s=state: checks.check_list_keys(s, listing, error))  # type: ignore[misc]
    worker.record(STORE, "listing", lambda: _judge_listing(worker, listing, error, page, spec))
    for name in page:
        try:
            worker.store.delete_key(name)
        except Exception as e:  # cleanup only
            worker.watch.check_exception("delete_key of a page key", e)


def _judge_listing(worker: Worker, listing: list[KeyInfo] | None, error: str | None, page: list[str],
                   spec: Spec | None) -> str:
    if not worker.capabilities.list:
        raise Unsupported("the store does not claim list (Capabilities.list is False)")
    if error is not None:
        raise CheckFailed(f"making {worker.target.page} keys and listing them failed: {error}")
    assert listing is not None
    expected = {name: spec for name in page}
    for s, state in worker.states.items():
        if state.created and not state.deleted and worker.judged(s):
            expected[state.name] = s
    problems: list[str] = []
    bad_types = [type(i).__name__ for i in listing if not isinstance(i, KeyInfo)]
    if bad_types:
        raise CheckFailed(f"list_keys yielded {', '.join(sorted(set(bad_types)))}, not KeyInfo")
    counts: dict[str, int] = {}
    for info in listing:
        if info.name in expected:
            counts[info.name] = counts.get(info.name, 0) + 1
    missing = [n for n in expected if n not in counts]
    twice = [n for n, c in counts.items() if c > 1]
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} keys not listed (e.g. {missing[0]})")
    if twice:
        problems.append(f"{len(twice)} keys listed more than once (e.g. {twice[0]})")
    for info in listing:
        if info.name not in expected:
            continue
        problems += _judge_info(worker, info, expected[info.name])
    if problems:
        raise CheckFailed("; ".join(problems[:6]))
    return (f"{len(expected)} keys ({len(page)} made for the page) each listed once among {len(listing)}; "
            "every KeyInfo.uri opens the same key, holds no secret; KeyInfo.spec matches")


def _judge_info(worker: Worker, info: KeyInfo, spec: Spec | None) -> list[str]:
    problems = []
    if find_secret(info.uri, worker.watch.secrets):
        problems.append(f"KeyInfo.uri of {info.name} contains a secret")
    try:
        attributes = parse_uri(info.uri)
        named = {**attributes.attributes, **attributes.query}
        leaking = [a for a in named if a in _SECRET_ATTRIBUTES]
        if leaking:
            problems.append(f"KeyInfo.uri of {info.name} carries {', '.join(leaking)}")
    except KeyplaneError as e:
        problems.append(f"KeyInfo.uri of {info.name} does not parse: {e}")
    if info.spec is not None and spec is not None and info.spec is not spec:
        problems.append(f"KeyInfo.spec of {info.name} is {info.spec}, the key is {spec.value}")
    try:
        by_uri = worker.store.open(info.uri)
        by_name = worker.store.open(info.name)
    except Exception as e:
        problems.append(f"KeyInfo.uri of {info.name} does not open: {type(e).__name__}: {e}")
        return problems
    if by_uri.public_key != by_name.public_key:
        problems.append(f"KeyInfo.uri of {info.name} opens another key")
    if info.key_id is not None and info.key_id != by_name.key_id:
        problems.append(f"KeyInfo.key_id of {info.name} differs from the key's")
    return problems


# -- store-wide errors ---------------------------------------------------------------------


def unknown_key(worker: Worker) -> str:
    name = worker.key_name(None, "missing")
    try:
        worker.store.open(name)
    except KeyNotFound as e:
        worker.watch.check_exception("KeyNotFound", e)
        return f"open({name!r}) raised KeyNotFound"
    raise CheckFailed(f"open({name!r}) of a key that does not exist succeeded")


def _existing(worker: Worker) -> str | None:
    return next((s.name for s in worker.states.values() if s.created and not s.deleted), None)


def bad_credentials(worker: Worker) -> str:
    uri = worker.target.bad_credentials_uri
    if uri is None:
        raise Unsupported("no bad-credentials URI given (Target.bad_credentials_uri / --bad-credentials-uri)")
    bad: KeyStore | None = None
    existing = _existing(worker)
    try:
        bad = open_store(uri)
        worker.watch.check("repr(store) with bad credentials", f"{bad!r} {bad.uri}")
        if existing is not None:
            bad.open(existing)
        else:
            list(bad.list_keys())
    except AuthenticationFailed as e:
        worker.watch.check_exception("the bad-credentials error", e)
        return f"AuthenticationFailed: {e}"
    finally:
        if bad is not None:
            _close_quietly(bad)
    raise CheckFailed("opening a key with bad credentials succeeded")


def unreachable(worker: Worker) -> str:
    uri = worker.target.unreachable_uri
    if uri is None:
        raise Unsupported("no unreachable URI given (Target.unreachable_uri / --unreachable-uri)")
    timeout = worker.target.timeout
    started = time.perf_counter()
    existing = _existing(worker)

    def attempt() -> None:
        store = open_store(uri)
        try:
            store.open(existing or worker.key_name(None, "probe"))
        finally:
            _close_quietly(store)

    try:
        call_with_deadline(attempt, 3 * timeout + 5)
    except BackendUnavailable as e:
        worker.watch.check_exception("the unreachable error", e)
        elapsed = time.perf_counter() - started
        if elapsed > timeout * 1.25 + 0.5:
            raise CheckFailed(f"BackendUnavailable only after {elapsed:.1f} s; the timeout is {timeout:g} s") from e
        return f"BackendUnavailable after {elapsed:.2f} s (timeout {timeout:g} s): {e}"
    raise CheckFailed("opening a key through the unreachable URI succeeded")


def replaced_key(worker: Worker) -> str:
    """A signer never hands out a signature its own public key rejects, even when its key is deleted and
    another made under the same name: it signs with its own key or raises a typed error."""
    caps = worker.capabilities
    spec = page_spec(worker)
    if not (caps.create and caps.delete) or spec is None:
        raise Unsupported("needs create and delete (Capabilities.create / .delete)")
    name = worker.key_name(None, "replaced")
    old = create_key(worker.store, name, spec)
    before = b"keyplane conformance: before replacement"
    if not old.public_key.is_valid(old.sign(before), before, old.algorithm):
        worker.store.delete_key(name)
        raise Unsupported(f"cannot judge: {spec.value} signatures do not verify even before the key is replaced "
                          f"(see {spec.value} sign-verify)")
    worker.store.delete_key(name)
    try:
        new = create_key(worker.store, name, spec)
    except KeyExists as e:
        raise Unsupported(f"a deleted name cannot be reused here (deletion {caps.deletion}): {e}") from None
    try:
        message = b"keyplane conformance: replaced key " + os.urandom(8)
        try:
            signature = old.sign(message)
        except KeyplaneError as e:
            return f"the old signer refuses with {type(e).__name__} once its key is replaced"
        if old.public_key.is_valid(signature, message, old.algorithm):
            return "the old signer still signs with its own key (the signature verifies under its public key)"
        if new.public_key.is_valid(signature, message, old.algorithm):
            raise CheckFailed("after delete + create under the same name, the old signer signed with the NEW key: "
                              "its signature fails its own public_key.verify")
        raise CheckFailed("the old signer returned a signature its own public key rejects")
    finally:
        try:
            worker.store.delete_key(name)
        except Exception as e:  # cleanup only
            worker.watch.check_exception("delete_key", e)


STORE_STEPS: dict[str, Callable[[Worker], str]] = {
    "unknown-key": unknown_key,
    "bad-credentials": bad_credentials,
    "unreachable": unreachable,
    "replaced-key": replaced_key,
}


# -- concurrency ----------------------------------------------------------------------------


def measured_latency(worker: Worker, signer: Any) -> float:
    """Seconds per signature: the flag's value, else the median of three timed signatures."""
    if worker.target.signing_latency is not None:
        return worker.target.signing_latency
    times = []
    for i in range(3):
        started = time.perf_counter()
        signer.sign(f"keyplane conformance latency #{i}".encode())
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def workload(worker: Worker, latency: float) -> int:
    """Signatures per thread: enough to overlap, few enough for a slow device to finish in seconds."""
    if worker.target.workload is not None:
        return worker.target.workload
    fitting = int(WORK_SECONDS / (THREADS * max(latency, 1e-6)))
    return max(MIN_PER_THREAD, min(MAX_PER_THREAD, fitting))


def concurrency_step(worker: Worker) -> None:
    keys: list[ChildKey] = []
    limits: dict[str, float] = {}
    child_floor = float(worker.limits.get("child_floor", 300.0))
    for spec, state in worker.states.items():
        if not worker.judged(spec):
            continue
        try:
            signer = state.need_signer()
            latency = measured_latency(worker, signer)
        except Exception as e:
            for check in ("threads", "async", "event-loop"):
                worker.row(spec.value, check, FAIL, f"no key to check: {type(e).__name__}: {e}")
            continue
        per_thread = workload(worker, latency)
        expected = (THREADS * per_thread + ASYNC_CALLS) * latency
        limits[spec.value] = max(child_floor, 30 * worker.target.timeout, 20 * expected)
        keys.append(ChildKey(spec.value, state.name, checks.public_key_der(signer.public_key),
                             signer.algorithm.value, per_thread, latency))
    if not keys:
        return
    emit({"event": "deadline", "seconds": sum(limits.values()) + 60})
    if worker.capabilities.process_local:
        for key in keys:
            _in_process(worker, key)
        return
    run_concurrency(worker.target.uri, keys, env=worker.target.env, plugins=worker.target.plugins,
                    secrets=worker.watch.secrets, spec_timeout=max(limits.values()),
                    stall=worker.target.loop_stall, sample=worker.target.verify_sample,
                    on_outcome=lambda spec, outcome: _record(worker, spec, outcome),
                    on_leak=lambda where: worker.watch.findings.append(where))


def _record(worker: Worker, spec_name: str, outcome: ChildOutcome) -> None:
    spec = parse_spec(spec_name)
    state = worker.states[spec]
    state.child_key_id = outcome.key_id
    worker.key_event(state)
    if outcome.nonces:
        emit({"event": "nonces", "items": [[spec.value, state.need_signer().key_id, r, m] for r, m in outcome.nonces]})
    for check, result in (("threads", outcome.threads), ("async", outcome.async_), ("event-loop", outcome.loop)):
        if result is None:
            worker.row(spec.value, check, FAIL, outcome.crash or "no result from the child process")
        else:
            ok, detail, seconds = result
            worker.row(spec.value, check, PASS if ok else FAIL, detail, seconds)


def _in_process(worker: Worker, key: ChildKey) -> None:
    """The concurrency checks in this worker, for a store whose keys live in one process."""
    state = worker.states[parse_spec(key.spec)]
    signer = state.need_signer()

    def verify(signature: bytes, message: bytes) -> bool:
        return signer.public_key.is_valid(signature, message, signer.algorithm)

    threads = threads_check(signer, verify, key.spec, key.per_thread, worker.target.verify_sample)
    async_, loop = async_check(signer, verify, key.spec, worker.target.loop_stall, key.latency)
    note = " (in the worker: the store is process-local)"
    for check, (ok, detail, seconds, pairs) in (("threads", threads), ("async", async_)):
        state.extra += pairs
        worker.row(key.spec, check, PASS if ok else FAIL, detail + note, seconds)
    worker.row(key.spec, "event-loop", PASS if loop[0] else FAIL, loop[1], loop[2])
