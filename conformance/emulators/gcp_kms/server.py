"""The gRPC server around the service: method table, authorisation, the handle and its test hooks."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.emulators.azure_keyvault.tls import server_certificate

from .model import SERVICE, grpc, kms_v1
from .service import Abort, Kms

# -- the gRPC server --------------------------------------------------------------------------------

_METHODS: dict[str, tuple[str, str]] = {  # RPC -> (response type, resource field); requests are <RPC>Request
    "CreateKeyRing": ("KeyRing", "parent"), "GetKeyRing": ("KeyRing", "name"),
    "CreateCryptoKey": ("CryptoKey", "parent"), "GetCryptoKey": ("CryptoKey", "name"),
    "ListCryptoKeys": ("ListCryptoKeysResponse", "parent"),
    "CreateCryptoKeyVersion": ("CryptoKeyVersion", "parent"), "GetCryptoKeyVersion": ("CryptoKeyVersion", "name"),
    "ListCryptoKeyVersions": ("ListCryptoKeyVersionsResponse", "parent"),
    "UpdateCryptoKeyVersion": ("CryptoKeyVersion", "crypto_key_version.name"),
    "DestroyCryptoKeyVersion": ("CryptoKeyVersion", "name"),
    "GetPublicKey": ("PublicKey", "name"), "AsymmetricSign": ("AsymmetricSignResponse", "name"),
}


def _handler(kms: Kms, method: str, resource_field: str) -> Callable[[Any, Any], Any]:
    implementation = getattr(kms, method)

    def handle(request: Any, context: Any) -> Any:
        try:
            resource: Any = request
            for part in resource_field.split("."):  # a nested field, e.g. crypto_key_version.name
                resource = getattr(resource, part)
            kms.authorize(method, context.invocation_metadata(), resource)
            return implementation(request)
        except Abort as e:
            context.abort(e.code, e.message)

    return handle


@dataclass
class EmulatorHandle:
    """A running emulator: its address, the token it demands (if any), and test hooks.

    `corrupt_next` damages the next answer that carries it: ``"signature_crc32c"``,
    ``"verified_crc32c"``, ``"name"``, ``"signature"`` (bytes flipped, checksum kept),
    ``"public_key_crc32c"``, or ``"crc32c"`` (whichever CRC32C the next answer carries);
    ``"request"`` damages the next signing request as received (its CRC32C check refuses it).
    """

    address: str
    token: str | None
    _server: Any
    _kms: Kms

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def corrupt_next(self) -> str | None:
        return self._kms.corrupt_next

    @corrupt_next.setter
    def corrupt_next(self, kind: str | None) -> None:
        self._kms.corrupt_next = kind

    @property
    def corrupt_next_crc32c(self) -> bool:
        return self._kms.corrupt_next is not None

    @corrupt_next_crc32c.setter
    def corrupt_next_crc32c(self, value: bool) -> None:
        self._kms.corrupt_next = "crc32c" if value else None

    def fail_next(self, code: Any, count: int = 1) -> None:
        """Answer the next `count` calls with the gRPC status `code` (e.g. grpc.StatusCode.UNAVAILABLE)."""
        with self._kms.lock:
            self._kms.failures.extend([code] * count)

    @property
    def calls(self) -> dict[str, int]:
        """RPCs received so far, by method name (tests count round trips with it)."""
        with self._kms.lock:
            return dict(self._kms.calls)

    def stop(self, grace: float | None = None) -> None:
        self._server.stop(grace).wait()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(host: str = "127.0.0.1", port: int = 0, token: str | None = None, *,
          projects: Iterable[str] | None = None, pending_reads: int = 1, workers: int = 32,
          tls_dir: str | None = None) -> EmulatorHandle:
    """Start the emulator in this process on `host:port` (0 = a free port) and return its handle.

    With a `token`, every call must carry ``authorization: Bearer <token>``; with `projects`,
    resources of any other project answer PERMISSION_DENIED. `pending_reads` is how many reads
    a new version answers PENDING_GENERATION to before it is ENABLED. With `tls_dir`, it
    serves TLS with a throwaway CA written to ``<tls_dir>/ca.pem`` (plaintext otherwise).
    """
    kms = Kms(token, projects, pending_reads)
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            _handler(kms, method, resource),
            request_deserializer=getattr(kms_v1, f"{method}Request").deserialize,
            response_serializer=getattr(kms_v1, response_type).serialize,
        )
        for method, (response_type, resource) in _METHODS.items()
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gcp-kms-emulator"))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if tls_dir is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        key_pem, cert_pem = server_certificate(Path(tls_dir), host)
        bound = server.add_secure_port(f"{host}:{port}", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    shown = f"[{host}]" if ":" in host else host
    return EmulatorHandle(f"{shown}:{bound}", token, server, kms)


def serve_forever(host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the emulator in the foreground (``keyplane emulator gcp``) until Ctrl-C."""
    if threading.current_thread() is threading.main_thread():
        # Stop cleanly on Ctrl-C and on SIGTERM, also when started as a background job (SIGINT ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    handle = start(host, port)
    print(f"Google Cloud KMS emulator (gRPC, plaintext) listening on {handle.address}")
    print("No authentication: any or no bearer token is accepted; keys live in memory only.")
    print("Point keyplane at it with a store URI such as:")
    print(f"  gcpkms://projects/demo/locations/global/keyRings/demo?endpoint={handle.address}&insecure=true")
    print("(the key ring is created on the first create_key). Ctrl-C stops it.", flush=True)
    try:
        handle._server.wait_for_termination()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        handle.stop(grace=1.0)
