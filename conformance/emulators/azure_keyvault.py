"""A local Azure Key Vault (keys API) over HTTPS, with real keys, for the real azure-keyvault-keys SDK.

No Key Vault server can be run outside Azure, so this speaks the Key Vault REST API
(api-version 7.x / 2025-07-01) on loopback well enough for ``KeyClient`` and
``CryptographyClient``: create, get (latest or a version), list keys, list versions,
delete (soft delete: get deleted, purge, recover), rotate, sign and verify. Keys and
signatures are real (`cryptography`); EC signatures are raw r||s as Key Vault returns them.

Authentication is modelled as the SDK expects it: a request without a bearer token gets
``401`` with the ``WWW-Authenticate: Bearer authorization=..., resource=...`` challenge, the
SDK then retries with its credential's token, and a token the emulator does not know gets
``401`` again. Tokens may be given a subset of Key Vault's key permissions (``get``,
``list``, ``create``, ``delete``, ``sign``, ``verify``, ``purge``, ``recover``, ``rotate``)
to produce ``403``. `Handle.fail_next` injects ``429``/``5xx`` answers (with ``Retry-After``)
so that retry paths are tested against a real server.

TLS: a throwaway CA and a server certificate (for 127.0.0.1, ::1 and localhost) are made at
start; point the client at ``Handle.ca_pem_path`` (``connection_verify=`` in the SDK,
``?ca-bundle=`` in a keyplane URI). The SDK must be built with ``verify_challenge_resource=False``
because the vault's host is not under vault.azure.net.

    handle = start()                      # in-process, on a free port
    KeyClient(handle.url, credential, verify_challenge_resource=False, connection_verify=handle.ca_pem_path)
    handle.stop()

``keyplane emulator azure --port N`` runs it in the foreground (`serve_forever`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import re
import secrets
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ALL_PERMISSIONS", "Handle", "serve_forever", "start"]

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # any GUID: the SDK passes it to the credential only
SERVICE_VERSION = "1.9.2770.1"
ALL_PERMISSIONS = frozenset({"get", "list", "create", "delete", "sign", "verify", "purge", "recover", "rotate"})
PAGE_SIZE = 25  # Key Vault's default and maximum `maxresults`
RECOVERABLE_DAYS = 90

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")

# Key Vault's curve names -> `cryptography` curves, and the one ECDSA algorithm each allows.
_CURVES: dict[str, tuple[ec.EllipticCurve, str, int]] = {
    "P-256": (ec.SECP256R1(), "ES256", 32),
    "P-384": (ec.SECP384R1(), "ES384", 48),
    "P-521": (ec.SECP521R1(), "ES512", 66),
    "P-256K": (ec.SECP256K1(), "ES256K", 32),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512, "256K": hashes.SHA256,
}
_RSA_SIZES = frozenset({2048, 3072, 4096})
_EC_OPS = ["sign", "verify"]
_RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
_KNOWN_OPS = frozenset({*_RSA_OPS, "import", "export"})


def _b64url(data: bytes) -> str:
    """Unpadded base64url: the encoding of every binary field in the Key Vault REST API."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: Any) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise _Fail(400, "BadParameter", "Property value is not valid base64url.")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big")


class _Fail(Exception):
    """An error answer: status, Key Vault error code, message (and optional extra headers)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class _KeyVersion:
    name: str
    version: str
    kty: str  # EC, EC-HSM, RSA, RSA-HSM: as created
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    key_ops: list[str]
    enabled: bool = True
    not_before: int | None = None
    expires: int | None = None
    tags: dict[str, str] | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def curve(self) -> str | None:
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return next(n for n, (c, _, _) in _CURVES.items() if c.name == self.private_key.curve.name)
        return None


@dataclass
class _Deleted:
    versions: list[_KeyVersion]
    deleted_date: int


class _Vault:
    """The state of one vault: keys by name (versions in creation order) and soft-deleted keys."""

    def __init__(self, managed_hsm: bool) -> None:
        self.managed_hsm = managed_hsm
        self.lock = threading.Lock()
        self.keys: dict[str, list[_KeyVersion]] = {}
        self.deleted: dict[str, _Deleted] = {}


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: float | None


class Handle:
    """A running emulator: its URL, CA file and token; `stop()` shuts it down and removes the CA dir."""

    def __init__(self, server: _Server, thread: threading.Thread, workdir: Path, url: str, token: str) -> None:
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


class _Server(ThreadingHTTPServer):
    """Threaded HTTPS server; TLS handshakes run in the per-connection thread, not the accept loop."""

    daemon_threads = True
    request_queue_size = 128  # 64 concurrent clients must not overflow the listen backlog
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, vault: _Vault, token: str,
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

    server: _Server
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
                raise _Fail(fault.status, code, "Injected failure.", headers)
            if "api-version" not in query:
                raise _Fail(400, "BadParameter", "The request is missing the api-version query parameter.")
            status, payload = _route(self.server, method, segments, query, body, permissions)
        except _Fail as e:
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
            raise _Fail(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", challenge)
        with self.server.state_lock:
            permissions = self.server.tokens.get(token.strip())
        if permissions is None:
            with self.server.state_lock:
                self.server.requests_seen += 1
            raise _Fail(401, "Unauthorized", "AKV10032: Invalid issuer or token.", challenge)  # never echo the token
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


# -- the REST operations -----------------------------------------------------------------


def _route(
    server: _Server, method: str, seg: list[str], query: dict[str, str], body: bytes, perms: frozenset[str]
) -> tuple[int, Any]:
    """(status, JSON payload) for one authenticated request; _Fail for every error answer."""
    vault = server.vault
    ops = _Ops(server.base_url, vault, perms, query)
    request = _json(body) if body else {}
    n = len(seg)
    if n == 1 and seg[0] == "keys" and method == "GET":
        return 200, ops.list_keys()
    if n == 1 and seg[0] == "deletedkeys" and method == "GET":
        return 200, ops.list_deleted()
    if n >= 2 and seg[0] == "keys":
        name = seg[1]
        if n == 2 and method == "GET":
            return 200, ops.get(name, None)
        if n == 2 and method == "DELETE":
            return 200, ops.delete(name)
        if n == 3 and seg[2] == "create" and method == "POST":
            return 200, ops.create(name, request)
        if n == 3 and seg[2] == "rotate" and method == "POST":
            return 200, ops.rotate(name)
        if n == 3 and seg[2] == "versions" and method == "GET":
            return 200, ops.list_versions(name)
        if n == 3 and method == "GET":
            return 200, ops.get(name, seg[2] or None)
        if n == 4 and seg[3] == "sign" and method == "POST":
            return 200, ops.sign(name, seg[2], request)
        if n == 4 and seg[3] == "verify" and method == "POST":
            return 200, ops.verify(name, seg[2], request)
    if n == 2 and seg[0] == "deletedkeys":
        if method == "GET":
            return 200, ops.get_deleted(seg[1])
        if method == "DELETE":
            ops.purge(seg[1])
            return 204, None
    if n == 3 and seg[0] == "deletedkeys" and seg[2] == "recover" and method == "POST":
        return 200, ops.recover(seg[1])
    raise _Fail(400, "BadParameter", f"The operation {method} /{'/'.join(seg)} is not supported by this emulator.")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise _Fail(400, "BadParameter", "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise _Fail(400, "BadParameter", "The request body must be a JSON object.")
    return value


class _Ops:
    """The operations of the keys API on one vault, each checking its Key Vault permission."""

    def __init__(self, base_url: str, vault: _Vault, perms: frozenset[str], query: dict[str, str]) -> None:
        self.base = base_url
        self.vault = vault
        self.perms = perms
        self.query = query

    def _need(self, permission: str) -> None:
        if permission not in self.perms:
            raise _Fail(
                403,
                "Forbidden",
                f"The user, group or application does not have keys {permission} permission on key vault "
                f"'{self.base}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
            )

    # -- reading -------------------------------------------------------------------------

    def _versions(self, name: str) -> list[_KeyVersion]:
        versions = self.vault.keys.get(name)
        if not versions:
            raise _Fail(404, "KeyNotFound", f"A key with (name/id) {name} was not found in this key vault. If you "
                        "recently deleted this key you may be able to recover it using the correct recovery command. "
                        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")
        return versions

    def _version(self, name: str, version: str | None) -> _KeyVersion:
        versions = self._versions(name)
        if not version:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        raise _Fail(404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault. "
                    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")

    def get(self, name: str, version: str | None) -> dict[str, Any]:
        self._need("get")
        with self.vault.lock:
            return self._bundle(self._version(name, version))

    def list_keys(self) -> dict[str, Any]:
        self._need("list")
        with self.vault.lock:
            items = [self._item(versions[-1], versioned=False) for _, versions in sorted(self.vault.keys.items())]
        return self._page(items, "keys")

    def list_versions(self, name: str) -> dict[str, Any]:
        self._need("list")
        with self.vault.lock:
            items = [self._item(v, versioned=True) for v in self._versions(name)]
        return self._page(items, f"keys/{name}/versions")

    def list_deleted(self) -> dict[str, Any]:
        self._need("list")
        with self.vault.lock:
            items = [
                {**self._item(d.versions[-1], versioned=False), **self._deletion(name, d)}
                for name, d in sorted(self.vault.deleted.items())
            ]
        return self._page(items, "deletedkeys")

    def _page(self, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
        """One page of a list, with Key Vault's `nextLink` (an absolute URL with `$skiptoken`) when more remain."""
        try:
            size = min(int(self.query.get("maxresults") or PAGE_SIZE), PAGE_SIZE)
            start = int(self.query.get("$skiptoken") or 0)
        except ValueError:
            raise _Fail(400, "BadParameter", "maxresults and $skiptoken must be integers.") from None
        if size < 1:
            raise _Fail(400, "BadParameter", "maxresults must be between 1 and 25.")
        page = items[start : start + size]
        more = start + size < len(items)
        next_link = (
            f"{self.base}/{path}?api-version={self.query['api-version']}&$skiptoken={start + size}&maxresults={size}"
            if more
            else None
        )
        return {"value": page, "nextLink": next_link}

    # -- writing -------------------------------------------------------------------------

    def create(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        self._need("create")
        return self._create(name, request)

    def _create(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        if not _NAME.match(name):
            raise _Fail(400, "BadParameter", "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.")
        kty = request.get("kty")
        if self.vault.managed_hsm and kty in ("EC", "RSA"):
            raise _Fail(400, "BadParameter", f"Key type {kty} is not supported by Managed HSM; use {kty}-HSM.")
        if kty in ("EC", "EC-HSM"):
            crv = request.get("crv") or "P-256"
            if crv not in _CURVES:
                raise _Fail(400, "BadParameter", f"The curve name {crv} is not supported.")
            private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(_CURVES[crv][0])
            default_ops = _EC_OPS
        elif kty in ("RSA", "RSA-HSM"):
            size = request.get("key_size") or 2048
            exponent = request.get("public_exponent") or 65537
            if size not in _RSA_SIZES or exponent not in (3, 65537):
                raise _Fail(400, "BadParameter", f"RSA key size {size} / exponent {exponent} is not supported.")
            private_key = rsa.generate_private_key(public_exponent=exponent, key_size=size)
            default_ops = _RSA_OPS
        else:
            raise _Fail(400, "BadParameter", f"The key type {kty!r} is not supported for sign/verify keys.")
        key_ops = request.get("key_ops") or list(default_ops)
        if not isinstance(key_ops, list) or not set(key_ops) <= _KNOWN_OPS:
            raise _Fail(400, "BadParameter", "key_ops contains an unknown operation.")
        attributes = request.get("attributes") or {}
        tags = request.get("tags")
        version = _KeyVersion(
            name=name,
            version=uuid.uuid4().hex,
            kty=kty,
            private_key=private_key,
            key_ops=list(key_ops),
            enabled=attributes.get("enabled", True) is not False,
            not_before=attributes.get("nbf"),
            expires=attributes.get("exp"),
            tags=dict(tags) if isinstance(tags, dict) else None,
        )
        with self.vault.lock:
            if name in self.vault.deleted:
                raise _Fail(409, "Conflict", f"Key {name} is currently in a deleted but recoverable state, and its "
                            "name cannot be reused; in this state, the key can only be recovered or purged.")
            self.vault.keys.setdefault(name, []).append(version)  # an existing name gets a new version
            return self._bundle(version)

    def rotate(self, name: str) -> dict[str, Any]:
        """A new version with the current version's type, size/curve, operations and tags."""
        self._need("rotate")
        with self.vault.lock:
            current = self._version(name, None)
        request: dict[str, Any] = {"kty": current.kty, "key_ops": current.key_ops, "tags": current.tags}
        if current.curve:
            request["crv"] = current.curve
        else:
            request["key_size"] = current.private_key.key_size
        return self._create(name, request)  # rotation needs keys/rotate, not keys/create

    def delete(self, name: str) -> dict[str, Any]:
        self._need("delete")
        with self.vault.lock:
            versions = self._versions(name)
            record = _Deleted(versions, int(time.time()))
            del self.vault.keys[name]
            self.vault.deleted[name] = record
            return {**self._bundle(versions[-1]), **self._deletion(name, record)}

    def get_deleted(self, name: str) -> dict[str, Any]:
        self._need("get")
        with self.vault.lock:
            record = self._deleted(name)
            return {**self._bundle(record.versions[-1]), **self._deletion(name, record)}

    def purge(self, name: str) -> None:
        self._need("purge")
        with self.vault.lock:
            self._deleted(name)
            del self.vault.deleted[name]

    def recover(self, name: str) -> dict[str, Any]:
        self._need("recover")
        with self.vault.lock:
            record = self._deleted(name)
            if name in self.vault.keys:
                raise _Fail(409, "Conflict", f"Key {name} already exists.")
            del self.vault.deleted[name]
            self.vault.keys[name] = record.versions
            return self._bundle(record.versions[-1])

    def _deleted(self, name: str) -> _Deleted:
        record = self.vault.deleted.get(name)
        if record is None:
            raise _Fail(404, "KeyNotFound", f"Deleted Key not found: {name}")
        return record

    # -- cryptography --------------------------------------------------------------------

    def _usable(self, name: str, version: str, operation: str) -> _KeyVersion:
        self._need(operation)
        with self.vault.lock:
            key = self._version(name, version)
        if operation not in key.key_ops:
            raise _Fail(403, "Forbidden", f"Operation {operation} is not permitted on this key.")
        if not key.enabled:
            raise _Fail(403, "Forbidden", f"Operation {operation} is not allowed on a disabled key.")
        now = time.time()
        if (key.not_before and now < key.not_before) or (key.expires and now >= key.expires):
            raise _Fail(403, "Forbidden", f"Operation {operation} is not allowed outside the key's validity period.")
        return key

    def sign(self, name: str, version: str, request: dict[str, Any]) -> dict[str, Any]:
        key = self._usable(name, version, "sign")
        alg = request.get("alg")
        digest = _unb64url(request.get("value"))
        h = _check_alg(key, alg, digest)
        private = key.private_key
        if isinstance(private, ec.EllipticCurvePrivateKey):
            der = private.sign(digest, ec.ECDSA(utils.Prehashed(h)))
            r, s = utils.decode_dss_signature(der)
            size = _CURVES[key.curve or ""][2]
            signature = _int_bytes(r, size) + _int_bytes(s, size)  # Key Vault returns raw r||s (JWS form)
        else:
            signature = private.sign(digest, _rsa_padding(str(alg), h), utils.Prehashed(h))
        return {"kid": self._kid(key), "value": _b64url(signature)}

    def verify(self, name: str, version: str, request: dict[str, Any]) -> dict[str, Any]:
        key = self._usable(name, version, "verify")
        alg = request.get("alg")
        digest = _unb64url(request.get("digest"))
        signature = _unb64url(request.get("value"))
        h = _check_alg(key, alg, digest)
        public = key.private_key.public_key()
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                half = len(signature) // 2
                der = utils.encode_dss_signature(
                    int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
                )
                public.verify(der, digest, ec.ECDSA(utils.Prehashed(h)))
            else:
                public.verify(signature, digest, _rsa_padding(str(alg), h), utils.Prehashed(h))
        except (InvalidSignature, ValueError):
            return {"value": False}
        return {"value": True}

    # -- JSON shapes ---------------------------------------------------------------------

    def _kid(self, key: _KeyVersion, versioned: bool = True) -> str:
        return f"{self.base}/keys/{key.name}/{key.version}" if versioned else f"{self.base}/keys/{key.name}"

    def _attributes(self, key: _KeyVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": key.enabled}
        if key.not_before is not None:
            attributes["nbf"] = key.not_before
        if key.expires is not None:
            attributes["exp"] = key.expires
        attributes.update(
            created=key.created,
            updated=key.created,
            recoveryLevel="Recoverable+Purgeable",
            recoverableDays=RECOVERABLE_DAYS,
            exportable=False,
        )
        if key.kty.endswith("-HSM"):
            attributes["hsmPlatform"] = "2" if self.vault.managed_hsm else "1"
        return attributes

    def _bundle(self, key: _KeyVersion) -> dict[str, Any]:
        """A KeyBundle: the public JWK (kid, kty, key_ops, n/e or crv/x/y) and attributes."""
        jwk: dict[str, Any] = {"kid": self._kid(key), "kty": key.kty, "key_ops": list(key.key_ops)}
        public = key.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            size = _CURVES[key.curve or ""][2]
            jwk.update(crv=key.curve, x=_b64url(_int_bytes(numbers.x, size)), y=_b64url(_int_bytes(numbers.y, size)))
        else:
            rsa_numbers = public.public_numbers()
            jwk.update(n=_b64url(_int_bytes(rsa_numbers.n)), e=_b64url(_int_bytes(rsa_numbers.e)))
        bundle: dict[str, Any] = {"key": jwk, "attributes": self._attributes(key)}
        if key.tags:
            bundle["tags"] = dict(key.tags)
        return bundle

    def _item(self, key: _KeyVersion, versioned: bool) -> dict[str, Any]:
        """A KeyItem of a list: kid (without version for `list keys`), attributes, tags."""
        item: dict[str, Any] = {"kid": self._kid(key, versioned), "attributes": self._attributes(key)}
        if key.tags:
            item["tags"] = dict(key.tags)
        return item

    def _deletion(self, name: str, record: _Deleted) -> dict[str, Any]:
        return {
            "recoveryId": f"{self.base}/deletedkeys/{name}",
            "deletedDate": record.deleted_date,
            "scheduledPurgeDate": record.deleted_date + RECOVERABLE_DAYS * 86400,
        }


def _check_alg(key: _KeyVersion, alg: Any, digest: bytes) -> hashes.HashAlgorithm:
    """The hash an algorithm implies, after checking it fits the key and the digest length (as Key Vault does)."""
    if not isinstance(alg, str):
        raise _Fail(400, "BadParameter", "Property 'alg' is required.")
    if key.curve is not None:
        if alg != _CURVES[key.curve][1]:
            raise _Fail(400, "BadParameter", f"Algorithm {alg} is not valid for a key with curve {key.curve}.")
    elif not re.fullmatch(r"(PS|RS)(256|384|512)", alg):
        raise _Fail(400, "BadParameter", f"Algorithm {alg} is not valid for an RSA key.")
    hash_algorithm = _HASHES[alg[2:]]()
    if len(digest) != hash_algorithm.digest_size:
        raise _Fail(400, "BadParameter", f"Invalid length of the digest: {len(digest)} bytes for {alg}.")
    return hash_algorithm


def _rsa_padding(alg: str, h: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if alg.startswith("PS"):  # PSS with salt length = hash length, as Key Vault signs
        return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    return padding.PKCS1v15()


# -- TLS -------------------------------------------------------------------------------------


def _certificates(workdir: Path, host: str) -> ssl.SSLContext:
    """A throwaway CA (written to ca.pem) and a server certificate for loopback names and `host`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyplane Azure Key Vault emulator CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        ip = ipaddress.ip_address(host)
        if x509.IPAddress(ip) not in names:
            names.append(x509.IPAddress(ip))
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (workdir / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = workdir / "server.pem"
    chain.write_bytes(
        server.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    chain.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain)
    return context


# -- entry points ------------------------------------------------------------------------------


def start(host: str = "127.0.0.1", port: int = 0, token: str | None = None, *, managed_hsm: bool = False) -> Handle:
    """Start the emulator in background threads; returns once it accepts connections.

    `token` is the bearer token it accepts (a random one if None, in `Handle.token`).
    `managed_hsm` makes it behave as a Managed HSM (only EC-HSM / RSA-HSM keys; the
    challenge names https://managedhsm.azure.net).
    """
    workdir = Path(tempfile.mkdtemp(prefix="keyplane-azure-emulator-"))
    try:
        context = _certificates(workdir, host)
        token = token or secrets.token_urlsafe(32)
        resource = "https://managedhsm.azure.net" if managed_hsm else "https://vault.azure.net"
        server = _Server((host, port), context, _Vault(managed_hsm), token, resource)
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
