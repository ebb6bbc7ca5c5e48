"""The Azure Key Vault KeyStore: create, import, rotate, open, list, disable / enable, delete."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from backends.importing import imported_public_key
from backends.translation import translated
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError, KeyCorrupt, KeyExists, KeyNotFound
from signers.sdk import require
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import UriOptions, check_create_options, checked_uri

from .aio import AsyncPipelines, make_async_credential, make_async_key_client
from .client import AZURE_HOSTS, CREDENTIALS, make_credential, make_key_client
from .errors import translate
from .keys import ALGORITHMS, SPECS, VERSION, check_name, import_jwk, public_key_of, spec_params, wire
from .signer import AzureKeyVaultSigner

__all__ = ["SCHEME", "AzureKeyVaultKeyStore"]

SCHEME = "azurekms"
_QUERY = frozenset({"token-source", "credential", "client-id", "ca-bundle", "hsm", "purge", "timeout", "retries",
                    "algorithm"})
_MANAGED_HSM_HOSTS = (".managedhsm.azure.net", ".managedhsm.azure.cn", ".managedhsm.usgovcloudapi.net")


class AzureKeyVaultKeyStore(BaseKeyStore):
    """One vault (or Managed HSM) through one KeyClient; implements rotation, disable / enable and import."""

    capabilities = Capabilities(
        key_specs=frozenset(SPECS),
        create=True,
        list=True,
        delete=True,
        prehash=True,
        deletion="soft",  # delete_key soft-deletes (recoverable) unless ?purge=true
    )
    signer_class = AzureKeyVaultSigner  # capabilities_of reads the signer protocols (sign-digest) from it

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
        async_credential: Any = None,
    ) -> None:
        """A store on `vault_url` (``https://NAME.vault.azure.net``); prefer `from_uri`.

        `credential` (an azure-core TokenCredential) wins over `token` (a static bearer token),
        which wins over the azure-identity credential named by `credential_name`. `sign_async`
        uses an async credential: `async_credential` if given, else the async twin of the
        above; an injected sync `credential` without an `async_credential` makes `sign_async`
        run `sign` in a worker thread instead.
        """
        self._keys = require("azure.keyvault.keys", "azure", "Azure Key Vault")
        self._crypto = require("azure.keyvault.keys.crypto", "azure", "Azure Key Vault")
        self.vault_url = vault_url.rstrip("/")
        authority = self.vault_url.removeprefix("https://")
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        self.managed_hsm = host.lower().endswith(_MANAGED_HSM_HOSTS)
        self.hsm = hsm or self.managed_hsm
        self.purge = purge
        self._query = dict(query or {})
        self.uri = KeyURI(SCHEME, "", authority, {}, {k: v for k, v in self._query.items() if k != "algorithm"}).format()
        self._translate = partial(translate, vault_url=self.vault_url)
        self._owned_credential = credential is None
        self._credential = credential if credential is not None else make_credential(token, credential_name, client_id)
        self._client = make_key_client(self.vault_url, host, self._credential, ca_bundle, timeout, retries)
        self.native_async = credential is None or async_credential is not None

        def async_client() -> Any:  # built inside the event loop that will use it
            cred = async_credential or make_async_credential(token, credential_name, client_id)
            return make_async_key_client(self.vault_url, host.lower().endswith(AZURE_HOSTS), cred, ca_bundle,
                                         timeout, retries)

        self._async = AsyncPipelines(async_client)

    @classmethod
    def from_uri(cls, uri: str, credential: Any = None, async_credential: Any = None) -> AzureKeyVaultKeyStore:
        """A store from a store or key URI (see the package docstring); `credential` overrides the URI's.

        Raises ConfigError for another scheme, an unknown attribute, or a bad value (naming the attribute).
        """
        parsed, options = _parse(uri)
        source = options.text("token-source")
        token = resolve_secret(source, "token-source") if source and credential is None else None
        return cls(
            f"https://{parsed.authority}",
            credential,
            token=token,
            credential_name=options.choice("credential", CREDENTIALS, "default") or "default",
            client_id=options.text("client-id"),
            ca_bundle=options.text("ca-bundle"),
            hsm=options.flag("hsm"),
            purge=options.flag("purge"),
            timeout=options.number("timeout", 30.0, minimum=0.001, maximum=3600),
            retries=options.integer("retries", 3, minimum=0, maximum=20),
            query=dict(parsed.query),
            async_credential=async_credential,
        )

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> AzureKeyVaultSigner:
        """Create key `name`; KeyExists if it exists (Key Vault itself would add a version: see `rotate_key`).

        Options: `algorithm`, `hsm` (HSM-protected; always on Managed HSM), `tags` (dict).
        Raises AlgorithmNotSupported (Ed25519, ML-DSA: with why), ConfigError and the service's errors.
        """
        spec = KeySpec.parse(spec)
        kind, param = spec_params(spec)
        check_create_options(opts, {"algorithm", "hsm", "tags"}, "azurekms")
        algorithm = choose_algorithm(spec, opts.get("algorithm"))
        hsm = bool(opts.get("hsm", self.hsm)) or self.managed_hsm
        check_name(name)
        self._check_free(name)
        return self._signer(self._create(name, kind, param, hsm, opts.get("tags")), algorithm)

    def import_key(self, name: str, private_key: Any, algorithm: SignatureAlgorithm | str | None = None,
                   **opts: Any) -> AzureKeyVaultSigner:
        """Import an existing private key with Key Vault's import (ImportingKeyStore).

        `private_key` is a `cryptography` EC (P-256, P-384, secp256k1) or RSA private key.
        Options: `hsm`, `tags`. Raises KeyExists, AlgorithmNotSupported (Ed25519, ML-DSA),
        ConfigError (not a private key) and the service's errors.
        """
        check_create_options(opts, {"hsm", "tags"}, "azurekms")
        check_name(name)
        expected = imported_public_key(private_key, "Azure Key Vault")
        chosen = choose_algorithm(expected.spec, algorithm)
        fields = import_jwk(private_key, expected.spec)
        hsm = bool(opts.get("hsm", self.hsm)) or self.managed_hsm
        self._check_free(name)
        with translated(self._translate, f"import key {name!r}"):
            key = self._client.import_key(name, self._keys.JsonWebKey(**fields), hardware_protected=hsm,
                                          tags=opts.get("tags"))
        signer = self._signer(key, chosen)
        if signer.public_key != expected:
            raise KeyCorrupt(f"Key Vault stored another public key for {name!r} than the one imported")
        return signer

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> AzureKeyVaultSigner:
        """A new version of `name` with the same type and size/curve; the Signer signs with it (RotatingKeyStore).

        Signers opened before keep their (pinned) versions. Raises KeyNotFound and the service's errors.
        """
        check_name(name)
        current = self._get(name, None)
        spec = public_key_of(current).spec
        kind, param = spec_params(spec)
        hsm = wire(current.key_type).endswith("-HSM") or self.managed_hsm
        tags = current.properties.tags
        return self._signer(self._create(name, kind, param, hsm, tags), choose_algorithm(spec, algorithm))

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> AzureKeyVaultSigner:
        """Open the latest version of a key (or the version the URI / ``name/version`` pins).

        Raises KeyNotFound, KeyDisabled (a disabled version) and the service's errors.
        """
        name, version, uri_algorithm = self._locate(uri_or_name)
        key = self._get(name, version)
        spec = public_key_of(key).spec
        return self._signer(key, choose_algorithm(spec, algorithm or uri_algorithm))

    def list_keys(self) -> Iterator[KeyInfo]:
        """Every key in the vault (its latest version's properties)."""
        with translated(self._translate, f"list keys in {self.vault_url}"):
            for props in self._client.list_properties_of_keys():  # pages are fetched lazily, inside the guard
                yield KeyInfo(
                    name=props.name,
                    uri=self._key_uri(props.name, None),
                    enabled=bool(props.enabled) if props.enabled is not None else True,
                    extra={"managed": bool(props.managed)} if props.managed else {},
                )

    def delete_key(self, name: str) -> None:
        """Soft-delete all versions (Key Vault keeps them recoverable); with ``?purge=true`` also purge.

        Raises KeyNotFound and the service's errors.
        """
        check_name(name)
        with translated(self._translate, f"delete key {name!r}"):
            poller = self._client.begin_delete_key(name)
            if self.purge:
                poller.wait()  # purge needs the deletion to have completed
                self._client.purge_deleted_key(name)

    def disable_key(self, name: str) -> None:
        """Disable every version of `name`: signing with any of them is KeyDisabled until enabled (DisablingKeyStore).

        Raises KeyNotFound and the service's errors.
        """
        self._set_enabled(name, False)

    def enable_key(self, name: str) -> None:
        """Enable every version of `name` again (DisablingKeyStore). Raises KeyNotFound and the service's errors."""
        self._set_enabled(name, True)

    def close(self) -> None:
        """Close the HTTPS session (and the credential this store made); async pipelines close with `aclose()`."""
        self._async.forget()
        self._client.close()
        if self._owned_credential and hasattr(self._credential, "close"):
            self._credential.close()

    # -- internals ---------------------------------------------------------------------

    def _set_enabled(self, name: str, enabled: bool) -> None:
        check_name(name)
        action = "enable" if enabled else "disable"
        with translated(self._translate, f"{action} key {name!r}"):
            versions = [p.version for p in self._client.list_properties_of_key_versions(name)]
            if not versions:
                raise KeyNotFound(f"{action} key {name!r}: not found in {self.vault_url}")
            for version in versions:
                self._client.update_key_properties(name, version, enabled=enabled)

    def _check_free(self, name: str) -> None:
        try:
            self._get(name, None)
        except KeyNotFound:
            return
        raise KeyExists(f"key {name!r} already exists in {self.vault_url}; use rotate_key for a new version")

    def _create(self, name: str, kind: str, param: str | int, hsm: bool, tags: Any) -> Any:
        ops = ["sign", "verify"]  # a signing key does nothing else
        with translated(self._translate, f"create key {name!r}"):
            if kind == "EC":
                return self._client.create_ec_key(name, curve=param, hardware_protected=hsm, key_operations=ops,
                                                  tags=tags)
            return self._client.create_rsa_key(name, size=param, hardware_protected=hsm, key_operations=ops,
                                               tags=tags)

    def _get(self, name: str, version: str | None) -> Any:
        with translated(self._translate, f"key {name!r}" + (f" version {version}" if version else "")):
            return self._client.get_key(name, version)

    def _signer(self, key: Any, algorithm: SignatureAlgorithm) -> AzureKeyVaultSigner:
        public_key = public_key_of(key)
        if algorithm not in ALGORITHMS:  # pragma: no cover - the spec tables rule these out
            raise AlgorithmNotSupported(f"Azure Key Vault cannot sign with {algorithm.value}")
        # Built from the fetched key (no second GET), sharing the KeyClient's pipeline, as
        # KeyClient.get_cryptography_client does; the placeholder credential is never used.
        crypto = self._crypto.CryptographyClient(
            key, object(), generated_client=self._client._client, generated_models=self._client._models
        )
        version = key.properties.version
        query = {"algorithm": algorithm.value} if algorithm is not public_key.spec.default_algorithm else {}
        return AzureKeyVaultSigner(self, self._key_uri(key.name, version, query), algorithm, public_key, crypto,
                                   version, key)

    def _key_uri(self, name: str, version: str | None, extra: dict[str, str] | None = None) -> str:
        parsed = parse_uri(self.uri)
        path = f"{name}/{version}" if version else name
        return KeyURI(SCHEME, path, parsed.authority, {}, {**parsed.query, **(extra or {})}).format()

    def _locate(self, uri_or_name: str) -> tuple[str, str | None, str | None]:
        """(name, version or None, algorithm from the URI or None) for a key URI, ``name`` or ``name/version``."""
        if ":" not in uri_or_name:
            path, algorithm = uri_or_name, None
        else:
            parsed, options = _parse(uri_or_name)
            if f"https://{parsed.authority}".lower() != self.vault_url.lower():
                raise ConfigError(f"{parsed.public().format()} is not in the vault {self.vault_url}")
            path, algorithm = parsed.path, options.text("algorithm")
        parts = path.strip("/").split("/")
        if len(parts) > 2 or not parts[0]:
            raise ConfigError("an azurekms key is named KEY or KEY/VERSION")
        check_name(parts[0])
        version = parts[1] if len(parts) == 2 else None
        if version is not None and not VERSION.match(version):
            raise ConfigError("an azurekms key version is letters and digits")
        return parts[0], version, algorithm


def _parse(uri: str) -> tuple[KeyURI, UriOptions]:
    parsed, options = checked_uri(uri, schemes={SCHEME}, query=_QUERY)
    if not parsed.authority:
        raise ConfigError("an azurekms URI names the vault host: azurekms://NAME.vault.azure.net[/KEY[/VERSION]]")
    return parsed, options
