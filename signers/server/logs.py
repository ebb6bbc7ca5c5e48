"""Structured JSON logs, one object a line, and the access log middleware.

What is logged is chosen, never dumped: method, path (no query string: it could carry a
token), status, caller name, duration, request id; library messages pass through
`scrub`, which cuts anything shaped like a compact JWS down to its header so no token
signature reaches a log line. Bodies and the Authorization header are never logged.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import utc_second_text
from ..random_pool import random_bytes

__all__ = ["AccessLog", "JsonFormatter", "configure_logging", "scrub"]

_JWS = re.compile(r"\b(ey[A-Za-z0-9_-]{8,})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{8,})\b")
log = logging.getLogger("keyplane.server")
access = logging.getLogger("keyplane.server.access")


def scrub(text: str) -> str:
    """`text` with every compact JWS replaced by ``<token header=...>`` (no payload, no signature)."""
    if "ey" not in text:  # every match starts with "ey": most log values are scanned once, in C
        return text
    return _JWS.sub(lambda m: f"<token {m.group(1)[:24]}...>", text)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...fields}``; `fields` come from ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(), "logger": record.name, "msg": scrub(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update({k: scrub(v) if isinstance(v, str) else v for k, v in fields.items()})
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__  # the class only: a traceback can hold secrets
        return _LINE(data)


_LINE = json.JSONEncoder(default=str).encode  # json.dumps(data, default=str), without its per-call set-up


def _timestamp(created: float) -> str:
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, the second's text reused.

    The microseconds are rounded as `datetime.fromtimestamp` rounds them (half to even, a
    carry into the next second), then cut to milliseconds as `isoformat` cuts them.
    """
    fraction, whole = math.modf(created)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return f"{utc_second_text(int(whole))}.{micros // 1000:03d}+00:00"


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for keyplane's and uvicorn's loggers, at `level`.

    A JSON line names no source file, line, thread or process, so the records are made
    without them: the logging HOWTO's optimisations (``logging._srcfile = None`` skips the
    stack walk of `findCaller`; the ``log*`` flags skip the thread, process and
    multiprocessing look-ups). The access line of each request was a sixth of the event
    loop's time in a profile of passport issuance; the record's making is part of that.
    """
    logging._srcfile = None  # documented in the HOWTO's "Optimization" section
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("keyplane", "uvicorn"):  # uvicorn's own errors too: class names, never a traceback
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class AccessLog:
    """ASGI middleware: a request id for every request, one JSON access line when it ends."""

    def __init__(self, app: ASGIApp, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = random_bytes(8).hex()  # 16 hex digits, as uuid4().hex[:16] was, without building a UUID
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            endpoint = scope.get("endpoint")
            path_label = getattr(endpoint, "__name__", "unmatched")
            self.metrics.inc("keyplane_http_requests_total", endpoint=path_label, status=str(status[0]))
            access.info("request", extra={"fields": {
                "method": scope.get("method"), "path": scope.get("path", "")[:200], "status": status[0],
                "caller": scope.get("state", {}).get("caller"), "ms": round(elapsed * 1000, 2), "request": request_id,
            }})
