"""The HTTPS server: authentication (the bearer challenge), injected faults, the Handle, start / serve_forever."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .model import ALL_PERMISSIONS, SERVICE_VERSION, TENANT, Fail, Vault
from .operations import route
from .tls import certificates


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: float | None



class Handle:
    """A running emulator: its URL, CA file and token; `stop()` shuts it down and removes the CA dir."""

    def __init__(self, server: Server, thread: threading.Thread, workdir: Path, url: str, token: str) -> None:
        self._server = server
        self._thread = thread
        self._workdir = workdir
        self.url = url
        self.ca_pem_path = str(workdir / "ca.pem")
        self.token = token
        self.port = server.server_address[1]

    def add_token(self, token: str, permissions: Iterable[str] = ALL_PERMISSIONS) -> None:
        """Accept another bearer token, allowed only `permissions` (Key Vault key permission names)."""
        unknown = set(permissions) - ALL_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown key permission(s) {sorted(unknown)}")
        with self._server.state_lock:
            self._server.tokens[token] = frozenset(permissions)

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `count` authenticated requests with `status` (e.g. 429, 503), then behave."""
        with self._server.state_lock:
            self._server.fault = _Fault(status, count, retry_after)

    def clear_faults(self) -> None:
        with self._server.state_lock:
            self._server.fault = None

    @property
    def request_count(self) -> int:
        """Requests answered so far (including challenges): lets tests see that a retry happened."""
        return self._server.requests_seen

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:  # the token stays out of reprs, as everywhere in keyplane
        return f"Handle(url={self.url!r}, ca_pem_path={self.ca_pem_path!r})"


class Server(ThreadingHTTPServer):
    """Threaded HTTPS server; TLS handshakes run in the per-connection thread, not the accept loop."""

    daemon_threads = True
    request_queue_size = 128  # 64 concurrent clients must not overflow the listen backlog
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, vault: Vault, token: str,
                 resource: str) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)
        self.context = context
        self.vault = vault
        self.resource = resource
        self.state_lock = threading.Lock()
        self.tokens: dict[str, frozenset[str]] = {token: ALL_PERMISSIONS}
        self.fault: _Fault | None = None
        self.requests_seen = 0
        self.base_url = ""

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up during the handshake (or a port probe): nothing to answer
        try:
            super().finish_request(request, client_address)
        finally:
            with contextlib.suppress(OSError):
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-response is not the emulator's failure; keep stderr clean

    def take_fault(self) -> _Fault | None:
        with self.state_lock:
            self.requests_seen += 1
            fault = self.fault
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.fault = None
            return fault


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the vault; every answer is JSON with Content-Length (keep-alive)."""

    server: Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go out in separate writes: no 40 ms delayed-ACK stall
    server_version = "keyplane-azure-keyvault-emulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: request lines carry nothing useful and stderr belongs to the tests

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- plumbing ----------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        segments = [unquote(s) for s in split.path.strip("/").split("/")] if split.path.strip("/") else []
        try:
            permissions = self._authenticate()
            fault = self.server.take_fault()
            if fault is not None:
                headers = {"Retry-After": _retry_after_text(fault.retry_after)} if fault.retry_after is not None else {}
                code = "Throttled" if fault.status == 429 else "ServiceUnavailable"
                raise Fail(fault.status, code, "Injected failure.", headers)
            if "api-version" not in query:
                raise Fail(400, "BadParameter", "The request is missing the api-version query parameter.")
            status, payload = route(self.server, method, segments, query, body, permissions)
        except Fail as e:
            self._send(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)
            return
        self._send(status, payload)

    def _authenticate(self) -> frozenset[str]:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {
            "WWW-Authenticate": (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="{self.server.resource}"'
            )
        }
        if scheme.lower() != "bearer" or not token:
            with self.server.state_lock:
                self.server.requests_seen += 1
            raise Fail(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", challenge)
        with self.server.state_lock:
            permissions = self.server.tokens.get(token.strip())
        if permissions is None:
            with self.server.state_lock:
                self.server.requests_seen += 1
            raise Fail(401, "Unauthorized", "AKV10032: Invalid issuer or token.", challenge)  # never echo the token
        return permissions

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-keyvault-service-version", SERVICE_VERSION)
        self.send_header("x-ms-keyvault-region", "local")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)


def _retry_after_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)



# -- entry points ------------------------------------------------------------------------------


def start(host: str = "127.0.0.1", port: int = 0, token: str | None = None, *, managed_hsm: bool = False) -> Handle:
    """Start the emulator in background threads; returns once it accepts connections.

    `token` is the bearer token it accepts (a random one if None, in `Handle.token`).
    `managed_hsm` makes it behave as a Managed HSM (only EC-HSM / RSA-HSM keys; the
    challenge names https://managedhsm.azure.net).
    """
    workdir = Path(tempfile.mkdtemp(prefix="keyplane-azure-emulator-"))
    try:
        context = certificates(workdir, host)
        token = token or secrets.token_urlsafe(32)
        resource = "https://managedhsm.azure.net" if managed_hsm else "https://vault.azure.net"
        server = Server((host, port), context, Vault(managed_hsm), token, resource)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    bound_port = server.server_address[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"https://{url_host}:{bound_port}"
    server.base_url = url
    thread = threading.Thread(target=server.serve_forever, name=f"azure-kv-emulator:{bound_port}", daemon=True)
    thread.start()
    return Handle(server, thread, workdir, url, token)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve_forever(host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
    """Run in the foreground (``keyplane emulator azure``): print how to connect, block until Ctrl-C."""
    handle = start(host, port, token=options.get("token"), managed_hsm=bool(options.get("managed_hsm", False)))
    authority = handle.url.removeprefix("https://")
    print(f"Azure Key Vault emulator (keys API) listening on {handle.url}")
    print(f"  CA certificate : {handle.ca_pem_path}")
    print(f"  bearer token   : {handle.token}")
    print()
    print("  keyplane:")
    print(f"    export KEYPLANE_AZURE_TOKEN='{handle.token}'")
    print(f"    keyplane conformance run 'azurekms://{authority}?ca-bundle={handle.ca_pem_path}"
          "&token-source=env:KEYPLANE_AZURE_TOKEN'")
    print("  azure-keyvault-keys:")
    print(f"    KeyClient('{handle.url}', credential, verify_challenge_resource=False, "
          f"connection_verify='{handle.ca_pem_path}')")
    print("Press Ctrl-C to stop.", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C (CA dir removed)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        handle.stop()
