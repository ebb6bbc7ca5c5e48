"""The ASGI application: routes, error rendering, the dashboard's static files, shutdown.

`create_app(service)` returns a Starlette app; `build(config)` makes the Service too. A
library error that escapes a handler is rendered as a problem (503 with Retry-After when a
back end is down); anything else is a bare 500 problem with no detail (it is logged by
class only). Shutdown (uvicorn's lifespan) drains the webhook queue for a grace period,
reports what it had to drop, and closes the stores and keys.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import KeyplaneError
from . import api_agents as agents
from . import api_tokens as tokens
from . import public
from .config import Caller, ServerConfig
from .http import CallerIndex, CallerRevocations, Problem, RateLimiter, problem_for, problem_response
from .logs import AccessLog
from .openapi import openapi_document
from .service import Service

__all__ = ["build", "create_app"]

log = logging.getLogger("keyplane.server")


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def _library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyplaneError)
    return problem_response(problem_for(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error", extra={"fields": {"error": type(exc).__name__, "path": request.url.path}})
    return problem_response(Problem(500, "Internal Server Error"))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    return problem_response(Problem(status, "Not Found" if status == 404 else "Refused", f"no route {request.method} "
                                    f"{request.url.path[:100]}" if status in (404, 405) else ""))


# path -> endpoint; several a line, so the table reads as data, not as repeated calls
_GET = {"/.well-known/jwks.json": public.jwks, "/revocations.jwt": public.revocation_list,
        "/statuslists/1": public.status_list, "/ca/crl": public.crl, "/ca/certificates": public.ca_certificates,
        "/healthz": public.healthz, "/readyz": public.readyz, "/metrics": public.metrics,
        "/v1/gate/challenge": tokens.challenge, "/v1/agents/{agent}/history": agents.agent_history,
        "/v1/dashboard": agents.dashboard}
_POST = {"/v1/passports": tokens.issue_passport, "/v1/actions": tokens.issue_action, "/v1/verify": tokens.verify,
         "/v1/revocations": tokens.revoke, "/v1/gate": tokens.gate, "/v1/agents": agents.register_agent,
         "/v1/agents/{agent}/advance": agents.advance_agent, "/v1/agents/{agent}/suspend": agents.suspend_agent,
         "/v1/certificates": agents.certificate, "/v1/receipts": agents.submit_receipt,
         "/v1/receipts/verify": agents.verify_receipt_output}


def _routes() -> list[Any]:
    """The hot API routes first (Starlette tries them in order), then the public documents and the dashboard."""
    dashboard = resources.files("signers.server") / "dashboard"
    return [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in _POST.items()),
        *(Route(path, endpoint) for path, endpoint in _GET.items()),
        Route("/v1/agents", agents.list_agents, methods=["GET"]),
        Route("/openapi.json", _openapi),
        Route("/", lambda request: RedirectResponse("/dashboard/index.html")),
        Mount("/dashboard", StaticFiles(directory=str(dashboard)), name="dashboard"),
    ]


async def _openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def create_app(service: Service) -> Any:
    """The ASGI app for `service` (wrapped in the access log); closes `service` at shutdown."""
    config = service.config

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("keyplane serve started", extra={"fields": {
            "issuer": config.issuer, "kid": service.raw_signer.key_id, "keys": len(service.jwks),
            "listen": f"{config.host}:{config.port}"}})
        try:
            yield
        finally:
            dropped = service.close()
            log.info("keyplane serve stopped", extra={"fields": {"webhooks_dropped": dropped}})

    app = Starlette(routes=_routes(), lifespan=lifespan, exception_handlers={
        Problem: _problem, KeyplaneError: _library_error, 404: _not_found, 405: _not_found, Exception: _unexpected,
    })
    app.state.service = service
    app.state.config = config
    app.state.admin = Caller("admin", config.admin_token, frozenset({"admin"})) if config.admin_token else None
    app.state.caller_index = CallerIndex(config.callers, app.state.admin)
    app.state.limiter = RateLimiter(config.rate_limit, config.rate_window)
    app.state.callers_revoked = CallerRevocations(service.revocations)
    app.state.documents = public.DocumentCache()
    app.state.jwks_body = service.jwks_document()
    app.state.openapi = openapi_document(config.issuer)
    return AccessLog(SecurityHeaders(app), service.metrics)


_CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders:
    """nosniff and no framing on every answer; a strict CSP on the dashboard (no inline script, no CDN)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dashboard = scope.get("path", "").startswith("/dashboard")

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
                if dashboard:
                    headers += [(b"content-security-policy", _CSP), (b"cache-control", b"no-cache")]
            await send(message)

        await self.app(scope, receive, sending)


def build(config: ServerConfig, **service_options: Any) -> Any:
    """`create_app(Service(config))`."""
    return create_app(Service(config, **service_options))
