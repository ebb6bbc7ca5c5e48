"""Webhooks: events delivered as JWTs signed by the issuer key, from a bounded queue, with retries.

Each delivery is a POST whose body is a compact JWT (``typ: keyplane-event+jwt``,
``Content-Type: application/jwt``) with claims ``iss``, ``iat``, ``exp``, ``jti``, ``event``
and ``data``; a receiver verifies it with the service's JWKS (`JWKSClient`), so there is no
shared webhook secret to leak. `enqueue` never blocks: when the queue is full the event is
counted as dropped. A failed delivery (connection error or a non-2xx answer) is retried with
exponential backoff (0.5 s, 1 s, 2 s, ... capped at 30 s) up to the hook's `retries`. On
shutdown the queue is drained for a grace period; what is left is reported as dropped.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..signer import Signer
from ..tokens.jws_sign import sign_jwt
from .config import Webhook

__all__ = ["EVENT_TYP", "WebhookDispatcher"]

EVENT_TYP = "keyplane-event+jwt"
_BACKOFF_START, _BACKOFF_CAP = 0.5, 30.0
log = logging.getLogger("keyplane.server.webhooks")


@dataclass
class _Delivery:
    hook: Webhook
    event: str
    data: dict[str, Any]
    attempt: int = 0


class WebhookDispatcher:
    """Signs and delivers events on a worker thread; counters for /metrics."""

    def __init__(self, hooks: tuple[Webhook, ...], signer: Signer, issuer: str, *, queue_size: int = 1000,
                 client: Any = None, backoff_start: float = _BACKOFF_START,
                 on_result: Callable[[str, str], None] | None = None) -> None:
        self.hooks = hooks
        self._signer = signer
        self._issuer = issuer
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._client = client
        self._backoff_start = backoff_start
        self._on_result = on_result
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.retried = 0
        self._worker: threading.Thread | None = None
        if hooks:
            self._worker = threading.Thread(target=self._run, name="keyplane-webhooks", daemon=True)
            self._worker.start()

    def enqueue(self, event: str, data: dict[str, Any]) -> None:
        """Queue `event` for every hook subscribed to it; never blocks (full queue: dropped)."""
        for hook in self.hooks:
            if event in hook.events:
                try:
                    self._queue.put_nowait(_Delivery(hook, event, data))
                except queue.Full:
                    self.dropped += 1
                    log.warning("webhook queue full: event dropped",
                                extra={"fields": {"event": event, "hook": hook.name}})

    def body(self, event: str, data: dict[str, Any]) -> str:
        """The signed JWT for one event."""
        issued = int(time.time())
        claims = {"iss": self._issuer, "iat": issued, "exp": issued + 3600, "jti": str(uuid.uuid4()),
                  "event": event, "data": data}
        return sign_jwt(self._signer, claims, typ=EVENT_TYP)

    def _run(self) -> None:
        import httpx  # lazy: the server extra's client, imported only when hooks are configured

        client = self._client or httpx.Client(trust_env=False)
        try:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    if self._stop.is_set():
                        continue  # left in the queue at shutdown: already counted as dropped by close()
                    self._deliver(client, item, httpx)
                finally:
                    self._queue.task_done()
        finally:
            if self._client is None:
                client.close()

    def _deliver(self, client: Any, item: _Delivery, httpx: Any) -> None:
        delay = self._backoff_start
        try:
            body = self.body(item.event, item.data)
        except Exception as e:
            self.failed += 1
            log.warning("webhook not signed", extra={"fields": {"event": item.event, "error": type(e).__name__}})
            return
        while True:
            item.attempt += 1
            outcome = "error"
            try:
                response = client.post(item.hook.url, content=body, timeout=item.hook.timeout,
                                       headers={"content-type": "application/jwt", "keyplane-event": item.event})
                outcome = str(response.status_code)
                if 200 <= response.status_code < 300:
                    self.delivered += 1
                    self._report(item.hook.name, "delivered")
                    return
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            if item.attempt > item.hook.retries or self._stop.is_set():
                self.failed += 1
                self._report(item.hook.name, "failed")
                log.warning("webhook delivery failed", extra={"fields": {
                    "event": item.event, "hook": item.hook.name, "attempts": item.attempt, "last": outcome}})
                return
            self.retried += 1
            if self._stop.wait(delay):  # shutting down: one last try was made
                continue
            delay = min(delay * 2, _BACKOFF_CAP)

    def _report(self, hook: str, result: str) -> None:
        if self._on_result is not None:
            self._on_result(hook, result)

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up on (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            self._stop.wait(0.02)
        return True

    def close(self, grace: float = 5.0) -> int:
        """Drain for `grace` seconds, then stop; returns how many events were dropped (logged)."""
        if self._worker is None:
            return 0
        self.join(grace)
        self._stop.set()
        left = self._queue.qsize()
        self.dropped += left
        if left:
            log.warning("webhooks dropped at shutdown", extra={"fields": {"dropped": left}})
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._worker.join(timeout=grace)
        return left
