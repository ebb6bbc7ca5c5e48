"""The gate as ASGI middleware (Starlette-compatible, no framework import needed).

``app = GateMiddleware(app, gate=gate, server="payments")`` or, in Starlette,
``Middleware(GateMiddleware, gate=gate, server="payments")``. For each HTTP request:

- the passport comes from ``Authorization: Bearer <passport>`` (missing: 401);
- the proof of possession from the ``Keyplane-Proof`` header, the action token from
  ``Keyplane-Action``; a fresh challenge is served (JSON) at ``GET /.well-known/keyplane-challenge``;
- the tool is the request path without its leading ``/`` (or `tool_of(scope)`), and the
  params bound by an action token are the request's JSON object body (read once, bounded,
  and replayed to the application unchanged);
- DENY answers 403 with ``{allow, reason, checks_failed, checks_passed}``; ALLOW passes the
  request on with the `Decision` in ``scope["state"]["keyplane_decision"]``;
- a WebSocket is gated at its handshake the same way (a DENY closes it with code 1008),
  so no connection type reaches the application ungated.

Gate checks are CPU-only (no I/O besides the revocation store), so they run inline.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import PolicyError
from .gate import Gate

__all__ = ["CHALLENGE_PATH", "GateMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHALLENGE_PATH = "/.well-known/keyplane-challenge"
PROOF_HEADER = b"keyplane-proof"
ACTION_HEADER = b"keyplane-action"
_MAX_BODY = 1024 * 1024
_MAX_TOKEN = 64 * 1024


class GateMiddleware:
    """Pure-ASGI middleware that asks the gate before every HTTP request reaches the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: Gate,
        server: str,
        tool_of: Callable[[Scope], str] | None = None,
        max_body: int = _MAX_BODY,
    ) -> None:
        if not isinstance(gate, Gate) or not isinstance(server, str) or not server:
            raise PolicyError("GateMiddleware needs gate=Gate(...) and a server name")
        self.app = app
        self.gate = gate
        self.server = server
        self.tool_of = tool_of or (lambda scope: str(scope.get("path", "/")).lstrip("/") or "/")
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        if kind != "http":  # lifespan: start-up and shut-down, no request to gate
            await self.app(scope, receive, send)
            return
        if scope.get("path") == CHALLENGE_PATH and scope.get("method") == "GET":
            challenge = self.gate.challenge()
            await _json(send, 200, challenge.to_dict())
            return
        headers = _headers(scope)
        token = _bearer(headers.get(b"authorization"))
        if token is None:
            await _json(send, 401, {"allow": False, "reason": "a passport is required (Authorization: Bearer)"},
                        extra=[(b"www-authenticate", b'Bearer realm="keyplane"')])
            return
        body, receive = await _buffer(receive, self.max_body)
        if body is None:
            await _json(send, 413, {"allow": False, "reason": f"request body over {self.max_body} bytes"})
            return
        params = _params(body)
        client = scope.get("client")
        decision = self.gate.decide(
            token, tool=self.tool_of(scope), server=self.server,
            proof=_text(headers.get(PROOF_HEADER)), action_token=_text(headers.get(ACTION_HEADER)),
            params=params, context={"remote": f"{client[0]}:{client[1]}" if client else None},
        )
        if not decision.allow:
            await _json(send, 403, {"allow": False, "reason": decision.reason,
                                    "checks_failed": list(decision.checks_failed),
                                    "checks_passed": list(decision.checks_passed)})
            return
        scope.setdefault("state", {})["keyplane_decision"] = decision
        await self.app(scope, receive, send)


    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket is gated at its handshake (no body: params are {}); a DENY closes it with 1008."""
        headers = _headers(scope)
        token = _bearer(headers.get(b"authorization"))
        decision = None
        if token is not None:
            decision = self.gate.decide(token, tool=self.tool_of(scope), server=self.server,
                                        proof=_text(headers.get(PROOF_HEADER)),
                                        action_token=_text(headers.get(ACTION_HEADER)), params={})
        if decision is None or not decision.allow:
            message = await receive()  # websocket.connect must come before the refusal
            if message.get("type") == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008,
                            "reason": (decision.reason if decision else "a passport is required")[:120]})
            return
        scope.setdefault("state", {})["keyplane_decision"] = decision
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(bytes(name).lower(), bytes(value))
    return found


def _bearer(value: bytes | None) -> str | None:
    if not value or len(value) > _MAX_TOKEN:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1").strip() if value and len(value) <= _MAX_TOKEN else None


def _params(body: bytes) -> dict[str, Any]:
    """The JSON object body as the params an action token binds; {} for anything else."""
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {"\0body": body.hex()}  # a non-JSON body never matches a params_hash made for JSON params
    return value if isinstance(value, dict) else {"\0body": value}


async def _buffer(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the whole body (at most `limit` bytes) and a `receive` that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _json(send: Send, status: int, data: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(data, separators=(",", ":"), default=str).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"cache-control", b"no-store"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
