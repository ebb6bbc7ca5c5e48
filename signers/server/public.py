"""The unauthenticated endpoints verifiers fetch, and the probes an orchestrator polls.

``GET /.well-known/jwks.json``   current and rotated-out issuer keys; Cache-Control, ETag, 304
``GET /revocations.jwt``         the signed revocation list (``revocation-list+jwt``)
``GET /statuslists/1``           the Token Status List (``application/statuslist+jwt``), if configured
``GET /ca/crl``                  the CA's CRL, DER (``application/pkix-crl``), if a CA is configured
``GET /ca/certificates``         the CA chain, PEM
``GET /healthz`` / ``/readyz``   alive / ready (ready only when the issuer key answers a signature)
``GET /metrics``                 Prometheus text format
"""

from __future__ import annotations

import hashlib
import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import KeyplaneError
from ..x509 import to_pem
from .http import RETRY_AFTER_DOWN, Problem, problem_for
from .metrics import CONTENT_TYPE

__all__ = ["DocumentCache", "ca_certificates", "crl", "healthz", "jwks", "metrics", "readyz", "revocation_list",
           "status_list"]

_DOCUMENT_SECONDS = 5.0  # a signed list is re-signed at most this often (and at once after a revocation)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def cached(request: Request, body: bytes, media_type: str, max_age: int) -> Response:
    """`body` with ETag and Cache-Control, or 304 when the client's If-None-Match matches."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    presented = request.headers.get("if-none-match", "")
    if etag in [value.strip().removeprefix("W/") for value in presented.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


class DocumentCache:
    """A signed document kept for a few seconds and dropped when what it lists changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, bytes]] = {}

    def get(self, name: str, make: object) -> bytes:
        with self._lock:
            held = self._held.get(name)
        if held is not None and time.monotonic() - held[0] < _DOCUMENT_SECONDS:
            return held[1]
        body: bytes = make()  # type: ignore[operator]
        with self._lock:
            self._held[name] = (time.monotonic(), body)
        return body

    def invalidate(self) -> None:
        with self._lock:
            self._held.clear()


async def _document(request: Request, name: str, make: object) -> bytes:
    try:
        return await run_in_threadpool(request.app.state.documents.get, name, make)
    except KeyplaneError as e:
        raise problem_for(e) from e


async def jwks(request: Request) -> Response:
    state = request.app.state
    return cached(request, state.jwks_body, "application/jwk-set+json", state.config.jwks_max_age)


async def revocation_list(request: Request) -> Response:
    service = request.app.state.service
    body = await _document(request, "revocations", lambda: service.revocation_list().encode())
    return cached(request, body, "application/jwt", min(10, service.config.revocation_list_ttl))


async def status_list(request: Request) -> Response:
    service = request.app.state.service
    if service.status_lists is None:
        raise Problem(404, "Not Found", "this service publishes no status list ([server.status_list])")
    body = await _document(request, "status", lambda: service.status_lists.publish().encode())
    return cached(request, body, "application/statuslist+jwt", int(service.status_lists.ttl))


async def crl(request: Request) -> Response:
    service = request.app.state.service
    if service.ca is None:
        raise Problem(404, "Not Found", "this service has no CA ([server.ca])")
    body = await _document(request, "crl", service.crl_der)
    return cached(request, body, "application/pkix-crl", 60)


async def ca_certificates(request: Request) -> Response:
    service = request.app.state.service
    if service.ca is None:
        raise Problem(404, "Not Found", "this service has no CA ([server.ca])")
    body = b"".join(to_pem(c) for c in service.ca_certificates())
    return cached(request, body, "application/pem-certificate-chain", 3600)


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> Response:
    problem = await run_in_threadpool(request.app.state.service.ready)
    if problem is not None:
        return JSONResponse({"ready": False, "reason": problem}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_DOWN)})
    return JSONResponse({"ready": True})


async def metrics(request: Request) -> Response:
    service = request.app.state.service
    hooks = service.webhooks
    extra = (f"# HELP keyplane_webhooks_dropped_total webhook events dropped (queue full or shutdown)\n"
             f"# TYPE keyplane_webhooks_dropped_total counter\nkeyplane_webhooks_dropped_total {hooks.dropped}\n")
    return Response(service.metrics.render() + extra, media_type=CONTENT_TYPE)
