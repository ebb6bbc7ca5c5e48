"""HashiCorp Vault / OpenBao Transit back end (same HTTP API; schemes ``hashivault:`` and ``openbao:``).

``hashivault://?addr=https://vault:8200&mount=transit`` is a store;
``hashivault://ca?version=2`` is version 2 of the Transit key ``ca`` in it. Settings come
from the URI query, else from the environment (for ``openbao:`` the ``BAO_*`` variables
win over ``VAULT_*``, for ``hashivault:`` the other way round):

=================  ==================================  ======================================
query              environment                         meaning
=================  ==================================  ======================================
``addr``           ``VAULT_ADDR`` / ``BAO_ADDR``        server URL (required)
``token-source``   ``VAULT_TOKEN`` / ``BAO_TOKEN``      ``env:NAME`` or ``file:PATH`` (required)
``mount``                                              Transit mount path (default ``transit``)
``namespace``      ``VAULT_NAMESPACE``/``BAO_NAMESPACE``  Vault Enterprise / OpenBao namespace
``ca-cert``        ``VAULT_CACERT`` / ``BAO_CACERT``    PEM bundle trusted for https
``client-cert``    ``VAULT_CLIENT_CERT`` / ``BAO_...``  client certificate (PEM) for mutual TLS
``client-key``     ``VAULT_CLIENT_KEY`` / ``BAO_...``   its private key (PEM)
``timeout``                                            seconds per call, retries included (default 10;
                                                       creating / rotating / importing 60)
``version``                                            key version to sign with (key URIs)
``algorithm``                                          e.g. ``RS256`` instead of the default
=================  ==================================  ======================================

Key versions: a Signer signs with exactly one version (the one named, else the latest
when opened) and exposes it as ``signer.version``; its ``public_key`` and ``key_id`` are
that version's. ``rotate_key`` (or ``signer.rotate()``) adds a version and returns a
Signer for it; old Signers keep signing with their version. ``public_keys()``,
``jwks()`` and ``verify()`` pick the public key per version, so signatures made before a
rotation keep verifying.

Transit is asked for the standard forms: ECDSA prehashed (hashed here, so a large
message never crosses the wire) with ``marshaling_algorithm=asn1`` (DER); RSA prehashed
with ``signature_algorithm`` pss (``salt_length=hash``: OpenBao's default "auto" is the
maximum salt, not the hash length that PS256 means) or pkcs1v15; Ed25519 and ML-DSA
sign the whole message. ML-DSA is detected, never assumed: OpenBao names it
``mldsa-44/65/87``, HashiCorp Vault ``ml-dsa`` with ``parameter_set``; the store reads the
server's own description of the key-type parameter and, on create, lets the server's
answer decide.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
)
from signers.keys import PublicKey
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import UriOptions, check_create_options, checked_uri

from .vault_http import DEFAULT_KEYGEN_TIMEOUT, DEFAULT_TIMEOUT, TLSOptions, VaultConnection
from .vault_signer import VaultTransitSigner
from .vault_wire import (
    CLASSICAL_TYPES,
    HASHICORP_MLDSA_SETS,
    HASHICORP_MLDSA_TYPE,
    MOUNT_PATTERN,
    OPENBAO_MLDSA_TYPES,
    KeyRecord,
    check_name,
    key_record,
    parse_signature,
    types_from_help,
    version_number,
    wrap_for_import,
)

__all__ = ["VaultTransitKeyStore", "VaultTransitSigner"]

log = logging.getLogger("keyplane.vault")

SCHEMES = ("hashivault", "openbao")

_QUERY = frozenset({
    "addr", "token-source", "mount", "namespace", "ca-cert", "client-cert", "client-key", "timeout",
    "version", "algorithm",
})
_ENV = {  # query attribute -> environment variable suffix (VAULT_x / BAO_x)
    "addr": "ADDR", "namespace": "NAMESPACE", "ca-cert": "CACERT", "client-cert": "CLIENT_CERT",
    "client-key": "CLIENT_KEY",
}


class VaultTransitKeyStore(BaseKeyStore):
    """A Transit mount on one Vault / OpenBao server."""

    signer_class = VaultTransitSigner

    def __init__(
        self, *, scheme: str, addr: str, token: Secret, token_source: str, mount: str = "transit",
        namespace: str | None = None, tls: TLSOptions | None = None, timeout: float | None = None,
    ) -> None:
        tls = tls or TLSOptions()
        self.scheme = scheme
        self.addr = addr.rstrip("/")
        self.mount = mount
        self.namespace = namespace
        # Not given: 10 s per call, 60 s for the calls that make the server generate a key.
        self.connection = VaultConnection(
            self.addr, token, namespace=namespace, tls=tls, timeout=timeout or DEFAULT_TIMEOUT,
            keygen_timeout=timeout or DEFAULT_KEYGEN_TIMEOUT)
        query = {"addr": self.addr, "mount": mount, "namespace": namespace, "token-source": token_source,
                 "ca-cert": tls.ca_cert, "client-cert": tls.client_cert, "client-key": tls.client_key,
                 "timeout": None if timeout is None else f"{timeout:g}"}
        self._query = {k: v for k, v in query.items() if v is not None}
        self.uri = KeyURI(scheme, "", "", {}, self._query).format()
        self._offered: frozenset[str] | None = None  # key types the server lists, once known

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str) -> VaultTransitKeyStore:
        """A store from a store URI or a key URI (the key part is ignored here; `open` reads it)."""
        if "token-value=" in uri:
            raise ConfigError("hashivault: URIs do not take token-value; use token-source=env:NAME or file:PATH")
        parsed, options = checked_uri(uri, schemes=SCHEMES, query=_QUERY)
        prefixes = ("BAO_", "VAULT_") if parsed.scheme == "openbao" else ("VAULT_", "BAO_")

        def setting(name: str) -> str | None:
            if name in parsed.query:
                return parsed.query[name] or None
            return next((os.environ[p + _ENV[name]] for p in prefixes if os.environ.get(p + _ENV[name])), None)

        addr = setting("addr")
        if not addr:
            raise ConfigError(f"{parsed.scheme}: no server address; add ?addr=https://HOST:8200 or set "
                              f"{prefixes[0]}ADDR")
        if not re.fullmatch(r"https?://[^/?#\s]+/?", addr):
            raise ConfigError(f"{parsed.scheme}: addr must be http(s)://HOST[:PORT], not {addr[:80]!r}")
        token, source = _token(parsed.query.get("token-source"), prefixes)
        mount = parsed.query.get("mount", "transit").strip("/")
        if not MOUNT_PATTERN.fullmatch(mount):
            raise ConfigError(f"{parsed.scheme}: bad mount path {mount[:80]!r}")
        tls = TLSOptions(ca_cert=setting("ca-cert"), client_cert=setting("client-cert"),
                         client_key=setting("client-key"))
        for what, path in (("ca-cert", tls.ca_cert), ("client-cert", tls.client_cert), ("client-key", tls.client_key)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{parsed.scheme}: {what} {path} is not a readable file")
        if tls.client_key and not tls.client_cert:
            raise ConfigError(f"{parsed.scheme}: client-key given without client-cert")
        return cls(scheme=parsed.scheme, addr=addr, token=token, token_source=source, mount=mount,
                   namespace=setting("namespace"), tls=tls,
                   timeout=_optional_timeout(options))

    # -- capabilities --------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]  # computed: it asks the server
        """What this server offers: classical specs, plus ML-DSA when the server describes it."""
        offered = self._offered_types()
        specs = {s for s, t in CLASSICAL_TYPES.items() if offered is None or t in offered}
        if offered is not None:
            specs |= {s for s, t in OPENBAO_MLDSA_TYPES.items() if t in offered}
            if HASHICORP_MLDSA_TYPE in offered:
                specs |= set(HASHICORP_MLDSA_SETS)
        return Capabilities(key_specs=frozenset(specs), prehash=True,
                            deterministic=frozenset({KeySpec.ED25519}))

    def _offered_types(self) -> frozenset[str] | None:
        """Key types the server lists in its own help for ``keys/<name>``; None if it will not say.

        Cached once known. Reading help needs no key and changes nothing on the server.
        """
        if self._offered is not None:
            return self._offered
        try:
            reply = self.connection.call(
                "reading the key-type list", self.connection.hvac.adapter.get,
                f"/v1/{self.mount}/keys/keyplane-probe", params={"help": "1"})
        except KeyplaneError as e:
            log.debug("key-type list unavailable: %s", type(e).__name__)
            return None
        self._offered = types_from_help(reply)  # a plain assignment: racing threads store equal values
        return self._offered

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> VaultTransitSigner:
        spec = KeySpec.parse(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        check_create_options(opts, (), self.scheme)
        check_name(name)
        candidates = self._create_parameters(spec)
        # Transit's create answers 200 for an existing key and leaves it as it is: look first.
        # (Two creators racing between this read and the create both succeed; Transit offers no create-if-absent.)
        if self._exists(name):
            raise KeyExists(f"key {name!r} already exists in {self.addr} mount {self.mount!r}")
        answers: list[str] = []
        for parameters in candidates:
            try:
                reply = self.connection.call(
                    f"creating key {name!r} ({spec.value})", self.connection.hvac.adapter.post,
                    f"/v1/{self.mount}/keys/{name}", json=parameters)
            except AlgorithmNotSupported as e:
                answers.append(str(e))
                continue
            log.debug("created key %s (%s) in %s", name, parameters["type"], self.mount)
            data = reply.get("data") if isinstance(reply, dict) else None
            record = key_record(name, data) if data and data.get("keys") else self._read(name)
            return self._signer(record, record.latest, algorithm)
        raise AlgorithmNotSupported(f"{self.addr} does not create {spec.value} keys; " + " / ".join(answers))

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> VaultTransitSigner:
        name, version, requested = self._key_ref(uri_or_name)
        record = self._read(name)
        return self._signer(record, record.latest if version is None else version, algorithm or requested)

    def list_keys(self) -> Iterator[KeyInfo]:
        try:
            reply = self.connection.call("listing keys", self.connection.hvac.secrets.transit.list_keys,
                                         mount_point=self.mount)
        except KeyNotFound:
            return  # Transit answers 404 for a mount with no keys
        for name in sorted(reply.get("data", {}).get("keys", [])):
            try:
                record = self._read(name)
            except (KeyNotFound, AlgorithmNotSupported):
                continue  # deleted meanwhile, or an encryption / HMAC key: nothing to sign with
            public_key = record.public_key(record.latest)
            yield KeyInfo(name=name, uri=self._key_uri(name), spec=record.spec, key_id=public_key.key_id,
                          version=str(record.latest), extra={"type": record.type, "versions": record.versions})

    def delete_key(self, name: str) -> None:
        check_name(name)
        self._read(name)  # KeyNotFound for an absent key, before changing anything
        transit = self.connection.hvac.secrets.transit
        self.connection.call(f"allowing deletion of {name!r}", transit.update_key_configuration,
                             name=name, deletion_allowed=True, mount_point=self.mount)
        self.connection.call(f"deleting key {name!r}", transit.delete_key, name=name, mount_point=self.mount)
        log.debug("deleted key %s from %s", name, self.mount)

    def close(self) -> None:
        self.connection.close()

    # -- versions ------------------------------------------------------------------------

    def import_key(self, name: str, private_key: Any,
                   algorithm: SignatureAlgorithm | str | None = None) -> VaultTransitSigner:
        """Bring your own key: wrap it with the mount's wrapping key and import it (Transit BYOK).

        `private_key` is a `cryptography` private key (see `signers.key_import`). Raises
        KeyExists, AlgorithmNotSupported (a spec Transit has no key type for, or a server that
        refuses that type's import), ConfigError for an object that is not a private key.
        The imported key's public key is checked against the one given.
        """
        check_name(name)
        if not hasattr(private_key, "public_key") or not hasattr(private_key, "private_bytes"):
            raise ConfigError("import_key needs a cryptography private key object (see signers.key_import)")
        expected = PublicKey(private_key.public_key())
        chosen = choose_algorithm(expected.spec, algorithm)
        candidates = self._create_parameters(expected.spec)
        if self._exists(name):
            raise KeyExists(f"key {name!r} already exists in {self.addr} mount {self.mount!r}")
        reply = self.connection.call("reading the wrapping key", self.connection.hvac.adapter.get,
                                     f"/v1/{self.mount}/wrapping_key")
        try:
            wrapping_pem = str(reply["data"]["public_key"])
        except (KeyError, TypeError) as e:
            raise BackendUnavailable("Transit answered without a wrapping key", e) from e
        der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        answers: list[str] = []
        for parameters in candidates:
            body = dict(parameters, ciphertext=wrap_for_import(wrapping_pem, der), hash_function="SHA256")
            try:
                self.connection.call(f"importing key {name!r} ({expected.spec.value})",
                                     self.connection.hvac.adapter.post, f"/v1/{self.mount}/keys/{name}/import",
                                     json=body)
            except (AlgorithmNotSupported, ConfigError) as e:
                answers.append(str(e))
                continue
            record = self._read(name)
            if record.public_key(record.latest) != expected:
                raise BackendUnavailable(f"Transit imported {name!r} but reports a different public key")
            log.debug("imported key %s (%s) into %s", name, parameters["type"], self.mount)
            return self._signer(record, record.latest, chosen)
        raise AlgorithmNotSupported(f"{self.addr} does not import {expected.spec.value} keys; " + " / ".join(answers))

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> VaultTransitSigner:
        """Add a new version of `name`; a Signer for that version."""
        check_name(name)
        self.connection.call(f"rotating key {name!r}", self.connection.hvac.secrets.transit.rotate_key,
                             name=name, mount_point=self.mount)
        record = self._read(name)
        log.debug("rotated key %s to v%d", name, record.latest)
        return self._signer(record, record.latest, algorithm)

    def public_keys(self, name: str) -> dict[int, PublicKey]:
        """Every version's public key, in version order."""
        check_name(name)
        record = self._read(name)
        return {v: record.public_key(v) for v in record.versions}

    def jwks(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> dict[str, list[dict[str, str]]]:
        """A JWKS with one JWK per version (``kid`` = thumbprint, so a token's kid picks its version)."""
        keys = self.public_keys(name)
        alg = choose_algorithm(next(iter(keys.values())).spec, algorithm) if keys else None
        return {"keys": [pk.to_jwk(alg=alg) for pk in reversed(keys.values())]}

    def verify(
        self, name: str, message: bytes, signature: bytes | str, *, version: int | None = None,
        algorithm: SignatureAlgorithm | str | None = None,
    ) -> int:
        """Verify locally with the right version's public key; the version that verified.

        `signature` is our bytes (give `version`, or every version is tried, newest
        first) or Transit's own ``vault:vN:...`` text, which names its version.
        """
        check_name(name)
        if isinstance(signature, str):
            version, signature = parse_signature(signature)
        record = self._read(name)
        alg = choose_algorithm(record.spec, algorithm)
        versions = [version] if version is not None else list(reversed(record.versions))
        for v in versions:
            if record.public_key(v).is_valid(signature, message, alg):
                return v
        raise InvalidSignature(f"{alg.value} signature does not verify with key {name!r} version(s) {versions}")

    # -- internals ---------------------------------------------------------------------

    def _read(self, name: str) -> KeyRecord:
        reply = self.connection.call(f"reading key {name!r}", self.connection.hvac.secrets.transit.read_key,
                                     name=name, mount_point=self.mount)
        return key_record(name, reply.get("data") or {})

    def _exists(self, name: str) -> bool:
        try:
            self.connection.call(f"reading key {name!r}", self.connection.hvac.secrets.transit.read_key,
                                 name=name, mount_point=self.mount)
        except KeyNotFound:
            return False
        return True

    def _signer(
        self, record: KeyRecord, version: int, algorithm: SignatureAlgorithm | str | None
    ) -> VaultTransitSigner:
        public_key = record.public_key(version)
        alg = choose_algorithm(record.spec, algorithm)
        uri = self._key_uri(record.name, version, None if alg is record.spec.default_algorithm else alg)
        return VaultTransitSigner(self, record.name, version, uri, alg, public_key)

    def _create_parameters(self, spec: KeySpec) -> list[dict[str, str]]:
        """Create requests to try, in order; AlgorithmNotSupported if Transit has no such key type."""
        if spec in CLASSICAL_TYPES:
            return [{"type": CLASSICAL_TYPES[spec]}]
        if spec not in OPENBAO_MLDSA_TYPES:
            offered = ", ".join(s.value for s in (*CLASSICAL_TYPES, *OPENBAO_MLDSA_TYPES))
            raise AlgorithmNotSupported(f"Transit has no {spec.value} keys; it signs with {offered}")
        openbao = {"type": OPENBAO_MLDSA_TYPES[spec]}
        hashicorp = {"type": HASHICORP_MLDSA_TYPE, "parameter_set": HASHICORP_MLDSA_SETS[spec]}
        # Both names are tried (the server's answer decides); the one the server lists goes first.
        offered_types = self._offered_types() or frozenset()
        return [hashicorp, openbao] if HASHICORP_MLDSA_TYPE in offered_types else [openbao, hashicorp]

    def _key_ref(self, uri_or_name: str) -> tuple[str, int | None, str | None]:
        """(name, pinned version or None, algorithm from the URI or None)."""
        if ":" not in uri_or_name:
            check_name(uri_or_name)
            return uri_or_name, None, None
        parsed = parse_uri(uri_or_name)
        if parsed.scheme not in SCHEMES:
            raise ConfigError(f"{parsed.public().format()} is not a hashivault:/openbao: key URI")
        for attr, mine in (("addr", self.addr), ("mount", self.mount)):
            theirs = parsed.query.get(attr)
            if theirs is not None and theirs.strip("/") != mine.strip("/"):
                raise ConfigError(f"{parsed.public().format()} names a different {attr} than this store ({mine})")
        name = parsed.authority or parsed.path.lstrip("/")
        if not name:
            raise ConfigError(f"{parsed.public().format()} names no key (expected hashivault://KEY)")
        check_name(name)
        version = parsed.query.get("version")
        return name, version_number(version) if version is not None else None, parsed.query.get("algorithm")

    def _key_uri(self, name: str, version: int | None = None, algorithm: SignatureAlgorithm | None = None) -> str:
        query = dict(self._query)
        if version is not None:
            query["version"] = str(version)
        if algorithm is not None:
            query["algorithm"] = algorithm.value
        return KeyURI(self.scheme, "", name, {}, query).format()


# -- helpers -------------------------------------------------------------------------------


def _token(source: str | None, prefixes: tuple[str, ...]) -> tuple[Secret, str]:
    """(token, where it came from): ``token-source``, else ``*_TOKEN`` in the environment."""
    if source is not None:
        return resolve_secret(source, "token-source"), source
    for prefix in prefixes:
        variable = prefix + "TOKEN"
        if os.environ.get(variable):
            return Secret(os.environ[variable]), f"env:{variable}"
    raise ConfigError(f"no token: add ?token-source=env:NAME (or file:PATH), or set {prefixes[0]}TOKEN")


def _optional_timeout(options: UriOptions) -> float | None:
    """The ``timeout`` attribute (a finite number of seconds, 0.01..3600), or None when not given."""
    if options.text("timeout") is None:
        return None
    return options.number("timeout", DEFAULT_TIMEOUT, minimum=0.01, maximum=3600)
