"""The gate for MCP servers built with the official Python SDK (``mcp`` 2.x, ``keyplane[agents]``).

Two hooks of the SDK, nothing patched:

- `PassportTokenVerifier` is the SDK's ``TokenVerifier``: the MCP server's bearer token is
  the agent's passport, checked for signature, expiry and ``jti`` revocation on every HTTP
  request (a bad one is a 401 from the SDK's own auth middleware);
- `ToolGate` is a ``ServerMiddleware``: before each ``tools/call`` it asks the `Gate`
  (every check, including group / agent revocation and stage) with the tool's name and
  arguments; the proof of possession and action token travel in the call's ``_meta``
  (``keyplane/proof``, ``keyplane/action``). A DENY becomes a tool result with
  ``isError`` set, the reason as text and ``structuredContent.keyplane`` holding
  ``checks_failed``, so the client learns why.

`gated_server(...)` builds an ``MCPServer`` with both hooks and a ``GET
/.well-known/keyplane-challenge`` route serving fresh challenges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..clock import DEFAULT_LEEWAY
from ..errors import TokenError
from ..jose import KeySource, as_jwks
from ..passport import verify_passport
from ..revocation import RevocationCheck
from ..sdk import require
from .errors import PolicyError
from .events import RejectionEvents, report_to
from .gate import Decision, Gate

__all__ = [
    "ACTION_META",
    "CHALLENGE_ROUTE",
    "PROOF_META",
    "PassportTokenVerifier",
    "ToolGate",
    "gated_server",
    "tool_call_meta",
]

PROOF_META = "keyplane/proof"
ACTION_META = "keyplane/action"
CHALLENGE_ROUTE = "/.well-known/keyplane-challenge"
_EXTRA = "agents"


def _sdk(module: str) -> Any:
    return require(module, _EXTRA, "MCP adapter")


class PassportTokenVerifier:
    """The SDK's TokenVerifier over passports: authentication only (signature, expiry, jti)."""

    def __init__(
        self,
        issuer_keys: KeySource,
        *,
        revocations: RevocationCheck | None = None,
        issuer: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        events: RejectionEvents | None = None,
        leeway: float = DEFAULT_LEEWAY,
    ) -> None:
        self._access_token = _sdk("mcp.server.auth.provider").AccessToken
        self.issuer_keys = as_jwks(issuer_keys)
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.events = events
        self.leeway = leeway

    async def verify_token(self, token: str) -> Any:
        """An ``AccessToken`` (client_id and subject = the agent) or None to refuse."""
        try:
            passport = verify_passport(token, self.issuer_keys, revocations=self.revocations, issuer=self.issuer,
                                       audience=self.audience, leeway=self.leeway)
        except TokenError as e:
            report_to(self.events, "mcp-bearer", e, token=token)
            return None
        return self._access_token(
            token=token, client_id=passport.sub, scopes=list(passport.scopes),
            expires_at=int(passport.expires_at.timestamp()), subject=passport.sub,
            claims={"iss": passport.iss, "stage": passport.stage, "jti": passport.jti},
        )


class ToolGate:
    """An MCP ``ServerMiddleware`` running the gate before every tool call."""

    def __init__(self, gate: Gate, server: str) -> None:
        if not isinstance(gate, Gate) or not isinstance(server, str) or not server:
            raise PolicyError("ToolGate needs a Gate and the server's name in the gate policy")
        self.gate = gate
        self.server = server
        self._types = _sdk("mcp.types")
        self._auth = _sdk("mcp.server.auth.middleware.auth_context")

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params: Mapping[str, Any] = ctx.params or {}
        name = params.get("name")
        arguments = params.get("arguments") or {}
        meta = params.get("_meta") or {}
        access = self._auth.get_access_token()
        if access is None or not isinstance(name, str) or not isinstance(arguments, dict):
            return self._denied("a passport (bearer token) and a tool name are required", None)
        decision = self.gate.decide(
            access.token, tool=name, server=self.server, proof=_meta(meta, PROOF_META),
            action_token=_meta(meta, ACTION_META), params=arguments, context={"transport": "mcp", "tool": name},
        )
        if not decision.allow:
            return self._denied(decision.reason, decision)
        return await call_next(ctx)

    def _denied(self, reason: str, decision: Decision | None) -> Any:
        summary: dict[str, Any] = {"allow": False, "reason": reason}
        if decision is not None:
            summary.update(checks_failed=list(decision.checks_failed), checks_passed=list(decision.checks_passed))
        return self._types.CallToolResult(
            content=[self._types.TextContent(type="text", text=f"keyplane gate denied: {reason}")],
            structured_content={"keyplane": summary}, is_error=True,
        )


def tool_call_meta(*, proof: str | None = None, action_token: str | None = None) -> dict[str, str]:
    """The client's side: the ``_meta`` of a gated ``tools/call`` (``session.call_tool(..., meta=...)``)."""
    meta = {}
    if proof is not None:
        meta[PROOF_META] = proof
    if action_token is not None:
        meta[ACTION_META] = action_token
    return meta


def _meta(meta: Any, key: str) -> str | None:
    value = meta.get(key) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) and value else None


def gated_server(
    name: str,
    gate: Gate,
    *,
    server: str | None = None,
    url: str = "http://127.0.0.1",
    verifier: PassportTokenVerifier | None = None,
    now: datetime | None = None,
) -> Any:
    """An ``MCPServer`` whose bearer tokens are passports and whose tools are gated.

    `server` is the server's name in the gate policy (default: `name`); `url` is what the
    SDK advertises as the resource server. Add tools with the usual ``@server.tool()``.
    """
    mcpserver = _sdk("mcp.server.mcpserver")
    settings = _sdk("mcp.server.auth.settings")
    responses = _sdk("starlette.responses")
    token_verifier = verifier or PassportTokenVerifier(gate.issuer_keys, revocations=gate.revocations,
                                                       events=gate.events, leeway=gate.leeway)
    auth = settings.AuthSettings(issuer_url=url, resource_server_url=None)
    app = mcpserver.MCPServer(name, token_verifier=token_verifier, auth=auth,
                              middleware=[ToolGate(gate, server or name)])

    @app.custom_route(CHALLENGE_ROUTE, methods=["GET"])
    async def challenge(request: Any) -> Any:
        return responses.JSONResponse(gate.challenge(now=now).to_dict(), headers={"cache-control": "no-store"})

    return app
