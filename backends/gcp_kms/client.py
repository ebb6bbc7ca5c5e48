"""Building the one KeyManagementServiceClient a store uses (TLS with ADC or a token, or plaintext to an emulator).

Over TLS the token rides as google-auth credentials; over an insecure channel, which gRPC
refuses to attach call credentials to, a channel interceptor adds the header *below* the
SDK's own DEBUG request logging, so the token never reaches a log record. ``ca-bundle``
names the CA file a private endpoint's certificate chains to.
"""

from __future__ import annotations

from typing import Any

from signers.errors import ConfigError
from signers.sdk import require
from signers.secrets import Secret

__all__ = ["SCOPES", "build_async_client", "build_client", "tls_verification_failed"]

SCOPES = ("https://www.googleapis.com/auth/cloudkms",)
_TLS_MARKERS = ("certificate_verify_failed", "certificate verify failed", "ssl handshake failed",
                "handshake failed", "unable to get local issuer certificate", "self signed certificate",
                "self-signed certificate")


def build_client(kms_v1: Any, endpoint: str | None, insecure: bool, token: Secret | None, credentials: Any,
                 ca_bundle: str | None) -> Any:
    """The client for the options of a store URI; raises ConfigError for an unreadable CA bundle.

    SDK errors (no Application Default Credentials, ...) are left to the caller's translation.
    """
    grpc = require("grpc", "gcp", "gcpkms")
    if insecure:
        channel = grpc.insecure_channel(endpoint)
        if token is not None:
            channel = grpc.intercept_channel(channel, _bearer_interceptor(grpc, token))
        return kms_v1.KeyManagementServiceClient(
            transport=transports_module().KeyManagementServiceGrpcTransport(channel=channel))
    credentials = _credentials(token, credentials)
    if ca_bundle:
        transport = transports_module().KeyManagementServiceGrpcTransport(
            host=endpoint or "cloudkms.googleapis.com", credentials=credentials,
            ssl_channel_credentials=_roots(grpc, ca_bundle))
        return kms_v1.KeyManagementServiceClient(transport=transport)
    options = {"api_endpoint": endpoint} if endpoint else None
    return kms_v1.KeyManagementServiceClient(credentials=credentials, client_options=options)


def build_async_client(kms_v1: Any, endpoint: str | None, insecure: bool, token: Secret | None, credentials: Any,
                       ca_bundle: str | None) -> Any:
    """The async (grpc.aio) client for the same options; call it inside the event loop that will use it.

    Plaintext (`insecure`) uses gRPC's local-connection credentials, which carry the token as
    call credentials but only to a loopback endpoint (the emulator): the token never passes
    through a logging interceptor. Raises ConfigError for an unreadable CA bundle.
    """
    grpc = require("grpc", "gcp", "gcpkms")
    transports = transports_module()
    if insecure:
        channel_credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        if token is not None:
            channel_credentials = grpc.composite_channel_credentials(
                channel_credentials, grpc.access_token_call_credentials(token.reveal()))
        channel = grpc.aio.secure_channel(endpoint, channel_credentials)
        return kms_v1.KeyManagementServiceAsyncClient(
            transport=transports.KeyManagementServiceGrpcAsyncIOTransport(channel=channel))
    credentials = _credentials(token, credentials)
    if ca_bundle:
        transport = transports.KeyManagementServiceGrpcAsyncIOTransport(
            host=endpoint or "cloudkms.googleapis.com", credentials=credentials,
            ssl_channel_credentials=_roots(grpc, ca_bundle))
        return kms_v1.KeyManagementServiceAsyncClient(transport=transport)
    options = {"api_endpoint": endpoint} if endpoint else None
    return kms_v1.KeyManagementServiceAsyncClient(credentials=credentials, client_options=options)


def _credentials(token: Secret | None, credentials: Any) -> Any:
    """google-auth credentials: the static token's, the injected ones, or Application Default Credentials."""
    if token is not None:
        oauth2 = require("google.oauth2.credentials", "gcp", "gcpkms")
        return oauth2.Credentials(token.reveal())
    if credentials is None:
        google_auth = require("google.auth", "gcp", "gcpkms")
        credentials, _ = google_auth.default(scopes=list(SCOPES))
    return credentials


def _roots(grpc: Any, ca_bundle: str) -> Any:
    """TLS channel credentials trusting the CA file `ca_bundle`; ConfigError if it cannot be read."""
    try:
        with open(ca_bundle, "rb") as f:
            roots = f.read()
    except OSError as e:
        raise ConfigError(f"gcpkms: cannot read ca-bundle {ca_bundle!r} ({e.strerror})") from None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def transports_module() -> Any:
    """The SDK's transports package (optional SDK, imported when a client is built)."""
    return require("google.cloud.kms_v1.services.key_management_service.transports", "gcp", "gcpkms")


def tls_verification_failed(detail: str) -> bool:
    """Whether a gRPC UNAVAILABLE's text says the server's certificate was refused (it will be again)."""
    lowered = detail.lower()
    return any(marker in lowered for marker in _TLS_MARKERS)


def _bearer_interceptor(grpc: Any, token: Secret) -> Any:
    """A channel interceptor adding ``authorization: Bearer`` (for plaintext channels, which take no call credentials)."""

    class BearerToken(grpc.UnaryUnaryClientInterceptor):
        def __repr__(self) -> str:
            return "BearerToken(***)"

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            metadata = [*(details.metadata or ()), ("authorization", f"Bearer {token.reveal()}")]
            return continuation(_CallDetails(details, metadata), request)

    class _CallDetails(grpc.ClientCallDetails):
        def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
            self.method = base.method
            self.timeout = base.timeout
            self.metadata = metadata
            self.credentials = base.credentials
            self.wait_for_ready = getattr(base, "wait_for_ready", None)
            self.compression = getattr(base, "compression", None)

    return BearerToken()

