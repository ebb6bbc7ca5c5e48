"""The HTTP edges every handler shares: problem details, JSON bodies, callers, rate limits.

- `Problem` is an RFC 9457 problem-details response (``application/problem+json``) with a
  ``field`` member naming the offending body field when there is one;
- `read_body` enforces the size limit while reading and validates a JSON object against a
  `Body` spec: wrong types, unknown fields and missing fields are 400 naming the field;
- `authorize` finds the caller from ``Authorization: Bearer`` (by the token's SHA-256 in a
  `CallerIndex` built at start-up), refuses a caller revoked in the store (``kind="caller"``) and a
  missing scope, and applies the caller's token bucket (429 with Retry-After).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
    StateCorrupt,
    TokenError,
)
from ..tokens.audit_signer import audit_context
from ..workers import run_blocking
from .config import Caller

__all__ = ["Body", "CallerIndex", "CallerRevocations", "Field", "Problem", "RateLimiter", "authorize", "call", "call_async", "find_caller", "problem_for", "problem_response",
           "read_body"]

PROBLEM_TYPE = "application/problem+json"
RETRY_AFTER_DOWN = 5  # seconds a client should wait when the key back end or a store is down


class Problem(Exception):
    """An RFC 9457 problem; raised by handlers, rendered by the app's exception handler."""

    def __init__(self, status: int, title: str, detail: str = "", *, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            data["detail"] = self.detail[:500]
        if self.field is not None:
            data["field"] = self.field
        return data


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body(), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_TYPE)


def problem_for(error: KeyplaneError, field: str | None = None) -> Problem:
    """The HTTP answer to a library error (messages are the library's: they never hold a secret)."""
    if isinstance(error, BackendUnavailable | AuthenticationFailed):
        return Problem(503, "Service Unavailable", f"a back end is unavailable ({type(error).__name__})",
                       headers={"Retry-After": str(RETRY_AFTER_DOWN)})
    if isinstance(error, StateCorrupt):
        return Problem(500, "State Corrupt", "a state store is damaged; the operator has to look at it")
    if isinstance(error, KeyNotFound):
        return Problem(404, "Not Found", str(error), field=field)
    if isinstance(error, PermissionDenied):
        return Problem(403, "Forbidden", str(error), field=field)
    if isinstance(error, TokenError):
        return Problem(422, "Token Refused", f"{type(error).__name__}: {error}", field=field)
    if isinstance(error, ConfigError | ValueError | InvalidSignature):
        return Problem(400, "Bad Request", str(error), field=field)
    return Problem(422, "Refused", f"{type(error).__name__}: {error}", field=field)


# -- JSON bodies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One body field: its JSON type (string, integer, number, boolean, object, strings, objects), limits, doc."""

    kind: str
    required: bool = False
    description: str = ""
    max_length: int = 4096
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        if self.kind == "strings":
            return {"type": "array", "items": {"type": "string", "maxLength": 256}, "maxItems": 64,
                    "description": self.description}
        if self.kind == "objects":
            return {"type": "array", "items": {"type": "object"}, "maxItems": 64, "description": self.description}
        schema: dict[str, Any] = {"type": self.kind, "description": self.description}
        if self.kind == "string":
            schema["maxLength"] = self.max_length
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema

    def check(self, name: str, value: Any) -> Any:
        """`value`, or a 400 problem naming `name` and what it must be (built only when it is refused)."""
        if not self._accepts(value):
            raise Problem(400, "Invalid Field", f"'{name}' must be {self._expected()}", field=name)
        return value

    def _accepts(self, value: Any) -> bool:
        if self.kind == "string":
            return (isinstance(value, str) and bool(value) and len(value) <= self.max_length
                    and (not self.choices or value in self.choices))
        if self.kind == "integer" or self.kind == "number":
            kinds = (int,) if self.kind == "integer" else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
                return False
            return not ((self.minimum is not None and value < self.minimum)
                        or (self.maximum is not None and value > self.maximum))
        if self.kind == "boolean":
            return isinstance(value, bool)
        if self.kind == "object":
            return isinstance(value, dict)
        if self.kind == "strings":
            return isinstance(value, list) and len(value) <= 64 and all(
                isinstance(v, str) and v and len(v) <= 256 for v in value)
        if self.kind == "objects":
            return isinstance(value, list) and len(value) <= 64 and all(isinstance(v, dict) for v in value)
        return False  # an unknown kind accepts nothing

    def _expected(self) -> str:
        if self.kind == "strings":
            return "a list of at most 64 non-empty strings"
        if self.kind == "objects":
            return "a list of at most 64 JSON objects"
        if self.choices:
            return f"one of {list(self.choices)}"
        if self.kind == "string":
            return f"a non-empty string of at most {self.max_length} characters"
        if self.kind in ("integer", "number"):
            span = f" from {self.minimum:g}" if self.minimum is not None else ""
            span += f" to {self.maximum:g}" if self.maximum is not None else ""
            return f"a{'n' if self.kind == 'integer' else ''} {self.kind}{span}"
        return f"a JSON {self.kind}"


@dataclass(frozen=True)
class Body:
    """A request body: a JSON object with exactly these fields (others refused)."""

    name: str
    fields: Mapping[str, Field]

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False,
                "properties": {n: f.schema() for n, f in self.fields.items()},
                "required": [n for n, f in self.fields.items() if f.required]}

    def parse(self, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise Problem(400, "Malformed JSON", "the body is not JSON", field="") from None
        if not isinstance(data, dict):
            raise Problem(400, "Malformed JSON", "the body must be a JSON object", field="")
        for name in data:
            if name not in self.fields:
                raise Problem(400, "Unknown Field", f"unknown field '{str(name)[:60]}'; known: {sorted(self.fields)}",
                              field=str(name)[:60])
        for name, spec in self.fields.items():
            if name not in data:
                if spec.required:
                    raise Problem(400, "Missing Field", f"'{name}' is required", field=name)
                continue
            spec.check(name, data[name])
        return data


async def read_body(request: Request, body: Body, limit: int) -> dict[str, Any]:
    """The validated JSON body; 413 past `limit` bytes (checked while reading), 415 for another type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, "Unsupported Media Type", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Content Too Large", f"the body is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Content Too Large", f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return body.parse(b"".join(chunks))


# -- callers ------------------------------------------------------------------------------------------


class _PerCaller:
    """State kept per caller name under one lock (the rate buckets, the revocation answers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[str, tuple[float, Any]] = {}


class RateLimiter(_PerCaller):
    """A token bucket per caller: `rate` requests per `window` seconds, bursts up to `rate`."""

    def __init__(self, rate: int, window: float) -> None:
        super().__init__()
        self.rate = rate
        self.window = window

    def take(self, caller: str) -> float:
        """0 when allowed; else the seconds until the next request would be."""
        now = time.monotonic()
        per_second = self.rate / self.window
        with self._lock:
            tokens, at = self._table.get(caller, (float(self.rate), now))
            tokens = min(float(self.rate), tokens + (now - at) * per_second)
            if tokens >= 1.0:
                self._table[caller] = (tokens - 1.0, now)
                return 0.0
            self._table[caller] = (tokens, now)
            return (1.0 - tokens) / per_second


class CallerRevocations(_PerCaller):
    """Whether a caller is revoked (``kind="caller"`` in the store), asked at most once a second per caller.

    The event loop must not wait on a database for every request; a revocation made through
    this service clears the cache at once, one made elsewhere takes effect within `ttl`.
    Raises the problem of the store's error (503 when it is down).
    """

    def __init__(self, store: Any, ttl: float = 1.0) -> None:
        super().__init__()
        self.store = store
        self.ttl = ttl

    def revoked(self, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._table.get(name)
        if held is not None and now - held[0] < self.ttl:
            return bool(held[1])
        try:
            answer = bool(self.store.is_revoked(name, kind="caller"))
        except KeyplaneError as e:
            raise problem_for(e) from e
        with self._lock:
            self._table[name] = (now, answer)
        return answer

    def clear(self) -> None:
        with self._lock:
            self._table.clear()


class CallerIndex:
    """The callers by the SHA-256 of their bearer token: one dict look-up a request.

    Comparing the presented token with every configured token costs a `reveal()` and a
    constant-time compare per caller on every request. Looking up the token's digest
    instead leaks at most timing about a SHA-256 of the token (not the token: a prefix
    match of digests says nothing about the preimage). The last caller with a token wins,
    as with the comparison loop.
    """

    def __init__(self, callers: Mapping[str, Caller], admin: Caller | None) -> None:
        self._by_digest = {_digest(c.token.reveal().encode("utf-8")): c for c in [*callers.values(), *([admin] if admin else [])]}

    def find(self, header: str | None) -> Caller | None:
        """The caller whose token is in `header` (``Bearer <token>``), else None."""
        if not header or not header.startswith("Bearer ") or len(header) > 4096:
            return None
        return self._by_digest.get(_digest(header[7:].strip().encode("utf-8", "replace")))


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def find_caller(header: str | None, callers: Mapping[str, Caller], admin: Caller | None) -> Caller | None:
    """The caller whose token is in `header` (see `CallerIndex`; the app keeps one built at start-up)."""
    return CallerIndex(callers, admin).find(header)


def authorize(request: Request, scope: str) -> Caller:
    """The authenticated caller allowed `scope`; 401 / 403 / 429 problems otherwise."""
    state = request.app.state
    caller = state.caller_index.find(request.headers.get("authorization"))
    if caller is None:
        raise Problem(401, "Unauthorized", "a valid bearer token is required",
                      headers={"WWW-Authenticate": 'Bearer realm="keyplane"'})
    request.state.caller = caller.name
    if state.callers_revoked.revoked(caller.name):
        raise Problem(403, "Caller Revoked", f"caller {caller.name!r} is revoked")
    if not caller.allows(scope):
        raise Problem(403, "Insufficient Scope", f"this call needs the scope {scope!r}",
                      headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
    wait = state.limiter.take(caller.name)
    if wait > 0:
        state.service.metrics.inc("keyplane_rate_limited_total", caller=caller.name)
        raise Problem(429, "Too Many Requests", "the caller's rate limit is exceeded",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return caller


async def call(request: Request, operation: str, function: Any, *args: Any, field: str | None = None,
               **kwargs: Any) -> Any:
    """Run one library call on keyplane's I/O pool, inside the caller's audit context.

    Every signature made inside (through the audited issuer signer) is recorded with the
    caller's name, the operation and the request id; a library error becomes its problem.
    The pool hop takes the context along (`run_blocking` copies the contextvars).
    """
    return await call_async(request, operation, run_blocking, functools.partial(function, *args, **kwargs),
                            field=field)  # keyplane's I/O pool: a plain executor hop, no anyio limiter


async def call_async(request: Request, operation: str, function: Any, *args: Any, field: str | None = None,
                     **kwargs: Any) -> Any:
    """`call` for a coroutine function: awaited on the loop (no worker thread), in the caller's audit context.

    For library calls that never block the loop: their I/O is awaited (`sign_async`, the
    audit log's `append_async`), not waited for.
    """
    try:
        with audit_context(caller=getattr(request.state, "caller", None), op=operation,
                           request=getattr(request.state, "request_id", None)):
            return await function(*args, **kwargs)
    except KeyplaneError as e:
        raise problem_for(e, field) from e
