"""Rejection events: every refusal of the agent layer, told to whoever subscribed.

`RejectionEvents` is a hub. A verifier (`verify_history`, `verify_agent_passport`, the gate,
receipts, messages, proofs of possession) calls `hub.rejected(...)` when it refuses, then
raises as usual. Subscribers are either

- synchronous (`subscribe(fn)`): called inline, before the verifier raises; keep them quick
  (the auto-revoke policy is one); an exception in one is counted and swallowed, never
  turned into an accept or a different error;
- asynchronous (`subscribe(fn, asynchronous=True)`): the event goes into a bounded queue
  that one worker thread drains, so a slow subscriber never slows verification; when the
  queue is full the event is dropped and counted (`dropped`), verification never blocks.

An event holds what was refused, who (the token's ``sub``), why (error class and message),
when, the token id, whether the subject is authenticated (its signature verified; an
unverified ``sub`` is only what the token claims) and caller context (remote address, tool).
Never the token itself, its signature, or any secret.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import now_utc
from ..errors import KeyplaneError, TokenError
from ..jose import parse_jws
from .errors import PolicyError

__all__ = ["RejectionEvent", "RejectionEvents", "Subscriber", "unverified_ids"]

_MAX_TEXT = 300


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


@dataclass(frozen=True)
class RejectionEvent:
    """One refusal. `authenticated` is True only when `who` comes from a verified signature."""

    what: str
    who: str | None
    why: str
    error: str
    when: datetime
    token_id: str | None = None
    authenticated: bool = False
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what, "who": self.who, "why": self.why, "error": self.error,
            "when": self.when.isoformat(), "token_id": self.token_id,
            "authenticated": self.authenticated, "context": dict(self.context),
        }


Subscriber = Callable[[RejectionEvent], None]


def unverified_ids(token: object) -> tuple[str | None, str | None]:
    """(sub, jti) as a token claims them, without trusting it; (None, None) if unreadable."""
    if not isinstance(token, str | bytes):
        return None, None
    try:
        claims = parse_jws(token).claims()
    except TokenError:
        return None, None
    sub, jti = claims.get("sub"), claims.get("jti")
    return (_short(sub) if isinstance(sub, str) else None, _short(jti) if isinstance(jti, str) else None)


class RejectionEvents:
    """The hub verifiers report to; see the module docstring."""

    def __init__(self, *, queue_size: int = 10_000) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise PolicyError("queue_size must be a positive integer")
        self._sync: list[Subscriber] = []
        self._async: list[Subscriber] = []
        self._queue: queue.Queue[RejectionEvent | None] = queue.Queue(maxsize=queue_size)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        self.subscriber_errors = 0
        self.reported = 0

    def subscribe(self, subscriber: Subscriber, *, asynchronous: bool = False) -> None:
        """Add `subscriber`; asynchronous ones run on the hub's worker thread."""
        if not callable(subscriber):
            raise PolicyError("a subscriber must be callable with one RejectionEvent")
        with self._lock:
            if asynchronous:
                self._async.append(subscriber)
                if self._worker is None:
                    self._worker = threading.Thread(target=self._drain, name="keyplane-rejections", daemon=True)
                    self._worker.start()
            else:
                self._sync.append(subscriber)

    def report(self, event: RejectionEvent) -> None:
        """Deliver `event`: inline to synchronous subscribers, queued for asynchronous ones."""
        with self._lock:
            self.reported += 1
        for subscriber in list(self._sync):
            try:
                subscriber(event)
            except Exception:  # a subscriber's failure must not change the verifier's answer
                with self._lock:
                    self.subscriber_errors += 1
        if self._async:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                with self._lock:
                    self.dropped += 1

    def rejected(
        self,
        what: str,
        error: KeyplaneError,
        *,
        who: str | None = None,
        token: object = None,
        token_id: str | None = None,
        authenticated: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> RejectionEvent:
        """Build and report the event for `error`; `token` (if given) supplies unverified sub / jti."""
        known = who is not None and token_id is not None
        claimed_sub, claimed_jti = (None, None) if known else unverified_ids(token)
        event = RejectionEvent(
            what=what,
            who=_short(who) if who is not None else claimed_sub,
            why=_short(str(error)) or type(error).__name__,
            error=type(error).__name__,
            when=now_utc(),
            token_id=_short(token_id) if token_id is not None else claimed_jti,
            authenticated=authenticated and who is not None,
            context={str(k)[:60]: _short(v) for k, v in (context or {}).items()},
        )
        self.report(event)
        return event

    def _drain(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                for subscriber in list(self._async):
                    try:
                        subscriber(event)
                    except Exception:  # as for synchronous subscribers: counted, never propagated
                        with self._lock:
                            self.subscriber_errors += 1
            finally:
                self._queue.task_done()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the asynchronous queue is empty (tests, shutdown); True when it is."""
        if self._worker is None:
            return True
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        """Stop the worker after the events already queued."""
        worker = self._worker
        if worker is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=1)
            worker.join(timeout=5)
            self._worker = None


def report_to(
    events: RejectionEvents | None,
    what: str,
    error: KeyplaneError,
    **kwargs: Any,
) -> None:
    """`events.rejected(...)` when there is a hub (every verifier's one-line report)."""
    if events is not None:
        events.rejected(what, error, **kwargs)
