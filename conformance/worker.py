"""The worker: the only process of a run that calls the store and its signers.

``python -m conformance.worker`` reads a job (the target, the steps still to run, what
earlier workers learnt: key names, public keys) on stdin, opens the store and runs the
steps in order, writing one event per line (`conformance.wire`): ``step`` before each,
``row`` per cell, ``key`` when a key is made / deleted / re-derived elsewhere, ``nonces``
(the ECDSA ``r`` of every signature, judged by the parent), ``leaks`` and ``end``. A
segfault, abort or hang therefore takes down only this process; the supervisor
(`conformance.supervisor`) turns it into a FAIL row and starts a fresh worker for the rest.
"""

from __future__ import annotations

import base64
import faulthandler
import hashlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from signers.algorithms import KeyFamily
from signers.registry import open_store
from signers.signer import Capabilities, KeyStore, capabilities_of

from . import checks, spec_checks, store_checks
from .checks import CheckFailed, SpecState, Unsupported
from .contract import check_contract
from .leaks import LeakWatch
from .plan import CHECKS, STORE, slug
from .protocols import PROTOCOL_RUNNERS, check_prehash
from .report import FAIL, NOT_SUPPORTED, PASS, STUBBED
from .specs import Spec, claimed_specs, parse_spec
from .target import Target, environment, load_plugins
from .wire import emit

__all__ = ["Worker", "worker_main"]


class Worker:
    """One store, the states of its key specs, and the step implementations."""

    def __init__(self, job: dict[str, Any], watch: LeakWatch) -> None:
        self.target = Target.from_job(job["target"])
        self.run_id: str = job["run_id"]
        self.watch = watch
        self.limits: dict[str, float] = job.get("limits", {})
        self.broken: str | None = job.get("broken")  # the contract check's verdict, when it failed
        self.store: KeyStore = None  # type: ignore[assignment]  # set by open()
        self.capabilities: Capabilities = None  # type: ignore[assignment]
        self.states: dict[Spec, SpecState] = {}
        self.refused: set[Spec] = {parse_spec(s) for s in job.get("refused", [])}  # claimed, refused at create
        self.claimed: frozenset[Spec] = frozenset()  # set by open()
        self.not_offered: dict[Spec, str] = {}  # why an unclaimed spec is not offered, where the store says
        self.restored: dict[str, dict[str, Any]] = job.get("state", {})
        self._sent: dict[Spec, int] = {}
        self._leaks_sent = 0

    # -- set-up ----------------------------------------------------------------------------

    def open(self) -> None:
        load_plugins(self.target.plugins)
        self.store = open_store(self.target.uri)
        self.watch.check("repr(store) / store.uri", f"{self.store!r} {getattr(self.store, 'uri', '')}")
        try:
            self.capabilities = capabilities_of(self.store)
        except Exception:  # a store without Capabilities: the contract rows say so
            self.capabilities = Capabilities(key_specs=frozenset())
        self.claimed, self.not_offered = claimed_specs(self.store, self.capabilities)
        for spec_name, saved in self.restored.items():
            spec = parse_spec(spec_name)
            state = SpecState(self.store, spec, saved["name"], created=saved["created"], deleted=saved["deleted"],
                              child_key_id=saved.get("child_key_id"))
            if saved.get("public_key"):
                state.expected_der = base64.b64decode(saved["public_key"])
            self.states[spec] = state

    def stubbed(self) -> dict[Spec, str]:
        return {**{parse_spec(k): v for k, v in self.capabilities.stubbed.items()},
                **{parse_spec(k): v for k, v in self.target.stubbed.items()}}

    def judged(self, spec: Spec) -> bool:
        """Whether the per-spec checks run for `spec` (claimed, not stubbed)."""
        return spec in self.claimed and spec not in self.stubbed() and spec not in self.refused

    def unclaimed_reason(self, spec: Spec) -> str:
        """Why the store does not claim `spec`: its own words where it gives them."""
        return self.not_offered.get(spec) or f"{spec.value} is not in the store's Capabilities.key_specs"

    def key_name(self, spec: Spec | None, suffix: str = "") -> str:
        base = f"{self.target.key_prefix}-{self.run_id}"
        if spec is not None:
            base += f"-{slug(spec)}"
        return base + (f"-{suffix}" if suffix else "")

    def state(self, spec: Spec) -> SpecState:
        if spec not in self.states:
            self.states[spec] = SpecState(self.store, spec, self.key_name(spec))
        return self.states[spec]

    # -- events ----------------------------------------------------------------------------

    def row(self, spec: str, check: str, status: str, detail: str, seconds: float = 0.0) -> None:
        emit({"event": "row", "spec": spec, "check": check, "status": status, "detail": detail,
              "seconds": seconds})

    def record(self, spec: str, check: str, fn: Callable[[], str]) -> None:
        """Run one check and emit its row (pass / fail / not-supported)."""
        started = time.perf_counter()
        try:
            detail, status = fn(), PASS
        except Unsupported as e:
            status, detail = NOT_SUPPORTED, str(e)
        except CheckFailed as e:
            status, detail = FAIL, str(e)
            if e.__cause__ is not None:
                self.watch.check_exception(f"{check} error", e.__cause__)
        except Exception as e:
            self.watch.check_exception(f"{check} error", e)
            status, detail = FAIL, f"{type(e).__name__}: {e}"
        self.row(spec, check, status, detail, time.perf_counter() - started)

    def key_event(self, state: SpecState) -> None:
        der = checks.public_key_der(state.signer.public_key) if state.signer is not None else state.expected_der
        emit({"event": "key", "spec": state.spec.value, "name": state.name, "created": state.created,
              "deleted": state.deleted, "child_key_id": state.child_key_id,
              "public_key": base64.b64encode(der).decode() if der else None})

    def flush(self) -> None:
        """Send what the parent judges: new ECDSA nonces and new leak findings."""
        items = []
        for spec, state in self.states.items():
            pairs = state.all_signatures()
            start = self._sent.get(spec, 0)
            self._sent[spec] = len(pairs)
            if spec.family is KeyFamily.EC and state.signer is not None:
                items += nonce_items(spec.value, state.signer.key_id, pairs[start:])
        if items:
            emit({"event": "nonces", "items": items})
        new = self.watch.findings[self._leaks_sent:]
        self._leaks_sent = len(self.watch.findings)
        emit({"event": "leaks", "findings": new, "checked": self.watch.texts_checked})
        self.watch.texts_checked = 0

    # -- steps -----------------------------------------------------------------------------

    def run_step(self, name: str, spec_name: str | None, cells: list[list[str]]) -> None:
        if self.broken is not None and name != "contract":
            everything = [(spec_name, c) for c in CHECKS] if name == "create" and spec_name else cells
            for spec, check in everything:
                self.row(spec, check, FAIL, f"not run: the store breaks the contract ({self.broken})")
            return
        if spec_name is not None:
            spec = parse_spec(spec_name)
            if name == "create":
                self._create_step(spec)
            elif self.judged(spec):
                self.record(spec.value, name, lambda: spec_checks.run(name, self, self.state(spec)))
            if spec in self.states:
                self._watch_signers(self.states[spec])
            return
        if name == "contract":
            self.broken = check_contract(self)
            if self.broken is not None:
                emit({"event": "broken", "detail": self.broken})
        elif name == "listing":
            store_checks.listing_step(self)
        elif name == "concurrency":
            store_checks.concurrency_step(self)
        elif name in PROTOCOL_RUNNERS:
            self.record(STORE, name, lambda: PROTOCOL_RUNNERS[name](self))
        elif name == "prehash":
            self.record(STORE, name, lambda: check_prehash(self))
        else:
            self.record(STORE, name, lambda: store_checks.STORE_STEPS[name](self))

    def _watch_signers(self, state: SpecState) -> None:
        """Secrets are looked for in every signer's repr and uri too."""
        for signer in (state.signer, state.reopened):
            if signer is not None:
                try:
                    self.watch.check("repr(signer) / signer.uri", f"{signer!r} {getattr(signer, 'uri', '')}")
                except Exception as e:  # a repr that raises is a contract matter, not a leak
                    self.watch.check_exception("repr(signer)", e)

    def _create_step(self, spec: Spec) -> None:
        stubbed = self.stubbed()
        if spec in stubbed:
            for check in CHECKS:
                self.row(spec.value, check, STUBBED, stubbed[spec])
        elif spec not in self.claimed:
            self.record(spec.value, "create", lambda: spec_checks.refuse_unclaimed(self, spec))
            reason = self.unclaimed_reason(spec)
            for check in CHECKS[1:]:
                self.row(spec.value, check, NOT_SUPPORTED, reason)
        else:
            state = self.state(spec)
            self.record(spec.value, "create", lambda: spec_checks.create(self, state))
            self.key_event(state)
            if spec in self.refused:  # one FAIL (create) says it all; the rest cannot run
                emit({"event": "refused", "spec": spec.value})
                for check in CHECKS[1:]:
                    self.row(spec.value, check, NOT_SUPPORTED, "not run: the store refused to create this claimed "
                             "spec (see create)")


def nonce_items(spec: str, key_id: str, pairs: list[tuple[bytes, bytes]]) -> list[list[str]]:
    """[spec, key_id, r (hex), message digest prefix] per decodable ECDSA signature."""
    out = []
    for message, signature in pairs:
        try:
            r, _ = decode_dss_signature(signature)
        except ValueError:
            continue  # not DER: the signature-format row says so
        out.append([spec, key_id, format(r, "x"), hashlib.sha256(message).hexdigest()[:16]])
    return out


def worker_main() -> int:
    faulthandler.enable()  # a segfault prints the Python stack to stderr, which the supervisor quotes
    job = json.loads(sys.stdin.read())
    watch = LeakWatch(job["secrets"])
    worker = Worker(job, watch)
    with environment(worker.target.env), watch:
        try:
            worker.open()
        except Exception as e:
            watch.check_exception("opening the store", e)
            worker.flush()
            emit({"event": "fatal", "detail": f"could not open the store: {type(e).__name__}: {e}"})
            return 0
        for index, step in enumerate(job["steps"], start=job["first"]):
            emit({"event": "step", "index": index})
            worker.run_step(step["name"], step.get("spec"), step.get("cells", []))
            worker.flush()
            emit({"event": "end", "index": index})
        try:
            worker.store.close()
        except Exception as e:
            watch.check_exception("store.close()", e)
        worker.flush()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
