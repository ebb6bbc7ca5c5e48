"""Azure Key Vault and Managed HSM back end, on azure-keyvault-keys and azure-identity.

URIs (the forms sigstore/cosign users already paste; https is implied):

    azurekms://myvault.vault.azure.net                    a store (one vault)
    azurekms://myvault.vault.azure.net/ca                 the latest version of key "ca"
    azurekms://myvault.vault.azure.net/ca/0f3d...e91     one pinned version
    azurekms://myhsm.managedhsm.azure.net/ca              a Managed HSM key (EC-HSM / RSA-HSM)

Query attributes (all optional):
    token-source=env:NAME|file:PATH   a static bearer token instead of azure-identity (emulators, CI)
    credential=default|environment|managed-identity|workload-identity|cli   which azure-identity
                                      credential to use (default: DefaultAzureCredential)
    client-id=GUID                    the user-assigned identity for credential=managed-identity
    ca-bundle=PATH                    trust this CA file for TLS (a private endpoint, the emulator)
    hsm=true                          create HSM-protected keys (Premium vault); implied on Managed HSM
    purge=true                        delete_key also purges the soft-deleted key (needs keys/purge)
    timeout=SECONDS                   per-request read timeout (default 30)
    retries=N                         retries of throttled (429) / failed (5xx, network) calls (default 3)
    algorithm=PS256|RS256|...         (key URIs) the signature algorithm, else the spec's default

Library users may inject any azure-core ``TokenCredential``:
``AzureKeyVaultKeyStore.from_uri(uri, credential=ManagedIdentityCredential())``.

Key Vault signs digests, so messages are hashed here and only the digest travels.
ECDSA signatures come back as raw r||s and are returned as DER. Azure offers neither
Ed25519 nor ML-DSA keys; asking for them is AlgorithmNotSupported with that reason.
Throttling (429, honouring Retry-After up to a bound) and 5xx / network failures are
retried by azure-core's RetryPolicy, then reported as BackendUnavailable.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
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
from signers.signature_format import curve_size, digest, ecdsa_raw_to_der
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri

__all__ = ["AzureKeyVaultKeyStore", "AzureKeyVaultSigner"]

SCHEME = "azurekms"

# KeySpec -> (Key Vault key type without -HSM, curve name or RSA size).
_SPECS: dict[KeySpec, tuple[str, str | int]] = {
    KeySpec.P256: ("EC", "P-256"),
    KeySpec.P384: ("EC", "P-384"),
    KeySpec.SECP256K1: ("EC", "P-256K"),  # Key Vault's name for secp256k1
    KeySpec.RSA2048: ("RSA", 2048),
    KeySpec.RSA3072: ("RSA", 3072),
    KeySpec.RSA4096: ("RSA", 4096),
}
_UNSUPPORTED: dict[KeySpec, str] = {
    KeySpec.ED25519: "Azure Key Vault does not offer Ed25519 keys (its EC keys are P-256, P-384, P-521 and P-256K)",
    KeySpec.ML_DSA_44: "Azure Key Vault does not offer ML-DSA keys",
    KeySpec.ML_DSA_65: "Azure Key Vault does not offer ML-DSA keys",
    KeySpec.ML_DSA_87: "Azure Key Vault does not offer ML-DSA keys",
}
# Key Vault curve names (incl. the 2016-10-01 spelling) -> KeySpec and the `cryptography` curve.
_CURVES: dict[str, tuple[KeySpec, ec.EllipticCurve]] = {
    "P-256": (KeySpec.P256, ec.SECP256R1()),
    "P-384": (KeySpec.P384, ec.SECP384R1()),
    "P-256K": (KeySpec.SECP256K1, ec.SECP256K1()),
    "SECP256K1": (KeySpec.SECP256K1, ec.SECP256K1()),
}
# Our algorithm names are Key Vault's JsonWebKeySignatureAlgorithm values (ES256K included).
_ALGORITHMS = frozenset(
    SignatureAlgorithm(a) for a in ("ES256", "ES384", "ES256K", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512")
)
# azure-identity credentials selectable with ?credential=.
_CREDENTIALS = {
    "default": "DefaultAzureCredential",
    "environment": "EnvironmentCredential",
    "managed-identity": "ManagedIdentityCredential",
    "workload-identity": "WorkloadIdentityCredential",
    "cli": "AzureCliCredential",
}
_QUERY = frozenset({"token-source", "credential", "client-id", "ca-bundle", "hsm", "purge", "timeout", "retries",
                    "algorithm"})
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")
_AZURE_HOSTS = (".vault.azure.net", ".managedhsm.azure.net", ".vault.azure.cn", ".managedhsm.azure.cn",
                ".vault.usgovcloudapi.net", ".managedhsm.usgovcloudapi.net")
_MAX_RETRY_AFTER = 30.0  # seconds: a larger Retry-After is cut to this, so no call hangs for minutes
_CONNECT_TIMEOUT = 10.0
# sign/verify are safe to repeat, so they are retried on 429 even without Retry-After (POST is not by default).
_SIGN_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class AzureKeyVaultSigner(BaseSigner):
    """One key version; `sign` is one round trip (hash here, Key Vault signs the digest)."""

    def __init__(self, store: AzureKeyVaultKeyStore, uri: str, algorithm: SignatureAlgorithm,
                 public_key: PublicKey, crypto_client: Any, version: str) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the HTTP pipeline alive as long as the signer
        self._client = crypto_client
        self.version = version

    def sign(self, message: bytes) -> bytes:
        hashed = digest(self.algorithm, bytes(message))
        with self._store._errors(f"sign with {self.uri}"):
            result = self._client.sign(self.algorithm.value, hashed, retry_on_methods=_SIGN_RETRY_METHODS)
        signature: bytes = result.signature
        if self.algorithm.family is KeyFamily.EC:
            if len(signature) != 2 * curve_size(self.spec):
                raise BackendUnavailable(f"Key Vault returned a {len(signature)}-byte ECDSA signature for {self.uri}")
            return ecdsa_raw_to_der(signature)
        return signature


class AzureKeyVaultKeyStore(BaseKeyStore):
    capabilities = Capabilities(
        key_specs=frozenset(_SPECS),
        create=True,
        list=True,
        delete=True,
        prehash=True,
    )

    def __init__(
        self,
        vault_url: str,
        credential: Any = None,
        *,
        token: Secret | None = None,
        credential_name: str = "default",
        client_id: str | None = None,
        ca_bundle: str | None = None,
        hsm: bool = False,
        purge: bool = False,
        timeout: float = 30.0,
        retries: int = 3,
        query: dict[str, str] | None = None,
    ) -> None:
        """A store on `vault_url` (``https://NAME.vault.azure.net``); prefer `from_uri`.

        `credential` (an azure-core TokenCredential) wins over `token` (a static bearer token),
        which wins over the azure-identity credential named by `credential_name`.
        """
        self._keys = require("azure.keyvault.keys", "azure", "Azure Key Vault")
        self._crypto = require("azure.keyvault.keys.crypto", "azure", "Azure Key Vault")
        self._core_exceptions = require("azure.core.exceptions", "azure", "Azure Key Vault")
        self.vault_url = vault_url.rstrip("/")
        authority = self.vault_url.removeprefix("https://")
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        self.managed_hsm = host.lower().endswith((".managedhsm.azure.net", ".managedhsm.azure.cn",
                                                 ".managedhsm.usgovcloudapi.net"))
        self.hsm = hsm or self.managed_hsm
        self.purge = purge
        self._query = dict(query or {})
        self.uri = KeyURI(SCHEME, "", authority, {}, {k: v for k, v in self._query.items() if k != "algorithm"}).format()
        self._owned_credential = credential is None
        self._credential = credential if credential is not None else _make_credential(token, credential_name, client_id)
        self._client = self._make_client(host, ca_bundle, timeout, retries)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str, credential: Any = None) -> AzureKeyVaultKeyStore:
        """A store from a store or key URI (see the module docstring); `credential` overrides the URI's."""
        parsed = _parse(uri)
        query = dict(parsed.query)
        unknown = set(query) - _QUERY
        if unknown:
            raise ConfigError(f"azurekms URI has unknown attribute(s) {sorted(unknown)}; known: {sorted(_QUERY)}")
        source = query.get("token-source")
        token = resolve_secret(source, "token-source") if source and credential is None else None
        name = query.get("credential", "default")
        if name not in _CREDENTIALS:
            raise ConfigError(f"azurekms credential={name!r} is not one of {sorted(_CREDENTIALS)}")
        return cls(
            f"https://{parsed.authority}",
            credential,
            token=token,
            credential_name=name,
            client_id=query.get("client-id"),
            ca_bundle=query.get("ca-bundle"),
            hsm=_flag(query, "hsm"),
            purge=_flag(query, "purge"),
            timeout=_number(query, "timeout", 30.0, float),
            retries=_number(query, "retries", 3, int),
            query=query,
        )

    def _make_client(self, host: str, ca_bundle: str | None, timeout: float, retries: int) -> Any:
        """One KeyClient (one pooled HTTPS session) for the store; every Signer shares its pipeline."""
        requests = require("requests", "azure", "Azure Key Vault")
        transport_module = require("azure.core.pipeline.transport", "azure", "Azure Key Vault")
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)  # 64 concurrent signers
        session.mount("https://", adapter)
        transport = transport_module.RequestsTransport(
            session=session,
            session_owner=True,
            connection_timeout=min(_CONNECT_TIMEOUT, timeout),
            read_timeout=timeout,
            connection_verify=ca_bundle if ca_bundle else True,
        )
        return self._keys.KeyClient(
            self.vault_url,
            self._credential,
            transport=transport,
            retry_policy=_retry_policy(retries),
            # Key Vault's challenge names vault.azure.net; a private host (the emulator, a proxy) cannot match it.
            verify_challenge_resource=host.lower().endswith(_AZURE_HOSTS),
        )

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> AzureKeyVaultSigner:
        """Create key `name`; KeyExists if it exists (Key Vault itself would add a version: see `rotate_key`).

        Options: `algorithm`, `hsm` (HSM-protected; always on Managed HSM), `tags` (dict).
        """
        spec = KeySpec.parse(spec)
        kind, param = self._spec(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        hsm = bool(opts.pop("hsm", self.hsm)) or self.managed_hsm
        tags = opts.pop("tags", None)
        if opts:
            raise ConfigError(f"azurekms back end: unknown create option(s) {sorted(opts)}")
        _check_name(name)
        try:
            self._get(name, None)
        except KeyNotFound:
            pass
        else:
            raise KeyExists(f"key {name!r} already exists in {self.vault_url}; use rotate_key for a new version")
        return self._signer(self._create(name, kind, param, hsm, tags), algorithm)

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> AzureKeyVaultSigner:
        """A new version of `name` with the same type and size/curve; the Signer signs with it."""
        _check_name(name)
        current = self._get(name, None)
        spec = _public_key(current).spec
        kind, param = self._spec(spec)
        hsm = _text(current.key_type).endswith("-HSM") or self.managed_hsm
        tags = current.properties.tags
        return self._signer(self._create(name, kind, param, hsm, tags), choose_algorithm(spec, algorithm))

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> AzureKeyVaultSigner:
        """Open the latest version of a key (or the version the URI / ``name/version`` pins)."""
        name, version, uri_algorithm = self._locate(uri_or_name)
        key = self._get(name, version)
        spec = _public_key(key).spec
        return self._signer(key, choose_algorithm(spec, algorithm or uri_algorithm))

    def list_keys(self) -> Iterator[KeyInfo]:
        with self._errors(f"list keys in {self.vault_url}"):
            for props in self._client.list_properties_of_keys():  # pages are fetched lazily, inside the guard
                yield KeyInfo(
                    name=props.name,
                    uri=self._key_uri(props.name, None),
                    enabled=bool(props.enabled) if props.enabled is not None else True,
                    extra={"managed": bool(props.managed)} if props.managed else {},
                )

    def delete_key(self, name: str) -> None:
        """Soft-delete all versions (Key Vault keeps them recoverable); with ``?purge=true`` also purge."""
        _check_name(name)
        with self._errors(f"delete key {name!r}"):
            poller = self._client.begin_delete_key(name)
            if self.purge:
                poller.wait()  # purge needs the deletion to have completed
                self._client.purge_deleted_key(name)

    def close(self) -> None:
        self._client.close()
        if self._owned_credential and hasattr(self._credential, "close"):
            self._credential.close()

    # -- internals ---------------------------------------------------------------------

    def _spec(self, spec: KeySpec) -> tuple[str, str | int]:
        if spec in _UNSUPPORTED:
            raise AlgorithmNotSupported(f"{spec.value}: {_UNSUPPORTED[spec]}")
        if spec not in _SPECS:  # pragma: no cover - every spec is in one of the two tables
            raise AlgorithmNotSupported(f"{spec.value} is not supported by the Azure Key Vault back end")
        return _SPECS[spec]

    def _create(self, name: str, kind: str, param: str | int, hsm: bool, tags: Any) -> Any:
        ops = ["sign", "verify"]  # a signing key does nothing else
        with self._errors(f"create key {name!r}"):
            if kind == "EC":
                return self._client.create_ec_key(name, curve=param, hardware_protected=hsm, key_operations=ops,
                                                  tags=tags)
            return self._client.create_rsa_key(name, size=param, hardware_protected=hsm, key_operations=ops,
                                               tags=tags)

    def _get(self, name: str, version: str | None) -> Any:
        with self._errors(f"key {name!r}" + (f" version {version}" if version else "")):
            return self._client.get_key(name, version)

    def _signer(self, key: Any, algorithm: SignatureAlgorithm) -> AzureKeyVaultSigner:
        public_key = _public_key(key)
        if algorithm not in _ALGORITHMS:  # pragma: no cover - the spec tables rule these out
            raise AlgorithmNotSupported(f"Azure Key Vault cannot sign with {algorithm.value}")
        # Built from the fetched key (no second GET), sharing the KeyClient's pipeline, as
        # KeyClient.get_cryptography_client does; the placeholder credential is never used.
        crypto = self._crypto.CryptographyClient(
            key, object(), generated_client=self._client._client, generated_models=self._client._models
        )
        version = key.properties.version
        query = {"algorithm": algorithm.value} if algorithm is not public_key.spec.default_algorithm else {}
        return AzureKeyVaultSigner(self, self._key_uri(key.name, version, query), algorithm, public_key, crypto,
                                   version)

    def _key_uri(self, name: str, version: str | None, extra: dict[str, str] | None = None) -> str:
        parsed = parse_uri(self.uri)
        path = f"{name}/{version}" if version else name
        return KeyURI(SCHEME, path, parsed.authority, {}, {**parsed.query, **(extra or {})}).format()

    def _locate(self, uri_or_name: str) -> tuple[str, str | None, str | None]:
        """(name, version or None, algorithm from the URI or None) for a key URI, ``name`` or ``name/version``."""
        if ":" not in uri_or_name:
            path, algorithm = uri_or_name, None
        else:
            parsed = _parse(uri_or_name)
            if f"https://{parsed.authority}".lower() != self.vault_url.lower():
                raise ConfigError(f"{parsed.public().format()} is not in the vault {self.vault_url}")
            path, algorithm = parsed.path, parsed.query.get("algorithm")
        parts = path.strip("/").split("/")
        if len(parts) > 2 or not parts[0]:
            raise ConfigError("an azurekms key is named KEY or KEY/VERSION")
        _check_name(parts[0])
        version = parts[1] if len(parts) == 2 else None
        if version is not None and not _VERSION.match(version):
            raise ConfigError("an azurekms key version is letters and digits")
        return parts[0], version, algorithm

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """The one place SDK failures become keyplane errors (the original chained)."""
        exc = self._core_exceptions
        try:
            yield
        except KeyplaneError:
            raise
        except exc.ClientAuthenticationError as e:  # 401, or azure-identity could not get a token
            raise AuthenticationFailed(f"{what}: Azure rejected the credential ({_reason(e)})") from e
        except exc.ResourceNotFoundError as e:
            raise KeyNotFound(f"{what}: not found in {self.vault_url}") from e
        except exc.ResourceExistsError as e:  # 409: the name belongs to a soft-deleted key
            raise KeyExists(f"{what}: {_reason(e)} (recover or purge the deleted key first)") from e
        except exc.HttpResponseError as e:
            status = e.status_code or 0
            if status == 403:
                raise PermissionDenied(f"{what}: the identity lacks the Key Vault permission ({_reason(e)})") from e
            if status == 404:
                raise KeyNotFound(f"{what}: not found in {self.vault_url}") from e
            if status == 401:
                raise AuthenticationFailed(f"{what}: Azure rejected the credential ({_reason(e)})") from e
            if status == 429 or status >= 500:
                raise BackendUnavailable(f"{what}: Key Vault answered {status} after retries ({_reason(e)})", e) from e
            if status == 400:
                raise ConfigError(f"{what}: Key Vault refused the request ({_reason(e)})") from e
            raise BackendUnavailable(f"{what}: Key Vault answered {status} ({_reason(e)})", e) from e
        except exc.AzureError as e:  # connection refused, DNS, TLS, timeouts: after the retries
            detail = str(e.message or type(e).__name__)[:300]  # the transport's words: URL and cause, no headers
            raise BackendUnavailable(f"{what}: cannot reach {self.vault_url} ({detail})", e) from e
        except ValueError as e:  # the SDK's challenge policy refuses a malformed or foreign challenge
            raise BackendUnavailable(f"{what}: unexpected answer from {self.vault_url} ({e})", e) from e


# -- helpers ---------------------------------------------------------------------------------


def _parse(uri: str) -> KeyURI:
    parsed = parse_uri(uri)
    if parsed.scheme != SCHEME:
        raise ConfigError(f"not an azurekms: URI (scheme {parsed.scheme!r})")
    if not parsed.authority:
        raise ConfigError("an azurekms URI names the vault host: azurekms://NAME.vault.azure.net[/KEY[/VERSION]]")
    return parsed


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("an Azure Key Vault key name is 1-127 characters of letters, digits and '-'")


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"azurekms {name}= must be true or false")
    return value in ("true", "1", "yes")


def _number(query: dict[str, str], name: str, default: Any, kind: type) -> Any:
    if name not in query:
        return default
    try:
        value = kind(query[name])
    except ValueError:
        raise ConfigError(f"azurekms {name}= must be a number") from None
    if value < 0:
        raise ConfigError(f"azurekms {name}= must not be negative")
    return value


def _reason(e: Any) -> str:
    """Key Vault's error code and message (never headers or the request, which carry the token)."""
    error = getattr(e, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(e, "reason", None) or type(e).__name__
    return f"{code}: {message}" if code else str(message)


def _text(value: Any) -> str:
    """The wire string of an SDK enum member (str() of one gives 'JsonWebKeyType.EC_HSM') or a plain str."""
    return str(getattr(value, "value", value))


def _public_key(key: Any) -> PublicKey:
    """The PublicKey of a KeyVaultKey's JWK (EC crv/x/y or RSA n/e)."""
    jwk = key.key
    kty = _text(jwk.kty)
    if kty in ("EC", "EC-HSM"):
        crv = _text(jwk.crv)
        if crv not in _CURVES:
            raise AlgorithmNotSupported(f"Azure key {key.name!r} uses curve {crv}, which keyplane does not support")
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"), _CURVES[crv][1]
        )
        return PublicKey(numbers.public_key())
    if kty in ("RSA", "RSA-HSM"):
        rsa_key = rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()
        return PublicKey(rsa_key)
    raise AlgorithmNotSupported(f"Azure key {key.name!r} is of type {kty}, which cannot sign")


def _make_credential(token: Secret | None, name: str, client_id: str | None) -> Any:
    if token is not None:
        return _StaticTokenCredential(token)
    identity = require("azure.identity", "azure", "Azure Key Vault")
    cls = getattr(identity, _CREDENTIALS[name])
    if name == "managed-identity" and client_id:
        return cls(client_id=client_id)
    return cls()


class _StaticTokenCredential:
    """A TokenCredential that hands out one fixed bearer token (for emulators and pre-issued tokens)."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        credentials = require("azure.core.credentials", "azure", "Azure Key Vault")
        return credentials.AccessToken(self._token.reveal(), int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "_StaticTokenCredential(token=***)"


_RETRY_POLICY_CLASS: Any = None


def _retry_policy(retries: int) -> Any:
    """azure-core's RetryPolicy (429/5xx/network, exponential backoff, Retry-After), with Retry-After bounded."""
    global _RETRY_POLICY_CLASS
    if _RETRY_POLICY_CLASS is None:
        policies = require("azure.core.pipeline.policies", "azure", "Azure Key Vault")

        class BoundedRetryPolicy(policies.RetryPolicy):  # type: ignore[name-defined]
            def get_retry_after(self, response: Any) -> float | None:
                value = super().get_retry_after(response)
                return None if value is None else min(float(value), _MAX_RETRY_AFTER)

        _RETRY_POLICY_CLASS = BoundedRetryPolicy
    return _RETRY_POLICY_CLASS(
        retry_total=retries,
        retry_connect=retries,
        retry_read=retries,
        retry_status=retries,
        retry_backoff_factor=0.5,
        retry_backoff_max=8,
    )
