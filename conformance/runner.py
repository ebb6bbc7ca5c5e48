"""`run_conformance`: put one store through every check and collect a Report.

This process only supervises: every store and signer call runs in a worker process
(`conformance.worker`), which runs the steps of `conformance.plan` in order and reports
each row as it is made. A worker killed by a signal (a segfault or abort in a native
module) or silent past a step's deadline is killed and replaced: the cells of the step it
was in become FAIL rows naming the signal or the deadline, and a fresh worker goes on
with the next step (re-opening the keys the run made by name). The nonce-reuse and
secrets verdicts are judged here, from what every worker and child process reported, and
a report is always produced, whatever the back end does.
"""

from __future__ import annotations

import importlib.util
import secrets as _random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .checks import CheckFailed, Unsupported
from .leaks import LeakWatch
from .plan import CHECKS, PARENT_CHECKS, STORE, STORE_CHECKS, Step, plan
from .report import FAIL, NOT_SUPPORTED, PASS, Report, Row, default_environment
from .target import Target, environment
from .wire import Supervised

__all__ = ["run_conformance"]

# Deadlines: a step gets weight x max(CHECK_TIMEOUT_FLOOR, 10 x target.timeout); the concurrency
# child gets max(CHILD_TIMEOUT_FLOOR, 30 x target.timeout, 20 x the expected time) per key spec.
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
        self.steps = plan(self.specs, target.page)
        self.rows: dict[tuple[str, str], Row] = {}
        self.run_id = _random.token_hex(3)
        self.sources = target.secret_sources()
        self.secrets = [value for _, value in self.sources]
        self.watch = LeakWatch(self.secrets)
        self.check_limit = max(CHECK_TIMEOUT_FLOOR, 10 * target.timeout)
        self.state: dict[str, dict[str, Any]] = {}  # per spec: what a fresh worker needs to re-open its key
        self.nonces: list[list[str]] = []
        self.findings: list[str] = []
        self.texts_checked = 0
        self.broken: str | None = None
        self.refused: list[str] = []
        self.workers = 0

    def run(self) -> Report:
        started = time.perf_counter()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        with environment(self.target.env), self.watch:
            index = 0
            while index < len(self.steps):
                index = self._one_worker(index)
            self._record("nonce-reuse", self._nonce_verdict)
            self._record("secrets", self._secrets_verdict)
        for spec, check in self._cells():
            if (spec, check) not in self.rows:
                self._add(Row(spec, check, FAIL, "no result"))  # never an empty cell
        return Report(
            target=self.target.display_name,
            uri=self.target.public_uri,
            rows=[self.rows[cell] for cell in self._cells()],
            checks=CHECKS,
            store_checks=STORE_CHECKS,
            started=started_at,
            seconds=time.perf_counter() - started,
            environment=default_environment(),
        )

    def _cells(self) -> list[tuple[str, str]]:
        return [(s.value, c) for s in self.specs for c in CHECKS] + [(STORE, c) for c in STORE_CHECKS]

    # -- one worker process ----------------------------------------------------------------

    def _job(self, first: int) -> dict[str, Any]:
        return {
            "target": self.target.to_job(),
            "run_id": self.run_id,
            "secrets": self.secrets,
            "first": first,
            "steps": [{"name": s.name, "spec": s.spec, "cells": s.cells} for s in self.steps[first:]],
            "state": self.state,
            "broken": self.broken,
            "refused": self.refused,
            "limits": {"check": self.check_limit, "child_floor": max(CHILD_TIMEOUT_FLOOR, 30 * self.target.timeout)},
        }

    def _limit(self, step: Step) -> float:
        return self.check_limit * (step.weight or 1.0)

    def _one_worker(self, first: int) -> int:
        """Run a worker from step `first`; returns the index of the next step to run."""
        self.workers += 1
        worker = Supervised("conformance.worker", self._job(first), self.target.env, self.check_limit)
        current: int | None = None
        finished = first - 1
        limit = self.check_limit
        fatal = False
        for event in worker.events():
            kind = event["event"]
            if kind == "step":
                current = event["index"]
                limit = self._limit(self.steps[event["index"]])
                worker.deadline = time.monotonic() + limit
            elif kind == "end":
                current, finished = None, event["index"]
                worker.deadline = time.monotonic() + self.check_limit
            elif kind == "deadline":
                limit = max(limit, float(event["seconds"]))
                worker.deadline = time.monotonic() + limit
            elif kind == "fatal":
                self._fail_steps(first, len(self.steps), event["detail"])
                fatal = True
            else:
                self._event(kind, event)
        rc = worker.finish()
        if fatal or (current is None and finished >= len(self.steps) - 1):
            return len(self.steps)
        where = f" in {self._step_name(current)}" if current is not None else " before its first step"
        why = worker.death(rc, limit, "worker process", where, self.secrets, self.findings)
        if current is None:
            if finished < first:  # died before its first step (start-up, opening the store)
                self._fail_steps(first, len(self.steps), why)
                return len(self.steps)
            return finished + 1
        self._fail_steps(current, current + 1, why)
        return current + 1

    def _step_name(self, index: int) -> str:
        step = self.steps[index]
        return f"{step.spec} {step.name}" if step.spec else step.name

    def _event(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "row":
            self._add(Row(event["spec"], event["check"], event["status"], event["detail"], event["seconds"]))
        elif kind == "key":
            self.state[event["spec"]] = {k: event[k] for k in ("name", "created", "deleted", "child_key_id",
                                                               "public_key")}
        elif kind == "nonces":
            self.nonces += event["items"]
        elif kind == "leaks":
            self.findings += [f for f in event["findings"] if f not in self.findings]
            self.texts_checked += int(event.get("checked", 0))
        elif kind == "broken":
            self.broken = event["detail"]
        elif kind == "refused":
            self.refused.append(event["spec"])

    def _fail_steps(self, start: int, stop: int, why: str) -> None:
        """Every unfilled cell of steps[start:stop] fails with `why` (parent-judged rows excepted)."""
        for step in self.steps[start:stop]:
            cells = list(step.cells)
            if step.name == "create" and step.spec:  # a spec whose create died has nothing else to judge
                cells = [(step.spec, c) for c in CHECKS]
            for spec, check in cells:
                if (spec, check) not in self.rows and check not in PARENT_CHECKS:
                    text = why if (spec, check) in step.cells else f"no key to check: create failed ({why})"
                    self._add(Row(spec, check, FAIL, text))

    # -- verdicts judged here ----------------------------------------------------------------

    def _record(self, check: str, fn: Callable[[], str]) -> None:
        try:
            status, detail = PASS, fn()
        except Unsupported as e:
            status, detail = NOT_SUPPORTED, str(e)
        except CheckFailed as e:
            status, detail = FAIL, str(e)
        self._add(Row(STORE, check, status, detail))

    def _nonce_verdict(self) -> str:
        ecdsa = [s.value for s in self.specs if s.family.name == "EC"]
        if not ecdsa:
            raise Unsupported("no ECDSA key spec in this run")
        seen: dict[tuple[str, str], dict[str, str]] = {}  # (spec, r) -> message digest -> key_id
        counts: dict[str, int] = {}
        repeats: list[str] = []
        for spec, key_id, r, message in self.nonces:
            counts[spec] = counts.get(spec, 0) + 1
            messages = seen.setdefault((spec, r), {})
            if message not in messages and messages:
                other_key = next(iter(messages.values()))
                same = "the same key" if other_key == key_id else f"keys {other_key} and {key_id}"
                repeats.append(f"{spec}: r = {r[:16]}... repeats for two different messages with {same}: "
                               "the private key is recoverable from those two signatures (ECDSA nonce reuse)")
            messages.setdefault(message, key_id)
        if repeats:
            raise CheckFailed(f"{len(repeats)} repeated nonce(s): " + "; ".join(repeats[:3]))
        if not counts:
            raise Unsupported("no ECDSA signature was collected (see the ECDSA rows)")
        total = ", ".join(f"{n} {spec}" for spec, n in sorted(counts.items()))
        return f"no r repeated among the run's ECDSA signatures ({total}; every process of the run)"

    def _secrets_verdict(self) -> str:
        warn = ""
        if not self.target.uri_names_a_source() and not self.target.secrets:
            warn = ("WARNING: the store URI names no *-source attribute and no --secret-env was given, so no "
                    "credential of this store is watched; ")
        if not self.secrets:
            raise Unsupported(warn + "no secrets given (Target.secrets / --secret-env) and none named by the URI")
        findings = self.watch.findings + self.findings
        if findings:
            shown = findings[:3] + [f for f in findings[3:] if f.startswith("child process")][:1]
            children = sum(f.startswith("child process") for f in findings)
            raise CheckFailed(f"secret found in {len(findings)} place(s) ({children} in child processes): "
                              + "; ".join(shown))
        labels = ", ".join(label for label, _ in self.sources)
        return (f"{warn}watched {len(self.secrets)} secret(s), by source: {labels}; absent from "
                f"{self.texts_checked + self.watch.texts_checked} texts: every log record (DEBUG), reprs, "
                f"store.uri, signer.uri, KeyInfo.uri and error texts, in {self.workers} worker(s) and the "
                "concurrency child processes")

    def _add(self, row: Row) -> None:
        if (row.spec, row.check) in self.rows:
            return  # the first verdict on a cell stands (a fresh worker may judge it again)
        self.rows[(row.spec, row.check)] = row
        self.on_row(row)


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

