"""Google Cloud KMS back end (`google-cloud-kms`, gRPC).

``gcpkms://projects/P/locations/L/keyRings/R`` is a store (a key ring);
``.../keyRings/R/cryptoKeys/K`` a key (its newest ENABLED version) and
``.../cryptoKeys/K/cryptoKeyVersions/N`` one pinned version. The forms are cosign's.

Query attributes:
  ``endpoint=HOST:PORT``        another API endpoint (a private endpoint, the local emulator)
  ``insecure=true``             plaintext gRPC to `endpoint` (the emulator on loopback)
  ``token-source=env:N|file:P`` a static OAuth2 access token, sent as ``authorization: Bearer``;
                                without it, Application Default Credentials (google-auth)
  ``timeout=SECONDS``           budget for one operation, retries included (default 30)
  ``algorithm=PS256``           the algorithm to insist on when opening (a version's is fixed)

Over TLS the token rides as google-auth credentials; over an insecure channel, which gRPC
refuses to attach call credentials to, a channel interceptor adds the header *below* the
SDK's own DEBUG request logging, so the token never reaches a log record.

What Cloud KMS signs, and how we send it:
  ECDSA / RSA  the digest, hashed here (`digest` + `digest_crc32c`);
  Ed25519      the whole message in `data` (pure EdDSA): at most 64 KiB, longer messages
               raise AlgorithmNotSupported since the service has no pre-hashed Ed25519;
  ML-DSA       *_EXTERNAL_MU versions (what `create_key` makes): mu = SHAKE256(tr || 0 || 0 || M)
               computed here with `MLDSAMuHasher`, so any length; pure PQ_SIGN_ML_DSA_* versions
               take `data` and have the same 64 KiB limit.
Every answer is checked as Google recommends: `verified_*_crc32c` true, `signature_crc32c`
equal to the CRC32C of the signature, `name` the version we asked. A mismatch raises
BackendUnavailable (damaged in transit or a misbehaving service: retrying may succeed; it is
not a verdict on a signature, which is what InvalidSignature means) and no signature is returned.

Asymmetric keys have no primary version in Cloud KMS, so "rotate" adds a version and opening
by key name picks the newest ENABLED one. Keys cannot be deleted at once: `delete_key`
schedules every version for destruction (the key name stays taken).
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mldsa

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.keys import PublicKey
from signers.sdk import require
from signers.secrets import Secret, resolve_secret
from signers.signature_format import digest
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri

__all__ = ["ALGORITHMS", "GcpKmsKeyStore", "GcpKmsSigner"]

MAX_DATA = 64 * 1024  # AsymmetricSignRequest.data limit (SOFTWARE protection level)
SCOPES = ("https://www.googleapis.com/auth/cloudkms",)
DEFAULT_TIMEOUT = 30.0
_ATTEMPTS = 4  # tries for a retryable failure (UNAVAILABLE, DEADLINE_EXCEEDED) within the timeout
_QUERY = frozenset({"endpoint", "insecure", "token-source", "timeout", "algorithm"})
_ID = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
_KEY_RING = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+$")


@dataclass(frozen=True)
class GcpAlgorithm:
    """One Cloud KMS signing algorithm: the key spec, our algorithm, and what AsymmetricSign takes."""

    spec: KeySpec
    algorithm: SignatureAlgorithm
    input: str  # "digest", "data" (the whole message) or "mu" (digest.external_mu)


S, A = KeySpec, SignatureAlgorithm
ALGORITHMS: dict[str, GcpAlgorithm] = {
    "EC_SIGN_P256_SHA256": GcpAlgorithm(S.P256, A.ES256, "digest"),
    "EC_SIGN_P384_SHA384": GcpAlgorithm(S.P384, A.ES384, "digest"),
    "EC_SIGN_SECP256K1_SHA256": GcpAlgorithm(S.SECP256K1, A.ES256K, "digest"),
    "EC_SIGN_ED25519": GcpAlgorithm(S.ED25519, A.ED25519, "data"),
    "RSA_SIGN_PSS_2048_SHA256": GcpAlgorithm(S.RSA2048, A.PS256, "digest"),
    "RSA_SIGN_PSS_3072_SHA256": GcpAlgorithm(S.RSA3072, A.PS256, "digest"),
    "RSA_SIGN_PSS_4096_SHA256": GcpAlgorithm(S.RSA4096, A.PS256, "digest"),
    "RSA_SIGN_PSS_4096_SHA512": GcpAlgorithm(S.RSA4096, A.PS512, "digest"),
    "RSA_SIGN_PKCS1_2048_SHA256": GcpAlgorithm(S.RSA2048, A.RS256, "digest"),
    "RSA_SIGN_PKCS1_3072_SHA256": GcpAlgorithm(S.RSA3072, A.RS256, "digest"),
    "RSA_SIGN_PKCS1_4096_SHA256": GcpAlgorithm(S.RSA4096, A.RS256, "digest"),
    "RSA_SIGN_PKCS1_4096_SHA512": GcpAlgorithm(S.RSA4096, A.RS512, "digest"),
    "PQ_SIGN_ML_DSA_44": GcpAlgorithm(S.ML_DSA_44, A.ML_DSA_44, "data"),
    "PQ_SIGN_ML_DSA_65": GcpAlgorithm(S.ML_DSA_65, A.ML_DSA_65, "data"),
    "PQ_SIGN_ML_DSA_87": GcpAlgorithm(S.ML_DSA_87, A.ML_DSA_87, "data"),
    "PQ_SIGN_ML_DSA_44_EXTERNAL_MU": GcpAlgorithm(S.ML_DSA_44, A.ML_DSA_44, "mu"),
    "PQ_SIGN_ML_DSA_65_EXTERNAL_MU": GcpAlgorithm(S.ML_DSA_65, A.ML_DSA_65, "mu"),
    "PQ_SIGN_ML_DSA_87_EXTERNAL_MU": GcpAlgorithm(S.ML_DSA_87, A.ML_DSA_87, "mu"),
}
del S, A


def _gcp_algorithm_for(spec: KeySpec, algorithm: SignatureAlgorithm, external_mu: bool) -> str:
    """The Cloud KMS algorithm a new key of `spec` signing `algorithm` gets (ML-DSA: external mu by default)."""
    for name, info in ALGORITHMS.items():
        if info.spec is spec and info.algorithm is algorithm and (info.input == "mu") == external_mu:
            return name
    for name, info in ALGORITHMS.items():  # external_mu only matters for ML-DSA
        if info.spec is spec and info.algorithm is algorithm:
            return name
    raise AlgorithmNotSupported(f"Cloud KMS has no {spec.value} key signing {algorithm.value}")


@functools.cache
def _crc32c_module() -> Any:
    return require("google_crc32c", "gcp", "gcpkms")


def _crc32c(data: bytes) -> int:
    return int(_crc32c_module().value(bytes(data)))


class GcpKmsSigner(BaseSigner):
    """One Cloud KMS key version; `sign` is one AsymmetricSign round trip with CRC32C checks."""

    def __init__(self, store: GcpKmsKeyStore, uri: str, version_name: str, gcp_algorithm: str,
                 public_key: PublicKey) -> None:
        info = ALGORITHMS[gcp_algorithm]
        super().__init__(uri, info.algorithm, public_key)
        self._store = store
        self.version_name = version_name  # the full resource name this signer signs with
        self.gcp_algorithm = gcp_algorithm
        self._input = info.input
        self._hash_field = info.algorithm.hash_name

    def sign(self, message: bytes) -> bytes:
        message = bytes(message)
        kms_v1 = self._store._kms
        if self._input == "digest":
            payload = digest(self.algorithm, message)
            request = kms_v1.AsymmetricSignRequest(name=self.version_name, digest={self._hash_field: payload},
                                                   digest_crc32c=_crc32c(payload))
        elif self._input == "mu":
            hasher = mldsa.MLDSAMuHasher(self.public_key.key, b"")  # type: ignore[arg-type]  # pure ML-DSA, empty context
            hasher.update(message)
            payload = hasher.finalize()
            request = kms_v1.AsymmetricSignRequest(name=self.version_name, digest={"external_mu": payload},
                                                   digest_crc32c=_crc32c(payload))
        else:
            if len(message) > MAX_DATA:
                raise AlgorithmNotSupported(
                    f"Cloud KMS signs {self.gcp_algorithm} over the whole message, at most {MAX_DATA} bytes, "
                    f"and this message has {len(message)}"
                    + (" (create the key with external_mu=True to sign any length)" if self._is_mldsa() else "")
                )
            payload = message
            request = kms_v1.AsymmetricSignRequest(name=self.version_name, data=payload, data_crc32c=_crc32c(payload))
        response = self._store._call(f"sign with {_short(self.version_name)}", self._store._client.asymmetric_sign,
                                     request)
        return self._store._checked_signature(response, self.version_name, "data" if self._input == "data" else "digest")

    def _is_mldsa(self) -> bool:
        return self.gcp_algorithm.startswith("PQ_SIGN_ML_DSA")


class GcpKmsKeyStore(BaseKeyStore):
    """One Cloud KMS key ring through one gRPC channel (thread-safe; shared by every signer)."""

    capabilities = Capabilities(
        key_specs=frozenset(KeySpec),
        prehash=True,
        deterministic=frozenset({KeySpec.ED25519}),
    )

    def __init__(
        self,
        key_ring: str,
        *,
        client: Any = None,
        endpoint: str | None = None,
        insecure: bool = False,
        token: Secret | None = None,
        credentials: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        query: dict[str, str] | None = None,
    ) -> None:
        """`client` (a KeyManagementServiceClient) or `credentials` (google-auth) may be injected;
        otherwise a client is built from `endpoint` / `insecure` / `token`, or Application Default Credentials."""
        if not _KEY_RING.match(key_ring):
            raise ConfigError("gcpkms store must name a key ring: gcpkms://projects/P/locations/L/keyRings/R")
        if insecure and not endpoint:
            raise ConfigError("gcpkms: insecure=true needs endpoint=HOST:PORT")
        self.key_ring = key_ring
        self.timeout = timeout
        self._kms = require("google.cloud.kms_v1", "gcp", "gcpkms")
        self._exceptions = require("google.api_core.exceptions", "gcp", "gcpkms")
        require("google_crc32c", "gcp", "gcpkms")
        self.uri = KeyURI("gcpkms", key_ring.removeprefix("projects/"), "projects", {}, dict(query or {})).format()
        self._owns_client = client is None
        self._client = client if client is not None else self._build_client(endpoint, insecure, token, credentials)
        self._ring_checked = False

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str) -> GcpKmsKeyStore:
        """A store from a store URI (key ring) or a key URI (the key ring it is in)."""
        parsed = parse_uri(uri)
        if parsed.scheme != "gcpkms":
            raise ConfigError(f"not a gcpkms: URI (scheme {parsed.scheme!r})")
        unknown = set(parsed.query) - _QUERY
        if unknown:
            raise ConfigError(f"gcpkms: URI has unknown attribute(s) {sorted(unknown)}")
        resource = _resource(parsed)
        m = re.match(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+)(/.*)?$", resource)
        if not m:
            raise ConfigError("gcpkms URI must be gcpkms://projects/P/locations/L/keyRings/R[/cryptoKeys/K"
                              "[/cryptoKeyVersions/N]]")
        query = {k: v for k, v in parsed.query.items() if k != "algorithm"}
        insecure = query.get("insecure", "false").lower()
        if insecure not in ("true", "false", "1", "0"):
            raise ConfigError("gcpkms: insecure must be true or false")
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ConfigError("gcpkms: timeout must be a number of seconds") from None
        if not timeout > 0:
            raise ConfigError("gcpkms: timeout must be positive")
        source = query.get("token-source")
        token = resolve_secret(source, "token-source") if source else None
        return cls(m.group(1), endpoint=query.get("endpoint"), insecure=insecure in ("true", "1"), token=token,
                   timeout=timeout, query=query)

    def _build_client(self, endpoint: str | None, insecure: bool, token: Secret | None, credentials: Any) -> Any:
        kms_v1 = self._kms
        try:
            if insecure:
                grpc = require("grpc", "gcp", "gcpkms")
                transports = require("google.cloud.kms_v1.services.key_management_service.transports",
                                     "gcp", "gcpkms")
                channel = grpc.insecure_channel(endpoint)
                if token is not None:
                    channel = grpc.intercept_channel(channel, _bearer_interceptor(grpc, token))
                return kms_v1.KeyManagementServiceClient(
                    transport=transports.KeyManagementServiceGrpcTransport(channel=channel))
            if token is not None:
                oauth2 = require("google.oauth2.credentials", "gcp", "gcpkms")
                credentials = oauth2.Credentials(token.reveal())
            elif credentials is None:
                google_auth = require("google.auth", "gcp", "gcpkms")
                credentials, _ = google_auth.default(scopes=list(SCOPES))
            options = {"api_endpoint": endpoint} if endpoint else None
            return kms_v1.KeyManagementServiceClient(credentials=credentials, client_options=options)
        except KeyplaneError:
            raise
        except Exception as e:
            raise self._translate(e, "connect to Cloud KMS") from e

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> GcpKmsSigner:
        """Create key `name` in the key ring (made if missing) with one version, and open that version.

        Options: `algorithm` (e.g. PS512 for RSA-4096), `external_mu` (ML-DSA; default True,
        so messages of any length can be signed), `protection_level` ("SOFTWARE" or "HSM"),
        `labels` (dict).
        """
        spec = KeySpec.parse(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        gcp_algorithm = _gcp_algorithm_for(spec, algorithm, bool(opts.pop("external_mu", True)))
        protection = str(opts.pop("protection_level", "SOFTWARE")).upper()
        labels = dict(opts.pop("labels", None) or {})
        if opts:
            raise ConfigError(f"gcpkms back end: unknown create option(s) {sorted(opts)}")
        key_id = self._check_id(name)
        self.ensure_key_ring()
        kms_v1 = self._kms
        try:
            level = kms_v1.ProtectionLevel[protection]
        except KeyError:
            raise ConfigError(f"gcpkms: unknown protection_level {protection!r}") from None
        request = kms_v1.CreateCryptoKeyRequest(
            parent=self.key_ring, crypto_key_id=key_id,
            crypto_key=kms_v1.CryptoKey(
                purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN, labels=labels,
                version_template=kms_v1.CryptoKeyVersionTemplate(algorithm=gcp_algorithm, protection_level=level),
            ),
        )
        created = self._call(f"create key {key_id!r}", self._client.create_crypto_key, request, idempotent=False)
        version = self._wait_enabled(f"{created.name}/cryptoKeyVersions/1")
        return self._signer(version, algorithm)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> GcpKmsSigner:
        """Open a key's newest ENABLED version, or the pinned ``.../cryptoKeyVersions/N``."""
        key_name, number = self._resolve(uri_or_name)
        if algorithm is None and ":" in uri_or_name:
            algorithm = parse_uri(uri_or_name).query.get("algorithm")
        if number is None:
            version = self._newest_enabled(key_name)
            if version is None:
                raise KeyNotFound(f"key {_short(key_name)} has no ENABLED version")
        else:
            name = f"{key_name}/cryptoKeyVersions/{number}"
            version = self._call(f"open {_short(name)}", self._client.get_crypto_key_version,
                                 self._kms.GetCryptoKeyVersionRequest(name=name))
            state = self._kms.CryptoKeyVersion.CryptoKeyVersionState(version.state)
            if state.name != "ENABLED":
                raise KeyNotFound(f"{_short(name)} is {state.name}, not ENABLED")
        return self._signer(version, algorithm)

    def rotate_key(self, name: str) -> GcpKmsSigner:
        """Add a version to key `name` (same algorithm) and open it; later opens by name pick it."""
        key_name, number = self._resolve(name)
        if number is not None:
            raise ConfigError("rotate_key takes a key, not a key version")
        request = self._kms.CreateCryptoKeyVersionRequest(parent=key_name, crypto_key_version={})
        created = self._call(f"rotate {_short(key_name)}", self._client.create_crypto_key_version, request,
                             idempotent=False)
        return self._signer(self._wait_enabled(created.name), None)

    def list_keys(self) -> Iterator[KeyInfo]:
        """Every ASYMMETRIC_SIGN key in the key ring with its newest ENABLED version (enabled=False if none)."""
        kms_v1 = self._kms
        sign = kms_v1.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN
        pager = self._call("list keys", self._client.list_crypto_keys,
                           kms_v1.ListCryptoKeysRequest(parent=self.key_ring))
        for key in self._iterate(pager, "list keys"):
            if key.purpose != sign:
                continue
            version = self._newest_enabled(key.name)
            algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm(
                version.algorithm if version is not None else key.version_template.algorithm).name
            info = ALGORITHMS.get(algorithm)
            yield KeyInfo(
                name=key.name.rsplit("/", 1)[1],
                uri=self._uri_for(key.name),
                spec=info.spec if info else None,
                version=version.name.rsplit("/", 1)[1] if version is not None else None,
                enabled=version is not None,
                extra={"gcp_algorithm": algorithm, "resource": key.name},
            )

    def delete_key(self, name: str) -> None:
        """Schedule destruction of every live version of key `name` (or of the one pinned version).

        Cloud KMS keeps the key (and its name) and destroys the material after the key's
        destroy_scheduled_duration (30 days by default); until then the versions can be restored
        in the console. Opening the key afterwards raises KeyNotFound.
        """
        key_name, number = self._resolve(name)
        kms_v1 = self._kms
        if number is not None:
            names = [f"{key_name}/cryptoKeyVersions/{number}"]
        else:
            pager = self._call(f"delete {_short(key_name)}", self._client.list_crypto_key_versions,
                               kms_v1.ListCryptoKeyVersionsRequest(parent=key_name))
            live = {"ENABLED", "DISABLED"}
            state = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
            names = [v.name for v in self._iterate(pager, "delete") if state(v.state).name in live]
        for version in names:
            self._call(f"destroy {_short(version)}", self._client.destroy_crypto_key_version,
                       kms_v1.DestroyCryptoKeyVersionRequest(name=version))

    def ensure_key_ring(self) -> None:
        """Create the store's key ring unless it exists (key rings cannot be deleted in Cloud KMS)."""
        if self._ring_checked:
            return
        kms_v1 = self._kms
        try:
            self._call("open key ring", self._client.get_key_ring, kms_v1.GetKeyRingRequest(name=self.key_ring))
        except KeyNotFound:
            parent, _, ring_id = self.key_ring.rpartition("/keyRings/")
            with contextlib.suppress(KeyExists):  # made by someone else in between: what we wanted
                self._call("create key ring", self._client.create_key_ring,
                           kms_v1.CreateKeyRingRequest(parent=parent, key_ring_id=ring_id, key_ring={}),
                           idempotent=False)
        self._ring_checked = True

    def close(self) -> None:
        client, self._client = self._client, _Closed()
        if self._owns_client and not isinstance(client, _Closed):
            client.transport.close()

    # -- internals ---------------------------------------------------------------------

    def _signer(self, version: Any, requested: SignatureAlgorithm | str | None) -> GcpKmsSigner:
        """Fetch and check a version's public key; refuse a requested algorithm the version cannot make."""
        kms_v1 = self._kms
        gcp_algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm(version.algorithm).name
        info = ALGORITHMS.get(gcp_algorithm)
        if info is None:
            raise AlgorithmNotSupported(f"{_short(version.name)} uses {gcp_algorithm}, which keyplane does not sign with")
        if requested is not None and SignatureAlgorithm.parse(requested) is not info.algorithm:
            raise AlgorithmNotSupported(
                f"{_short(version.name)} signs {gcp_algorithm} ({info.algorithm.value}); a Cloud KMS key version's "
                f"algorithm is fixed, {SignatureAlgorithm.parse(requested).value} was asked for"
            )
        pq = info.spec.family.name == "MLDSA"
        fmt = kms_v1.PublicKey.PublicKeyFormat.NIST_PQC if pq else kms_v1.PublicKey.PublicKeyFormat.PEM
        answer = self._call(f"get public key of {_short(version.name)}", self._client.get_public_key,
                            kms_v1.GetPublicKeyRequest(name=version.name, public_key_format=fmt))
        if answer.name != version.name:
            raise BackendUnavailable(f"Cloud KMS answered for {answer.name!r}, not {_short(version.name)}")
        if kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm(answer.algorithm).name != gcp_algorithm:
            raise BackendUnavailable(f"Cloud KMS reported a different algorithm for {_short(version.name)}")
        if answer.public_key.data:
            data, checksum = bytes(answer.public_key.data), answer.public_key.crc32c_checksum
        else:  # legacy PEM-only answer
            data, checksum = answer.pem.encode("ascii"), answer.pem_crc32c
        if checksum is None or checksum != _crc32c(data):
            raise BackendUnavailable(f"public key of {_short(version.name)} failed its CRC32C check (damaged in transit)")
        try:
            public = PublicKey.from_raw_mldsa(info.spec, data) if pq else PublicKey.from_pem(data)
        except (ValueError, KeyplaneError) as e:
            raise BackendUnavailable(f"Cloud KMS returned an unreadable public key for {_short(version.name)}", e) from e
        if public.spec is not info.spec:
            raise BackendUnavailable(f"public key of {_short(version.name)} is {public.spec.value}, not {info.spec.value}")
        return GcpKmsSigner(self, self._uri_for(version.name), version.name, gcp_algorithm, public)

    def _checked_signature(self, response: Any, version_name: str, field: str) -> bytes:
        """The signature, once every integrity field of the answer is right; else BackendUnavailable."""
        if not getattr(response, f"verified_{field}_crc32c"):
            raise BackendUnavailable(f"Cloud KMS did not verify the request's {field}_crc32c for {_short(version_name)} "
                                     "(the request may have been damaged in transit); no signature returned")
        if response.name != version_name:
            raise BackendUnavailable(f"Cloud KMS signed with {response.name!r}, not {_short(version_name)}; "
                                     "no signature returned")
        signature = bytes(response.signature)
        if response.signature_crc32c is None or response.signature_crc32c != _crc32c(signature):
            raise BackendUnavailable(f"the signature from {_short(version_name)} failed its CRC32C check "
                                     "(damaged in transit); no signature returned")
        return signature

    def _newest_enabled(self, key_name: str) -> Any:
        kms_v1 = self._kms
        request = kms_v1.ListCryptoKeyVersionsRequest(parent=key_name, filter="state=ENABLED")
        pager = self._call(f"open {_short(key_name)}", self._client.list_crypto_key_versions, request)
        enabled = kms_v1.CryptoKeyVersion.CryptoKeyVersionState.ENABLED
        versions = [v for v in self._iterate(pager, "open") if v.state == enabled]  # filter checked, not trusted
        return max(versions, key=lambda v: int(v.name.rsplit("/", 1)[1]), default=None)

    def _wait_enabled(self, version_name: str) -> Any:
        """Poll a new version until ENABLED: asymmetric versions start as PENDING_GENERATION."""
        kms_v1 = self._kms
        state = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            version = self._call(f"open {_short(version_name)}", self._client.get_crypto_key_version,
                                 kms_v1.GetCryptoKeyVersionRequest(name=version_name))
            if version.state == state.ENABLED:
                return version
            if version.state != state.PENDING_GENERATION:
                raise BackendUnavailable(f"{_short(version_name)} is {state(version.state).name} after creation")
            if time.monotonic() + delay > deadline:
                raise BackendUnavailable(f"{_short(version_name)} still PENDING_GENERATION after {self.timeout}s")
            time.sleep(delay)  # the service generates the key asynchronously; nothing to wait on but time
            delay = min(delay * 2, 1.0)

    def _call(self, what: str, method: Callable[..., Any], request: Any, *, idempotent: bool = True) -> Any:
        """One SDK call: our retries (UNAVAILABLE / DEADLINE_EXCEEDED) within `timeout`; errors translated here."""
        exc = self._exceptions
        retryable = (exc.ServiceUnavailable, exc.DeadlineExceeded) if idempotent else (exc.ServiceUnavailable,)
        deadline = time.monotonic() + self.timeout
        for attempt in range(1, _ATTEMPTS + 1):
            remaining = deadline - time.monotonic()
            try:
                return method(request=request, retry=None, timeout=max(remaining, 0.001))
            except retryable as e:
                pause = min(0.1 * 2 ** (attempt - 1), 1.0) * random.uniform(0.5, 1.0)
                if attempt == _ATTEMPTS or time.monotonic() + pause >= deadline:
                    raise self._translate(e, what) from e
                time.sleep(pause)  # back-off between retries of a transient failure
            except Exception as e:
                raise self._translate(e, what) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _iterate(self, pager: Any, what: str) -> Iterator[Any]:
        """Items of a pager; fetching a further page is a call too, so its errors are translated."""
        try:
            yield from pager
        except Exception as e:
            raise self._translate(e, what) from e

    def _translate(self, e: Exception, what: str) -> KeyplaneError:
        """The one place SDK failures become keyplane errors (the SDK message, never a credential)."""
        if isinstance(e, KeyplaneError):
            return e
        exc = self._exceptions
        detail = getattr(e, "message", None) or str(e)
        text = f"Cloud KMS: cannot {what}: {detail}"
        if isinstance(e, exc.NotFound):
            return KeyNotFound(text)
        if isinstance(e, exc.AlreadyExists):
            return KeyExists(text)
        if isinstance(e, exc.Unauthenticated):
            return AuthenticationFailed(text)
        if isinstance(e, exc.PermissionDenied):
            return PermissionDenied(text)
        if isinstance(e, exc.FailedPrecondition):
            return KeyNotFound(text)  # in KMS: the version is not ENABLED (disabled, destroyed, pending)
        if isinstance(e, exc.InvalidArgument):
            if "checksum" in detail.lower() or "crc32c" in detail.lower():
                return BackendUnavailable(text, e)  # the request's CRC32C failed: damaged in transit
            return ConfigError(text)
        if isinstance(e, exc.MethodNotImplemented):
            return AlgorithmNotSupported(text)
        auth_errors = require("google.auth.exceptions", "gcp", "gcpkms")
        if isinstance(e, auth_errors.DefaultCredentialsError | auth_errors.RefreshError):
            return AuthenticationFailed(f"Cloud KMS: cannot {what}: no usable Google credentials ({type(e).__name__})")
        return BackendUnavailable(text, e)

    def _resolve(self, uri_or_name: str) -> tuple[str, int | None]:
        """(crypto key resource name, version number or None) for a URI, resource name or key name here."""
        if uri_or_name.startswith("gcpkms:"):
            resource = _resource(parse_uri(uri_or_name))
        elif uri_or_name.startswith("projects/"):
            resource = uri_or_name
        else:
            resource = f"{self.key_ring}/cryptoKeys/{uri_or_name}"
        m = re.match(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+)/cryptoKeys/([^/]+)"
                     r"(?:/cryptoKeyVersions/([0-9]+))?$", resource)
        if not m:
            raise ConfigError(f"{uri_or_name[:200]!r} does not name a Cloud KMS key (K, K/cryptoKeyVersions/N or a "
                              "gcpkms:// key URI)")
        if m.group(1) != self.key_ring:
            raise ConfigError(f"{_short(resource)} is not in key ring {self.key_ring}")
        self._check_id(m.group(2))
        return f"{m.group(1)}/cryptoKeys/{m.group(2)}", int(m.group(3)) if m.group(3) else None

    def _uri_for(self, resource: str) -> str:
        query = dict(parse_uri(self.uri).query)
        return KeyURI("gcpkms", resource.removeprefix("projects/"), "projects", {}, query).format()

    @staticmethod
    def _check_id(name: str) -> str:
        if not isinstance(name, str) or not _ID.match(name):
            raise ConfigError("a Cloud KMS key name must be 1-63 of letters, digits, '_' or '-'")
        return name


class _Closed:
    """Stands in for the client after close(), so a late call fails clearly instead of on a closed channel."""

    def __getattr__(self, name: str) -> Any:
        raise ConfigError("this gcpkms store is closed")


def _resource(parsed: KeyURI) -> str:
    """The resource name in a gcpkms URI (``gcpkms://projects/...`` or ``gcpkms:///projects/...``)."""
    return "/".join(p for p in ((parsed.authority or ""), parsed.path.strip("/")) if p)


def _short(resource: str) -> str:
    """A resource name for messages: the part below the key ring."""
    return resource.split("/keyRings/", 1)[-1] if "/keyRings/" in resource else resource


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

