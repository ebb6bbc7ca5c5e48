"""`run_conformance`: put one store through every check and collect a Report.

Order: per key spec create, open, sign and inspect (in this process); then one listing
and the store-wide error checks; then the concurrency checks for every spec in one child
process (which also re-derives each key_id); then delete; and last the secrets verdict,
because DEBUG logging is watched for the whole run. Each check runs in a worker thread
with a deadline, so a back end that hangs costs one FAIL row, not the run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import secrets as _random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from signers.algorithms import KeySpec
from signers.errors import AlgorithmNotSupported, AuthenticationFailed, BackendUnavailable, KeyNotFound
from signers.registry import open_store
from signers.signer import KeyInfo, KeyStore

from . import checks
from .checks import CHECKS, STORE_CHECKS, CheckFailed, SpecState, Unsupported
from .child import ChildKey, ChildOutcome, run_concurrency
from .leaks import LeakWatch
from .report import FAIL, NOT_SUPPORTED, PASS, STORE, STUBBED, Report, Row, default_environment
from .target import Target, environment, load_plugins

__all__ = ["run_conformance"]

T = TypeVar("T")

# Deadlines: a check (in this process) gets max(CHECK_TIMEOUT_FLOOR, 10 x target.timeout); the child
# process gets max(CHILD_TIMEOUT_FLOOR, 30 x target.timeout) per key spec before it counts as hung.
CHECK_TIMEOUT_FLOOR = 120.0
CHILD_TIMEOUT_FLOOR = 300.0


def run_conformance(target: Target, progress: bool = False) -> Report:
    """Run every check against `target`; `progress` shows a rich progress bar on stderr."""
    with _Progress(target, enabled=progress) as bar:
        return _Run(target, bar.row).run()


class _Run:
    def __init__(self, target: Target, on_row: Callable[[Row], None]) -> None:
        self.target = target
        self.on_row = on_row
        self.specs = target.spec_list()
        self.rows: dict[tuple[str, str], Row] = {}
        self.run_id = _random.token_hex(3)
        self.secrets = target.all_secrets()
        self.watch = LeakWatch(self.secrets)
        self.check_limit = max(CHECK_TIMEOUT_FLOOR, 10 * target.timeout)

    # -- driver ------------------------------------------------------------------------

    def run(self) -> Report:
        started = time.perf_counter()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        child_leaks: list[str] = []
        with environment(self.target.env), self.watch:
            try:
                load_plugins(self.target.plugins)
                store: KeyStore | None = open_store(self.target.uri)
            except Exception as e:
                self.watch.check_exception("opening the store", e)
                self._everything_failed(f"could not open the store: {type(e).__name__}: {e}")
                store = None
            if store is not None:
                try:
                    child_leaks = self._run_store(store)
                except Exception as e:  # a defect outside any one check: the cells not yet filled say so
                    self.watch.check_exception("the harness run", e)
                    self._fill_missing(f"no result: the run stopped early at {type(e).__name__}: {e}")
                finally:
                    try:
                        store.close()
                    except Exception as e:
                        self.watch.check_exception("store.close()", e)
            self._record(STORE, "secrets", lambda: self._secrets_verdict(child_leaks))
        self._fill_missing("no result")  # never an empty cell
        rows = [self.rows[(s.value, c)] for s in self.specs for c in CHECKS]
        rows += [self.rows[(STORE, c)] for c in STORE_CHECKS]
        return Report(
            target=self.target.display_name,
            uri=self.target.public_uri,
            rows=rows,
            checks=CHECKS,
            store_checks=STORE_CHECKS,
            started=started_at,
            seconds=time.perf_counter() - started,
            environment=default_environment(),
        )

    def _run_store(self, store: KeyStore) -> list[str]:
        self.watch.check("repr(store) / store.uri", f"{store!r} {store.uri}")
        capabilities = store.capabilities
        stubbed = {**{KeySpec.parse(k): v for k, v in capabilities.stubbed.items()},
                   **{KeySpec.parse(k): v for k, v in self.target.stubbed.items()}}
        states: dict[KeySpec, SpecState] = {}
        for spec in self.specs:
            if spec in stubbed:
                for check in CHECKS:
                    self._add(Row(spec.value, check, STUBBED, stubbed[spec]))
            elif spec not in capabilities.key_specs:
                self._unclaimed(store, spec)
            else:
                states[spec] = state = SpecState(store, spec, self._key_name(spec))
                self._record(spec.value, "create", partial(self._create, state))
                self._record(spec.value, "open", partial(checks.check_open, state))
                self._record(spec.value, "sign-verify", partial(checks.check_sign_verify, state))
                self._record(spec.value, "signature-format", partial(checks.check_signature_format, state))
                self._record(spec.value, "negatives", partial(checks.check_negatives, state))
                for signer in (state.signer, state.reopened):
                    if signer is not None:
                        self.watch.check("repr(signer) / signer.uri", f"{signer!r} {signer.uri}")

        listing, list_error = self._listing(store) if states else (None, None)
        for spec, state in states.items():
            self._record(spec.value, "public-key", partial(checks.check_public_key, state, listing))
            self._record(spec.value, "list-keys", partial(checks.check_list_keys, state, listing, list_error))

        existing = next((s.name for s in states.values() if s.signer is not None), None)
        self._record(STORE, "unknown-key", lambda: self._unknown_key(store))
        self._record(STORE, "bad-credentials", lambda: self._bad_credentials(existing))
        self._record(STORE, "unreachable", lambda: self._unreachable(existing), limit=None)

        child_leaks = self._concurrency(states)
        for spec, state in states.items():
            self._record(spec.value, "key-id", partial(checks.check_key_id, state))
        for spec, state in states.items():
            self._record(spec.value, "delete", partial(checks.check_delete, state))
        return child_leaks

    # -- key specs -----------------------------------------------------------------------

    def _key_name(self, spec: KeySpec) -> str:
        return f"{self.target.key_prefix}-{self.run_id}-{_slug(spec)}"

    def _create(self, state: SpecState) -> str:
        store = state.store
        if store.capabilities.create:
            state.signer = store.create_key(state.name, state.spec)
            state.created = True
            got = state.signer.public_key.spec
            if got is not state.spec:
                raise CheckFailed(f"create_key({state.spec.value}) made a {got.value} key")
            return f"created {state.name}"
        # A store that cannot create keys is judged on keys provisioned as <prefix>-<spec>.
        state.name = f"{self.target.key_prefix}-{_slug(state.spec)}"
        try:
            state.signer = store.open(state.name)
        except KeyNotFound:
            raise Unsupported(
                f"the store cannot create keys (Capabilities.create is False) and has no key {state.name!r}"
            ) from None
        return f"opened pre-provisioned {state.name}"

    def _unclaimed(self, store: KeyStore, spec: KeySpec) -> None:
        """A spec the store does not claim must be refused with AlgorithmNotSupported."""
        reason = f"{spec.value} is not in the store's Capabilities.key_specs"

        def refuse() -> str:
            if not store.capabilities.create:
                raise Unsupported(f"{reason}; the store does not create keys")
            name = self._key_name(spec)
            try:
                store.create_key(name, spec)
            except AlgorithmNotSupported as e:
                self.watch.check_exception("create_key of an unclaimed spec", e)
                raise Unsupported(f"AlgorithmNotSupported: {e}") from None
            except Exception as e:
                raise CheckFailed(
                    f"create_key of unclaimed {spec.value} raised {type(e).__name__}: {e} "
                    "(expected AlgorithmNotSupported)"
                ) from e
            try:
                store.delete_key(name)
            except Exception as e:
                self.watch.check_exception("delete_key", e)
            raise CheckFailed(f"create_key of unclaimed {spec.value} succeeded (expected AlgorithmNotSupported)")

        self._record(spec.value, "create", refuse)
        for check in CHECKS[1:]:
            self._add(Row(spec.value, check, NOT_SUPPORTED, reason))

    def _listing(self, store: KeyStore) -> tuple[list[KeyInfo] | None, str | None]:
        if not store.capabilities.list:
            return None, None
        try:
            return self._call(lambda: list(store.list_keys()), self.check_limit), None
        except Exception as e:
            self.watch.check_exception("list_keys", e)
            return None, f"{type(e).__name__}: {e}"

    # -- store-wide checks -----------------------------------------------------------------

    def _unknown_key(self, store: KeyStore) -> str:
        name = f"{self.target.key_prefix}-{self.run_id}-missing"
        try:
            store.open(name)
        except KeyNotFound as e:
            self.watch.check_exception("KeyNotFound", e)
            return f"open({name!r}) raised KeyNotFound"
        raise CheckFailed(f"open({name!r}) of a key that does not exist succeeded")

    def _bad_credentials(self, existing: str | None) -> str:
        uri = self.target.bad_credentials_uri
        if uri is None:
            raise Unsupported("no bad-credentials URI given (Target.bad_credentials_uri / --bad-credentials-uri)")
        bad: KeyStore | None = None
        try:
            bad = open_store(uri)
            self.watch.check("repr(store) with bad credentials", f"{bad!r} {bad.uri}")
            if existing is not None:
                bad.open(existing)
            else:
                list(bad.list_keys())
        except AuthenticationFailed as e:
            self.watch.check_exception("the bad-credentials error", e)
            return f"AuthenticationFailed: {e}"
        finally:
            if bad is not None:
                _close_quietly(bad)
        raise CheckFailed("opening a key with bad credentials succeeded")

    def _unreachable(self, existing: str | None) -> str:
        uri = self.target.unreachable_uri
        if uri is None:
            raise Unsupported("no unreachable URI given (Target.unreachable_uri / --unreachable-uri)")
        timeout = self.target.timeout
        started = time.perf_counter()

        def attempt() -> None:
            store = open_store(uri)
            try:
                store.open(existing or f"{self.target.key_prefix}-{self.run_id}-probe")
            finally:
                _close_quietly(store)

        try:
            self._call(attempt, 3 * timeout + 5)
        except BackendUnavailable as e:
            self.watch.check_exception("the unreachable error", e)
            elapsed = time.perf_counter() - started
            if elapsed > timeout * 1.25 + 0.5:
                raise CheckFailed(f"BackendUnavailable only after {elapsed:.1f} s; the timeout is {timeout:g} s") from e
            return f"BackendUnavailable after {elapsed:.2f} s (timeout {timeout:g} s): {e}"
        raise CheckFailed("opening a key through the unreachable URI succeeded")

    def _concurrency(self, states: dict[KeySpec, SpecState]) -> list[str]:
        keys = [
            ChildKey(spec.value, s.name, checks.public_key_der(s.signer.public_key), s.signer.algorithm.value)
            for spec, s in states.items()
            if s.signer is not None
        ]
        for spec, state in states.items():
            if state.signer is None:
                for check in ("threads", "async"):
                    self._add(Row(spec.value, check, FAIL, "no key to check: create/open failed"))

        def record(spec_name: str, outcome: ChildOutcome) -> None:
            spec = KeySpec.parse(spec_name)
            states[spec].child_key_id = outcome.key_id
            for check, result in (("threads", outcome.threads), ("async", outcome.async_)):
                if result is None:
                    self._add(Row(spec.value, check, FAIL, outcome.crash or "no result from the child process"))
                else:
                    ok, detail, seconds = result
                    self._add(Row(spec.value, check, PASS if ok else FAIL, detail, seconds))

        if not keys:
            return []
        run = run_concurrency(
            self.target.uri,
            keys,
            env=self.target.env,
            plugins=self.target.plugins,
            secrets=self.secrets,
            spec_timeout=max(CHILD_TIMEOUT_FLOOR, 30 * self.target.timeout),
            on_outcome=record,
        )
        return run.leaks

    def _secrets_verdict(self, child_leaks: list[str]) -> str:
        if not self.secrets:
            raise Unsupported("no secrets given (Target.secrets / --secret-env) and none named by the URI")
        findings = self.watch.findings + [f"child process {f}" for f in child_leaks]
        if findings:
            raise CheckFailed(f"secret found in {len(findings)} place(s): " + "; ".join(findings[:5]))
        plural = "s" if len(self.secrets) != 1 else ""
        return (f"{len(self.secrets)} secret{plural} absent from {self.watch.texts_checked} DEBUG log records, "
                "reprs and error texts (this process and the child)")

    # -- plumbing ----------------------------------------------------------------------

    def _everything_failed(self, why: str) -> None:
        """Every cell but the secrets verdict (which still judges what was seen) fails with `why`."""
        for spec in self.specs:
            for check in CHECKS:
                self._add(Row(spec.value, check, FAIL, why))
        for check in STORE_CHECKS:
            if check != "secrets":
                self._add(Row(STORE, check, FAIL, why))

    def _fill_missing(self, why: str) -> None:
        cells = [(s.value, c) for s in self.specs for c in CHECKS] + [(STORE, c) for c in STORE_CHECKS]
        for spec, check in cells:
            if (spec, check) not in self.rows and not (spec == STORE and check == "secrets"):
                self._add(Row(spec, check, FAIL, why))

    def _record(self, spec: str, check: str, fn: Callable[[], str], limit: float | None = -1.0) -> None:
        started = time.perf_counter()
        try:
            detail = fn() if limit is None else self._call(fn, self.check_limit if limit == -1.0 else limit)
            status = PASS
        except Unsupported as e:
            status, detail = NOT_SUPPORTED, str(e)
        except CheckFailed as e:
            status, detail = FAIL, str(e)
            if e.__cause__ is not None:
                self.watch.check_exception(f"{check} error", e.__cause__)
        except Exception as e:
            self.watch.check_exception(f"{check} error", e)
            status, detail = FAIL, f"{type(e).__name__}: {e}"
        self._add(Row(spec, check, status, detail, time.perf_counter() - started))

    def _add(self, row: Row) -> None:
        self.rows[(row.spec, row.check)] = row
        self.on_row(row)

    @staticmethod
    def _call(fn: Callable[[], T], limit: float) -> T:
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


def _slug(spec: KeySpec) -> str:
    """The spec as a key-name part every service accepts (lower-case letters, digits, '-')."""
    return re.sub(r"[^a-z0-9]+", "-", spec.value.lower()).strip("-")


def _close_quietly(store: KeyStore) -> None:
    with contextlib.suppress(Exception):  # closing a store that never connected may fail; the verdict stands
        store.close()


class _Progress:
    """A rich progress bar on stderr (imported only when asked for), or nothing."""

    def __init__(self, target: Target, enabled: bool) -> None:
        self.enabled = enabled
        self.total = len(target.spec_list()) * len(CHECKS) + len(STORE_CHECKS)
        self._bar: Any = None
        self._task: Any = None
        self._failures = 0

    def __enter__(self) -> _Progress:
        if self.enabled and importlib.util.find_spec("rich") is None:
            self.enabled = False  # no [harness] extra: run without a bar rather than fail
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]conformance[/]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.description}"), TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("starting", total=self.total)
        return self

    def row(self, row: Row) -> None:
        if self._bar is None:
            return
        self._failures += row.status == FAIL
        failed = f" [red]{self._failures} failed[/]" if self._failures else ""
        self._bar.update(self._task, advance=1, description=f"{row.spec} {row.check}{failed}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
