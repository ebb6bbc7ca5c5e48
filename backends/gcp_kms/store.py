"""The Cloud KMS KeyStore: one key ring; create, rotate, open, list, disable / enable, schedule destruction."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from backends.translation import translated
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    BackendUnavailable,
    ConfigError,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
)
from signers.keys import PublicKey
from signers.sdk import require
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import check_create_options, checked_uri

from .aio import AsyncClients
from .algorithms import ALGORITHMS, crc32c, gcp_algorithm_for
from .client import build_async_client, build_client
from .errors import translate, translated_error
from .retry import ATTEMPTS, retry_pause
from .signer import GcpKmsSigner, _short

__all__ = ["DEFAULT_TIMEOUT", "GcpKmsKeyStore"]

DEFAULT_TIMEOUT = 30.0
_QUERY = frozenset({"endpoint", "insecure", "token-source", "timeout", "algorithm", "ca-bundle"})
_ID = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
_KEY_RING = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+$")


class GcpKmsKeyStore(BaseKeyStore):
    """One Cloud KMS key ring through one gRPC channel (thread-safe; shared by every signer)."""

    capabilities = Capabilities(
        key_specs=frozenset(KeySpec),
        prehash=True,
        deterministic=frozenset({KeySpec.ED25519}),
        deletion="scheduled",  # every version is scheduled for destruction; the name stays taken
    )
    signer_class = GcpKmsSigner  # capabilities_of reads the signer protocols (sign-digest) from it

    def __init__(self, key_ring: str, *, client: Any = None, endpoint: str | None = None, insecure: bool = False,
                 token: Secret | None = None, credentials: Any = None, ca_bundle: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, query: dict[str, str] | None = None) -> None:
        """`client` (a KeyManagementServiceClient) or `credentials` (google-auth) may be injected;
        otherwise a client is built from `endpoint` / `insecure` / `token` / `ca_bundle`, or
        Application Default Credentials. Raises ConfigError for a malformed key ring or options."""
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
        if client is None:
            with translated(translate, "connect to Cloud KMS"):
                client = build_client(self._kms, endpoint, insecure, token, credentials, ca_bundle)
        self._client = client
        self._ring_checked = False
        # Native async (sign_async) runs on the SDK's async client, one per event loop.
        self._async = AsyncClients(
            partial(build_async_client, self._kms, endpoint, insecure, token, credentials, ca_bundle), timeout)

    @classmethod
    def from_uri(cls, uri: str) -> GcpKmsKeyStore:
        """A store from a store URI (key ring) or a key URI (the key ring it is in).

        Raises ConfigError for another scheme, an unknown attribute or a bad value (naming it).
        """
        parsed, options = checked_uri(uri, schemes={"gcpkms"}, query=_QUERY)
        resource = _resource(parsed)
        m = re.match(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+)(/.*)?$", resource)
        if not m:
            raise ConfigError("gcpkms URI must be gcpkms://projects/P/locations/L/keyRings/R[/cryptoKeys/K"
                              "[/cryptoKeyVersions/N]]")
        query = {k: v for k, v in parsed.query.items() if k != "algorithm"}
        timeout = options.number("timeout", DEFAULT_TIMEOUT, minimum=0.001, maximum=3600)
        source = options.text("token-source")
        token = resolve_secret(source, "token-source") if source else None
        return cls(m.group(1), endpoint=options.text("endpoint"), insecure=options.flag("insecure"), token=token,
                   ca_bundle=options.text("ca-bundle"), timeout=timeout, query=query)

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> GcpKmsSigner:
        """Create key `name` in the key ring (made if missing) with one version, and open that version.

        Options: `algorithm` (e.g. PS512 for RSA-4096), `external_mu` (ML-DSA; default True,
        so messages of any length can be signed), `protection_level` ("SOFTWARE" or "HSM"),
        `labels` (dict). Raises KeyExists (the name is taken: Cloud KMS never frees a key name),
        AlgorithmNotSupported, ConfigError and the service's errors.
        """
        spec = KeySpec.parse(spec)
        check_create_options(opts, {"algorithm", "external_mu", "protection_level", "labels"}, "gcpkms")
        algorithm = choose_algorithm(spec, opts.get("algorithm"))
        gcp_algorithm = gcp_algorithm_for(spec, algorithm, bool(opts.get("external_mu", True)))
        protection = str(opts.get("protection_level", "SOFTWARE")).upper()
        labels = dict(opts.get("labels") or {})
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
        """Open a key's newest ENABLED version, or the pinned ``.../cryptoKeyVersions/N``.

        Raises KeyNotFound, KeyDisabled (only disabled versions), AlgorithmNotSupported (another
        algorithm than the version's) and the service's errors.
        """
        key_name, number = self._resolve(uri_or_name)
        if algorithm is None and ":" in uri_or_name:
            algorithm = parse_uri(uri_or_name).query.get("algorithm")
        if number is None:
            version = self._newest_enabled(key_name)
            if version is None:
                self._raise_not_enabled(key_name)
        else:
            name = f"{key_name}/cryptoKeyVersions/{number}"
            version = self._call(f"open {_short(name)}", self._client.get_crypto_key_version,
                                 self._kms.GetCryptoKeyVersionRequest(name=name))
            state = self._kms.CryptoKeyVersion.CryptoKeyVersionState(version.state)
            if state.name == "DISABLED":
                raise KeyDisabled(f"{_short(name)} is DISABLED")
            if state.name != "ENABLED":
                raise KeyNotFound(f"{_short(name)} is {state.name}, not ENABLED")
        return self._signer(version, algorithm)

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> GcpKmsSigner:
        """Add a version to key `name` and open it; later opens by name pick it (RotatingKeyStore).

        A Cloud KMS key's versions share its template's algorithm, so `algorithm` must be that
        one (AlgorithmNotSupported otherwise, checked before a version is made). Signers opened
        before keep signing with their versions. Raises KeyNotFound and the service's errors.
        """
        key_name, number = self._resolve(name)
        if number is not None:
            raise ConfigError("rotate_key takes a key, not a key version")
        kms_v1 = self._kms
        if algorithm is not None:
            key = self._call(f"open {_short(key_name)}", self._client.get_crypto_key,
                             kms_v1.GetCryptoKeyRequest(name=key_name))
            template = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm(key.version_template.algorithm).name
            info = ALGORITHMS.get(template)
            if info is None or SignatureAlgorithm.parse(algorithm) is not info.algorithm:
                raise AlgorithmNotSupported(f"{_short(key_name)} makes {template} versions; "
                                            f"{SignatureAlgorithm.parse(algorithm).value} was asked for")
        request = kms_v1.CreateCryptoKeyVersionRequest(parent=key_name, crypto_key_version={})
        created = self._call(f"rotate {_short(key_name)}", self._client.create_crypto_key_version, request,
                             idempotent=False)
        return self._signer(self._wait_enabled(created.name), algorithm)

    def disable_key(self, name: str) -> None:
        """Disable every ENABLED version of `name` (or the pinned one): signing is KeyDisabled until enabled.

        DisablingKeyStore. Raises KeyNotFound and the service's errors.
        """
        self._set_state(name, "ENABLED", "DISABLED")

    def enable_key(self, name: str) -> None:
        """Enable every DISABLED version of `name` (or the pinned one) again (DisablingKeyStore).

        Raises KeyNotFound and the service's errors.
        """
        self._set_state(name, "DISABLED", "ENABLED")

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
        """Close the gRPC channel; async clients are dropped (close them with a signer's `aclose()`)."""
        self._async.forget()
        client, self._client = self._client, _Closed()
        if self._owns_client and not isinstance(client, _Closed):
            client.transport.close()

    # -- internals ---------------------------------------------------------------------

    def _set_state(self, name: str, current: str, wanted: str) -> None:
        key_name, number = self._resolve(name)
        kms_v1 = self._kms
        state = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
        what = f"{'enable' if wanted == 'ENABLED' else 'disable'} {_short(key_name)}"
        if number is not None:
            names = [f"{key_name}/cryptoKeyVersions/{number}"]
        else:
            pager = self._call(what, self._client.list_crypto_key_versions,
                               kms_v1.ListCryptoKeyVersionsRequest(parent=key_name))
            names = [v.name for v in self._iterate(pager, what) if state(v.state).name == current]
        for version in names:
            request = kms_v1.UpdateCryptoKeyVersionRequest(
                crypto_key_version=kms_v1.CryptoKeyVersion(name=version, state=state[wanted]),
                update_mask={"paths": ["state"]},
            )
            self._call(what, self._client.update_crypto_key_version, request)

    def _raise_not_enabled(self, key_name: str) -> None:
        """KeyDisabled when the key has DISABLED versions but no ENABLED one, else KeyNotFound."""
        kms_v1 = self._kms
        state = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
        pager = self._call(f"open {_short(key_name)}", self._client.list_crypto_key_versions,
                           kms_v1.ListCryptoKeyVersionsRequest(parent=key_name))
        if any(state(v.state).name == "DISABLED" for v in self._iterate(pager, "open")):
            raise KeyDisabled(f"key {_short(key_name)} is disabled (no ENABLED version); enable_key turns it back on")
        raise KeyNotFound(f"key {_short(key_name)} has no ENABLED version")


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
        if checksum is None or checksum != crc32c(data):
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
        if response.signature_crc32c is None or response.signature_crc32c != crc32c(signature):
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
        """One SDK call: our retries (UNAVAILABLE / DEADLINE_EXCEEDED) within `timeout`; errors translated here.

        A refused TLS certificate is not retried: it is refused again (ConfigError naming ca-bundle).
        """
        exc = self._exceptions
        retryable = (exc.ServiceUnavailable, exc.DeadlineExceeded) if idempotent else (exc.ServiceUnavailable,)
        deadline = time.monotonic() + self.timeout
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return method(request=request, retry=None, timeout=max(deadline - time.monotonic(), 0.001))
            except retryable as e:
                time.sleep(retry_pause(e, what, attempt, deadline))  # back-off between retries of a transient failure
            except Exception as e:
                raise translated_error(e, what) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _iterate(self, pager: Any, what: str) -> Iterator[Any]:
        """Items of a pager; fetching a further page is a call too, so its errors are translated."""
        try:
            yield from pager
        except Exception as e:
            raise translated_error(e, what) from e

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
