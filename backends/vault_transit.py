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
``timeout``                                            seconds per call, retries included (default 10)
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

import base64
import binascii
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
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
from signers.signature_format import digest
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import check_create_options, checked_uri

from .vault_http import DEFAULT_TIMEOUT, TLSOptions, VaultConnection

__all__ = ["VaultTransitKeyStore", "VaultTransitSigner"]

log = logging.getLogger("keyplane.vault")

SCHEMES = ("hashivault", "openbao")

# -- mapping tables --------------------------------------------------------------------

_CLASSICAL_TYPES: dict[KeySpec, str] = {
    KeySpec.ED25519: "ed25519",
    KeySpec.P256: "ecdsa-p256",
    KeySpec.P384: "ecdsa-p384",
    KeySpec.RSA2048: "rsa-2048",
    KeySpec.RSA3072: "rsa-3072",
    KeySpec.RSA4096: "rsa-4096",
}
_OPENBAO_MLDSA_TYPES: dict[KeySpec, str] = {
    KeySpec.ML_DSA_44: "mldsa-44",
    KeySpec.ML_DSA_65: "mldsa-65",
    KeySpec.ML_DSA_87: "mldsa-87",
}
_HASHICORP_MLDSA_TYPE = "ml-dsa"  # with parameter_set "44" / "65" / "87"
_HASHICORP_MLDSA_SETS: dict[KeySpec, str] = {
    KeySpec.ML_DSA_44: "44",
    KeySpec.ML_DSA_65: "65",
    KeySpec.ML_DSA_87: "87",
}
_SPEC_BY_TYPE: dict[str, KeySpec] = {t: s for s, t in (_CLASSICAL_TYPES | _OPENBAO_MLDSA_TYPES).items()}
_TRANSIT_HASH = {"sha256": "sha2-256", "sha384": "sha2-384", "sha512": "sha2-512"}

_NAME = re.compile(r"\w(?:[\w.\-]*\w)?", re.ASCII)  # Transit's own route pattern for key names
_MOUNT = re.compile(r"\w[\w.\-]*(?:/\w[\w.\-]*)*", re.ASCII)  # no "." / ".." segments
_SIGNATURE = re.compile(r"^[a-z]+:v(\d+):([A-Za-z0-9+/=]+)$")
_QUERY = frozenset({
    "addr", "token-source", "mount", "namespace", "ca-cert", "client-cert", "client-key", "timeout",
    "version", "algorithm",
})
_ENV = {  # query attribute -> environment variable suffix (VAULT_x / BAO_x)
    "addr": "ADDR", "namespace": "NAMESPACE", "ca-cert": "CACERT", "client-cert": "CLIENT_CERT",
    "client-key": "CLIENT_KEY",
}


@dataclass(frozen=True)
class _KeyRecord:
    """One Transit key as read from the server."""

    name: str
    type: str
    spec: KeySpec
    latest: int
    public_keys: Mapping[int, str]  # version -> the server's text (PEM, or base64 raw for Ed25519 / ML-DSA)

    @property
    def versions(self) -> list[int]:
        return sorted(self.public_keys)  # numerically: 10 after 9

    def public_key(self, version: int) -> PublicKey:
        text = self.public_keys.get(version)
        if text is None:
            raise KeyNotFound(f"key {self.name!r} has no version {version} (versions: {self.versions})")
        return _public_key(self.spec, text)


class VaultTransitSigner(BaseSigner):
    """Signs with one version of one Transit key: one HTTP round trip per signature."""

    def __init__(
        self, store: VaultTransitKeyStore, name: str, version: int, uri: str,
        algorithm: SignatureAlgorithm, public_key: PublicKey,
    ) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the connection alive as long as the signer
        self.name = name
        self.version = version
        self._path = f"{store.mount}/sign/{name}"
        self._body = _sign_parameters(algorithm, version)
        self._what = f"signing with {name!r} v{version}"
        self._outages_seen = store.connection.outages

    def sign(self, message: bytes) -> bytes:
        if self._outages_seen != self._store.connection.outages:
            self._recheck()
        message = bytes(message)
        data = digest(self.algorithm, message) if self.algorithm.hash_name else message
        body = dict(self._body, input=base64.b64encode(data).decode("ascii"))
        reply = self._store.connection.post_json(self._path, body, self._what)
        signature = _signature_from(reply, self)
        if not self.public_key.is_valid(signature, message, self.algorithm):
            self._refuse(signature)
        return signature

    def _refuse(self, signature: bytes) -> None:
        """A signature this signer's public key rejects: find out why, and never hand it out.

        The usual cause is a server that was restarted or restored and holds another key
        under the same name and version (urllib3 reconnects silently, so no outage is
        seen): KeyNotFound. The same key answering a bad signature is a server fault.
        """
        self._recheck()  # KeyNotFound when the key is gone or replaced
        raise BackendUnavailable(f"Transit returned a signature for {self.name!r} v{self.version} that its "
                                 f"public key rejects ({len(signature)} bytes); not handing it out")

    def sign_mu(self, mu: bytes) -> bytes:
        """ML-DSA over a caller-computed FIPS 204 mu (64 bytes): OpenBao's ``hash_algorithm=mldsa-mu``.

        What composite signatures need (their ML-DSA context is the composite label).
        ConfigError unless 64 bytes; AlgorithmNotSupported for non-ML-DSA keys.
        """
        if self.algorithm.family is not KeyFamily.MLDSA:
            raise AlgorithmNotSupported(f"external mu is ML-DSA only, not {self.algorithm.value}")
        if len(mu) != 64:
            raise ConfigError(f"an ML-DSA mu is 64 bytes, not {len(mu)}")
        if self._outages_seen != self._store.connection.outages:
            self._recheck()
        body = dict(self._body, input=base64.b64encode(bytes(mu)).decode("ascii"), prehashed=True,
                    hash_algorithm="mldsa-mu")
        reply = self._store.connection.post_json(self._path, body, self._what)
        return _signature_from(reply, self)

    def _recheck(self) -> None:
        """After an outage, make sure the server still holds this key version before signing with it.

        A restarted or restored server may have lost the key, or hold a different key under
        the same name and version; signing on would return signatures this signer's
        public_key does not verify.
        """
        outages = self._store.connection.outages
        try:
            current = self._store._read(self.name).public_key(self.version)
        except KeyNotFound as e:
            raise KeyNotFound(f"key {self.name!r} v{self.version} is no longer on the server ({e}); "
                              "it was deleted, or the server lost its state") from e
        if current != self.public_key:
            raise KeyNotFound(f"key {self.name!r} v{self.version} on the server is no longer the key this signer "
                              "opened (deleted and re-created?); open it again")
        self._outages_seen = outages

    def rotate(self) -> VaultTransitSigner:
        """Add a key version on the server; a Signer for it (this one keeps its version)."""
        return self._store.rotate_key(self.name, self.algorithm)


class VaultTransitKeyStore(BaseKeyStore):
    """A Transit mount on one Vault / OpenBao server."""

    def __init__(
        self, *, scheme: str, addr: str, token: Secret, token_source: str, mount: str = "transit",
        namespace: str | None = None, tls: TLSOptions | None = None, timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        tls = tls or TLSOptions()
        self.scheme = scheme
        self.addr = addr.rstrip("/")
        self.mount = mount
        self.namespace = namespace
        self.connection = VaultConnection(self.addr, token, namespace=namespace, tls=tls, timeout=timeout)
        query = {"addr": self.addr, "mount": mount, "namespace": namespace, "token-source": token_source,
                 "ca-cert": tls.ca_cert, "client-cert": tls.client_cert, "client-key": tls.client_key,
                 "timeout": None if timeout == DEFAULT_TIMEOUT else f"{timeout:g}"}
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
        if not _MOUNT.fullmatch(mount):
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
                   timeout=options.number("timeout", DEFAULT_TIMEOUT, minimum=0.01, maximum=3600))

    # -- capabilities --------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]  # computed: it asks the server
        """What this server offers: classical specs, plus ML-DSA when the server describes it."""
        offered = self._offered_types()
        specs = {s for s, t in _CLASSICAL_TYPES.items() if offered is None or t in offered}
        if offered is not None:
            specs |= {s for s, t in _OPENBAO_MLDSA_TYPES.items() if t in offered}
            if _HASHICORP_MLDSA_TYPE in offered:
                specs |= set(_HASHICORP_MLDSA_SETS)
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
        self._offered = _types_from_help(reply)  # a plain assignment: racing threads store equal values
        return self._offered

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> VaultTransitSigner:
        spec = KeySpec.parse(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        check_create_options(opts, (), self.scheme)
        _check_name(name)
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
            record = _record(name, data) if data and data.get("keys") else self._read(name)
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
        _check_name(name)
        self._read(name)  # KeyNotFound for an absent key, before changing anything
        transit = self.connection.hvac.secrets.transit
        self.connection.call(f"allowing deletion of {name!r}", transit.update_key_configuration,
                             name=name, deletion_allowed=True, mount_point=self.mount)
        self.connection.call(f"deleting key {name!r}", transit.delete_key, name=name, mount_point=self.mount)
        log.debug("deleted key %s from %s", name, self.mount)

    def close(self) -> None:
        self.connection.close()

    # -- versions ------------------------------------------------------------------------

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> VaultTransitSigner:
        """Add a new version of `name`; a Signer for that version."""
        _check_name(name)
        self.connection.call(f"rotating key {name!r}", self.connection.hvac.secrets.transit.rotate_key,
                             name=name, mount_point=self.mount)
        record = self._read(name)
        log.debug("rotated key %s to v%d", name, record.latest)
        return self._signer(record, record.latest, algorithm)

    def public_keys(self, name: str) -> dict[int, PublicKey]:
        """Every version's public key, in version order."""
        _check_name(name)
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
        _check_name(name)
        if isinstance(signature, str):
            version, signature = _parse_signature(signature)
        record = self._read(name)
        alg = choose_algorithm(record.spec, algorithm)
        versions = [version] if version is not None else list(reversed(record.versions))
        for v in versions:
            if record.public_key(v).is_valid(signature, message, alg):
                return v
        raise InvalidSignature(f"{alg.value} signature does not verify with key {name!r} version(s) {versions}")

    # -- internals ---------------------------------------------------------------------

    def _read(self, name: str) -> _KeyRecord:
        reply = self.connection.call(f"reading key {name!r}", self.connection.hvac.secrets.transit.read_key,
                                     name=name, mount_point=self.mount)
        return _record(name, reply.get("data") or {})

    def _exists(self, name: str) -> bool:
        try:
            self.connection.call(f"reading key {name!r}", self.connection.hvac.secrets.transit.read_key,
                                 name=name, mount_point=self.mount)
        except KeyNotFound:
            return False
        return True

    def _signer(
        self, record: _KeyRecord, version: int, algorithm: SignatureAlgorithm | str | None
    ) -> VaultTransitSigner:
        public_key = record.public_key(version)
        alg = choose_algorithm(record.spec, algorithm)
        uri = self._key_uri(record.name, version, None if alg is record.spec.default_algorithm else alg)
        return VaultTransitSigner(self, record.name, version, uri, alg, public_key)

    def _create_parameters(self, spec: KeySpec) -> list[dict[str, str]]:
        """Create requests to try, in order; AlgorithmNotSupported if Transit has no such key type."""
        if spec in _CLASSICAL_TYPES:
            return [{"type": _CLASSICAL_TYPES[spec]}]
        if spec not in _OPENBAO_MLDSA_TYPES:
            offered = ", ".join(s.value for s in (*_CLASSICAL_TYPES, *_OPENBAO_MLDSA_TYPES))
            raise AlgorithmNotSupported(f"Transit has no {spec.value} keys; it signs with {offered}")
        openbao = {"type": _OPENBAO_MLDSA_TYPES[spec]}
        hashicorp = {"type": _HASHICORP_MLDSA_TYPE, "parameter_set": _HASHICORP_MLDSA_SETS[spec]}
        # Both names are tried (the server's answer decides); the one the server lists goes first.
        offered_types = self._offered_types() or frozenset()
        return [hashicorp, openbao] if _HASHICORP_MLDSA_TYPE in offered_types else [openbao, hashicorp]

    def _key_ref(self, uri_or_name: str) -> tuple[str, int | None, str | None]:
        """(name, pinned version or None, algorithm from the URI or None)."""
        if ":" not in uri_or_name:
            _check_name(uri_or_name)
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
        _check_name(name)
        version = parsed.query.get("version")
        return name, _version(version) if version is not None else None, parsed.query.get("algorithm")

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


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise ConfigError(f"version must be a positive integer, not {text[:20]!r}")
    return int(text)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or len(name) > 256 or not _NAME.fullmatch(name):
        raise ConfigError("Transit key names are letters, digits, '_', '-' and '.', starting and ending with a "
                          "letter, digit or '_'")


def _record(name: str, data: Mapping[str, Any]) -> _KeyRecord:
    """A key record from Transit's read / create answer; AlgorithmNotSupported for non-signing keys."""
    key_type = str(data.get("type", ""))
    spec = _SPEC_BY_TYPE.get(key_type)
    if key_type == _HASHICORP_MLDSA_TYPE:
        parameter_set = str(data.get("parameter_set", ""))
        spec = next((s for s, p in _HASHICORP_MLDSA_SETS.items() if p == parameter_set), None)
    if spec is None or data.get("supports_signing") is False:
        raise AlgorithmNotSupported(f"key {name!r} is a Transit {key_type or 'unknown'} key, "
                                    "which keyplane does not sign with")
    try:
        public_keys = {int(v): str(info.get("public_key") or "") for v, info in data["keys"].items()}
        latest = int(data.get("latest_version") or max(public_keys))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BackendUnavailable(f"unexpected Transit answer for key {name!r}", e) from e
    return _KeyRecord(name=name, type=key_type, spec=spec, latest=latest, public_keys=public_keys)


def _public_key(spec: KeySpec, text: str) -> PublicKey:
    """Transit gives PEM for EC and RSA, base64 raw bytes for Ed25519 and ML-DSA."""
    if text.lstrip().startswith("-----BEGIN"):
        return PublicKey.from_pem(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BackendUnavailable("Transit returned a public key that is neither PEM nor base64", e) from e
    if spec is KeySpec.ED25519:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        try:
            return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as e:
            raise BackendUnavailable("Transit returned a malformed Ed25519 public key", e) from e
    if spec.family is KeyFamily.MLDSA:
        return PublicKey.from_raw_mldsa(spec, raw)
    return PublicKey.from_der(raw)


def _sign_parameters(algorithm: SignatureAlgorithm, version: int) -> dict[str, Any]:
    """The fixed part of a sign request for `algorithm` (the input is added per call)."""
    body: dict[str, Any] = {"key_version": version}
    family = algorithm.family
    if family in (KeyFamily.EC, KeyFamily.RSA):
        body.update(prehashed=True, hash_algorithm=_TRANSIT_HASH[str(algorithm.hash_name)])
    if family is KeyFamily.EC:
        body["marshaling_algorithm"] = "asn1"
    if family is KeyFamily.RSA:
        body["signature_algorithm"] = "pss" if algorithm.is_pss else "pkcs1v15"
        if algorithm.is_pss:
            body["salt_length"] = "hash"  # PS256 = salt of the hash's length; Transit's default is the maximum
    return body


def _signature_from(reply: Mapping[str, Any], signer: VaultTransitSigner) -> bytes:
    warnings = " ".join(str(w) for w in reply.get("warnings") or ())
    if "salt_length" in warnings:
        # An older server ignored salt_length and used the maximum salt: not a PS256 signature.
        raise AlgorithmNotSupported(f"this server ignores salt_length, so it cannot make {signer.algorithm.value} "
                                    "signatures with salt = hash length; use RS256 (pkcs1v15)")
    try:
        text = reply["data"]["signature"]
    except (KeyError, TypeError) as e:
        raise BackendUnavailable(f"Transit answered a sign request for {signer.name!r} without a signature", e) from e
    version, signature = _parse_signature(str(text))
    if version != signer.version:
        raise BackendUnavailable(f"Transit signed with version {version} of {signer.name!r}, not {signer.version}")
    return signature


def _parse_signature(text: str) -> tuple[int, bytes]:
    """``vault:vN:BASE64`` -> (N, signature bytes)."""
    match = _SIGNATURE.match(text)
    if match is None:
        raise InvalidSignature("not a Transit signature (expected vault:vN:BASE64)")
    try:
        return int(match.group(1)), base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidSignature("Transit signature is not valid base64") from e


def _types_from_help(reply: Any) -> frozenset[str] | None:
    """Key-type names from the server's OpenAPI help for ``keys/<name>`` (the ``type`` parameter's text)."""
    try:
        schemas = reply["openapi"]["components"]["schemas"]
    except (KeyError, TypeError):
        return None
    for schema in schemas.values():
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        description = str(properties.get("type", {}).get("description", ""))
        if "ed25519" in description:
            names = set(re.findall(r'"([a-z0-9][a-z0-9\-]*)"', description))
            if "parameter_set" not in properties:
                names.discard(_HASHICORP_MLDSA_TYPE)  # HashiCorp's ML-DSA needs a parameter set
            return frozenset(names)
    return None
