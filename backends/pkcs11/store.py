"""The PKCS#11 KeyStore: one token in one module; creates, imports, opens, lists and deletes keys.

Threads: see `module` (how the module is initialised) and `pool` (one login per token, a
bounded session pool, recovery from a lost token). Every python-pkcs11 failure becomes a
keyplane error in `errors.translate`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from backends.importing import imported_public_key
from backends.translation import translated
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError, KeyCorrupt, KeyExists, KeyNotFound, KeyplaneError
from signers.keys import PublicKey
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import check_create_options, checked_uri
from signers.workers import WorkerPool

from .errors import translate, translator
from .mechanisms import CKM_EC_KEY_PAIR_GEN, KEYGEN, SIGN_MECHANISM, capabilities, mechanism_name, sdk
from .module import load_module
from .objects import (
    check_label,
    describe,
    find_private,
    import_templates,
    keypair_templates,
    object_id,
    public_key,
    read_public,
    spec_of,
)
from .pool import PooledSession, TokenSelector, TokenSessions, acquire_token, release_token
from .signer import Pkcs11Signer

__all__ = ["DEFAULT_MAX_SESSIONS", "MODULE_ENV", "Pkcs11KeyStore"]

T = TypeVar("T")

MODULE_ENV = "KEYPLANE_PKCS11_MODULE"
DEFAULT_MAX_SESSIONS = 16
_MAX_SESSIONS_LIMIT = 4096

_PATH_ATTRIBUTES = frozenset({
    "token", "manufacturer", "model", "serial", "slot-id", "slot-description", "slot-manufacturer",
    "library-manufacturer", "library-description", "library-version", "object", "id", "type",
})
_QUERY_ATTRIBUTES = frozenset({"module-path", "pin-source", "pin-value", "max-sessions", "algorithm"})
_KEY_ATTRIBUTES = ("object", "id", "type")


class Pkcs11KeyStore(BaseKeyStore):
    """One token (chosen by the URI's token attributes) in one PKCS#11 module."""

    signer_class = Pkcs11Signer  # capabilities_of reads the signer protocols (sign-digest) from it

    def __init__(self, module_path: str, selector: TokenSelector, pin: Secret | None, *,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, uri: KeyURI) -> None:
        self.module_path = module_path
        self.selector = selector
        self.max_sessions = max_sessions
        self._pin = pin
        self._uri = uri  # the store URI, secrets already removed
        self.uri = uri.format()
        self._tokens: TokenSessions | None = None
        self._login_epoch = -1  # the pool's login_epoch when this store's PIN was last accepted
        self._connect_lock = threading.Lock()
        self._capabilities: Capabilities | None = None
        # sign_async / sign_many threads: as many as sessions, so no thread waits for a session
        # while the loop's default executor (shared with the rest of the process) stays untouched.
        self.workers = WorkerPool("pkcs11", max_sessions)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11KeyStore:
        """A store from a store URI or a key URI (its object/id are ignored here). Connects lazily.

        Raises ConfigError for another scheme, an unknown attribute, a bad number
        (max-sessions, slot-id: naming the attribute) or no module path.
        """
        parsed, options = checked_uri(uri, schemes={"pkcs11"}, query=_QUERY_ATTRIBUTES,
                                      path_attributes=_PATH_ATTRIBUTES)
        module_path = options.text("module-path") or os.environ.get(MODULE_ENV)
        if not module_path:
            raise ConfigError(f"pkcs11: URI needs ?module-path=/path/to/module.so (or set {MODULE_ENV})")
        if "pin-value" in parsed.query:
            pin: Secret | None = Secret(parsed.query["pin-value"])
        elif "pin-source" in parsed.query:
            pin = resolve_secret(parsed.query["pin-source"], "pin-source")
        else:
            pin = None
        max_sessions = options.integer("max-sessions", DEFAULT_MAX_SESSIONS, minimum=1, maximum=_MAX_SESSIONS_LIMIT)
        attrs = parsed.attributes
        selector = TokenSelector(
            label=attrs.get("token"),
            serial=attrs.get("serial"),
            manufacturer=attrs.get("manufacturer"),
            model=attrs.get("model"),
            slot_id=options.integer("slot-id", 0, minimum=0) if "slot-id" in attrs else None,
            slot_description=attrs.get("slot-description"),
            slot_manufacturer=attrs.get("slot-manufacturer"),
        )
        store_attrs = {k: v for k, v in attrs.items() if k not in _KEY_ATTRIBUTES}
        query = {k: v for k, v in parsed.query.items() if k not in ("pin-value", "algorithm")}
        query["module-path"] = module_path  # a child process needs no environment to find it
        return cls(module_path, selector, pin, max_sessions=max_sessions,
                   uri=KeyURI("pkcs11", attributes=store_attrs, query=query))

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        """What this token offers, from its mechanism list (queried once; ML-DSA only if listed)."""
        if self._capabilities is None:
            try:
                tokens = self._connect()
            except KeyplaneError:
                return capabilities(None)  # unreachable: what the back end could do; not cached
            self._capabilities = capabilities(tokens.mechanisms, self._probe_curve(tokens, KeySpec.SECP256K1))
        return self._capabilities

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Pkcs11Signer:
        """Generate a key pair on the token: private half sensitive and never extractable.

        Options: ``algorithm``; ``id`` (bytes or hex text; default 16 random bytes).
        Raises KeyExists (the label is taken), AlgorithmNotSupported (the token lacks the
        mechanisms), ConfigError (a bad name or option) and the token's errors.
        """
        spec = KeySpec.parse(spec)
        check_create_options(opts, {"algorithm", "id"}, "pkcs11")
        algorithm = choose_algorithm(spec, opts.get("algorithm"))
        new_id = object_id(opts.get("id"))
        check_label(name)
        tokens = self._connect()
        self._check_supported(tokens, spec, algorithm)
        gen = KEYGEN[spec]

        def create(pooled: PooledSession) -> PublicKey:
            pkcs11 = sdk()
            session = pooled.session
            self._check_free(pkcs11, session, name, tokens)
            public_template, private_template = keypair_templates(pkcs11, gen, name, new_id)
            public, _private = session.generate_keypair(
                pkcs11.KeyType(gen.key_type),
                gen.bits,
                store=True,
                mechanism=pkcs11.Mechanism(gen.mechanism),
                capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
                public_template=public_template,
                private_template=private_template,
            )
            return public_key(pkcs11, public)

        try:
            created = self._run(tokens, create, f"creating {spec.value} key {name!r}", spec=spec)
        finally:
            tokens.objects_changed()
        return Pkcs11Signer(self, self._key_uri(name, new_id), algorithm, created, name, new_id)

    def import_key(self, name: str, private_key: Any, algorithm: SignatureAlgorithm | str | None = None,
                   **opts: Any) -> Pkcs11Signer:
        """Store an existing private key on the token with C_CreateObject (ImportingKeyStore).

        `private_key` is a `cryptography` private key (EC P-256 / P-384 / secp256k1, Ed25519,
        RSA 2048-4096). The private object is made CKA_SENSITIVE and not CKA_EXTRACTABLE, as a
        generated one is, so its secret parts cannot be read back afterwards. Option: ``id``.
        Raises KeyExists, AlgorithmNotSupported (a kind of key the token or this import does
        not take, e.g. ML-DSA), ConfigError (not a private key, a bad name) and the token's errors.
        """
        check_create_options(opts, {"id"}, "pkcs11")
        check_label(name)
        expected = imported_public_key(private_key, "a PKCS#11 token")
        spec = expected.spec
        chosen = choose_algorithm(spec, algorithm)
        new_id = object_id(opts.get("id"))
        tokens = self._connect()
        self._check_supported(tokens, spec, chosen)

        def create(pooled: PooledSession) -> PublicKey:
            pkcs11 = sdk()
            session = pooled.session
            self._check_free(pkcs11, session, name, tokens)
            public_template, private_template = import_templates(pkcs11, private_key, spec, name, new_id)
            private = session.create_object(private_template)
            try:
                session.create_object(public_template)
            except BaseException:
                private.destroy()  # no half-imported key left behind
                raise
            return read_public(pkcs11, session, private, new_id, tokens)

        try:
            stored = self._run(tokens, create, f"importing {spec.value} key {name!r}", spec=spec)
        finally:
            tokens.objects_changed()
        if stored != expected:  # pragma: no cover - a token that changed the key material on import
            self.delete_key(name)
            raise KeyCorrupt(f"{tokens.name} stored another public key than the one imported")
        return Pkcs11Signer(self, self._key_uri(name, new_id), chosen, stored, name, new_id)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Pkcs11Signer:
        """Open a key by label or key URI; KeyNotFound if absent, ConfigError if several match."""
        label, wanted_id, requested = self._key_ref(uri_or_name)
        algorithm = algorithm if algorithm is not None else requested
        tokens = self._connect()

        def load(pooled: PooledSession) -> tuple[PublicKey, str | None, bytes]:
            pkcs11 = sdk()
            private = find_private(pkcs11, pooled, label, wanted_id, tokens)
            found_id = bytes(private[pkcs11.Attribute.ID])
            found_label = private[pkcs11.Attribute.LABEL] or None
            return read_public(pkcs11, pooled.session, private, found_id, tokens), found_label, found_id

        found_key, found_label, found_id = self._run(tokens, load, f"opening {describe(label, wanted_id)}")
        chosen = choose_algorithm(found_key.spec, algorithm)
        self._check_supported(tokens, found_key.spec, chosen)
        return Pkcs11Signer(self, self._key_uri(found_label, found_id or None), chosen, found_key,
                            found_label, found_id or None)

    def list_keys(self) -> Iterator[KeyInfo]:
        """Every private key on the token, by label (or id), sorted; the token's errors translated."""
        tokens = self._connect()

        def scan(pooled: PooledSession) -> list[KeyInfo]:
            pkcs11 = sdk()
            A = pkcs11.Attribute
            found = []
            for private in pooled.session.get_objects({A.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}):
                label = private[A.LABEL] or None
                key_id = bytes(private[A.ID]) or None
                found.append(KeyInfo(
                    name=label or (key_id or b"").hex(),
                    uri=self._key_uri(label, key_id),
                    spec=spec_of(pkcs11, private),
                    extra={"id": key_id.hex() if key_id else ""},
                ))
            return found

        yield from sorted(self._run(tokens, scan, "listing keys"), key=lambda info: info.name)

    def delete_key(self, name: str) -> None:
        """Destroy the private and public objects of a key (by label, or by the object/id of a key URI).

        Raises KeyNotFound if nothing matches.
        """
        label, wanted_id, _ = self._key_ref(name)
        tokens = self._connect()

        def destroy(pooled: PooledSession) -> None:
            pkcs11 = sdk()
            A = pkcs11.Attribute
            template: dict[Any, Any] = {}
            if label is not None:
                template[A.LABEL] = label
            if wanted_id is not None:
                template[A.ID] = wanted_id
            found = [o for o in pooled.session.get_objects(template)
                     if o[A.CLASS] in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY)]
            if not found:
                raise KeyNotFound(f"no key {describe(label, wanted_id)} on {tokens.name}")
            for obj in found:
                obj.destroy()

        try:
            self._run(tokens, destroy, f"deleting {describe(label, wanted_id)}")
        finally:
            tokens.objects_changed()

    def close(self) -> None:
        """Release this store's share of the token (the last store out logs out); reconnects if used again."""
        tokens, self._tokens, self._login_epoch = self._tokens, None, -1
        self.workers.shutdown()
        if tokens is not None:
            release_token(tokens)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: modules may be half torn down
            self.close()

    # -- internals ---------------------------------------------------------------------

    def _connect(self) -> TokenSessions:
        """The shared session pool for this store's token, logged in (first use connects)."""
        tokens = self._tokens
        if tokens is None:
            with self._connect_lock:
                tokens = self._tokens
                if tokens is None:
                    with translated(translator(None), "connecting"):
                        module = load_module(self.module_path)
                        tokens = acquire_token(module, self.selector, self.max_sessions)
                    self._tokens = tokens
        if tokens.login_epoch != self._login_epoch:  # once per login, not per signature (a lock and an HMAC)
            with translated(translator(tokens), "logging in"):
                tokens.login(self._pin)
            self._login_epoch = tokens.login_epoch
        return tokens

    def _run(self, tokens: TokenSessions, op: Callable[[PooledSession], T], what: str,
             spec: KeySpec | SignatureAlgorithm | None = None) -> T:
        try:
            return tokens.run(op, recover_with=self._pin)
        except Exception as e:
            error = translate(e, what, tokens, spec)
            if error is None:
                raise  # keyplane's own errors, and programming errors, stay what they are
            raise error from e

    @staticmethod
    def _check_free(pkcs11: Any, session: Any, name: str, tokens: TokenSessions) -> None:
        if any(True for _ in session.get_objects({pkcs11.Attribute.LABEL: name})):
            raise KeyExists(f"key {name!r} already exists on {tokens.name}")

    def _check_supported(self, tokens: TokenSessions, spec: KeySpec, algorithm: SignatureAlgorithm) -> None:
        gen = KEYGEN[spec]
        mechanism = SIGN_MECHANISM[spec.family].get(algorithm.is_pss)
        missing = [m for m in (gen.mechanism, mechanism) if m is None or m not in tokens.mechanisms]
        if missing:
            names = ", ".join(mechanism_name(m) for m in missing)
            offer = spec.value if algorithm is spec.default_algorithm else f"{spec.value} with {algorithm.value}"
            raise AlgorithmNotSupported(f"{tokens.name} does not offer {offer}: its mechanism list has no {names}")

    def _probe_curve(self, tokens: TokenSessions, spec: KeySpec) -> bool:
        """Whether the token generates keys on `spec`'s curve: mechanism lists do not name curves."""
        if CKM_EC_KEY_PAIR_GEN not in tokens.mechanisms or self._pin is None:
            return False
        gen = KEYGEN[spec]

        def probe(pooled: PooledSession) -> None:
            pkcs11 = sdk()
            public, private = pooled.session.generate_keypair(
                pkcs11.KeyType.EC, store=False, public_template={pkcs11.Attribute.EC_PARAMS: gen.ec_params})
            private.destroy()
            public.destroy()

        try:
            self._run(tokens, probe, f"probing {spec.value}")
        except KeyplaneError:
            return False
        return True

    def _key_ref(self, uri_or_name: str) -> tuple[str | None, bytes | None, str | None]:
        """(label, id, algorithm) from a key name (its label) or a key URI on this store's token."""
        if ":" not in uri_or_name:
            check_label(uri_or_name)
            return uri_or_name, None, None
        parsed = parse_uri(uri_or_name)
        if parsed.scheme != "pkcs11":
            raise ConfigError(f"not a pkcs11: URI (scheme {parsed.scheme!r})")
        for name, value in parsed.attributes.items():
            mine = self._uri.attributes.get(name)
            if name not in _KEY_ATTRIBUTES and mine is not None and mine != value:
                raise ConfigError(f"{parsed.public().format()} names another token than {self.uri}")
        if parsed.attributes.get("type", "private") not in ("private", "public"):
            raise ConfigError("pkcs11: a signing key URI has type=private (or no type)")
        label = parsed.attributes.get("object")
        raw_id = parsed.attributes.get("id")
        wanted_id = raw_id.encode("utf-8", "surrogateescape") if raw_id is not None else None
        if label is None and wanted_id is None:
            raise ConfigError(f"{parsed.public().format()} names no key: add object=<label> and/or id=<bytes>")
        return label, wanted_id, parsed.query.get("algorithm")

    def _key_uri(self, label: str | None, key_id: bytes | None) -> str:
        attrs = dict(self._uri.attributes)
        if "token" not in attrs and self._tokens is not None:
            attrs["token"] = self._tokens.label
        if label is not None:
            attrs["object"] = label
        text = KeyURI("pkcs11", attributes=attrs, query=dict(self._uri.query)).format()
        if key_id is None:
            return text
        path, mark, query = text.partition("?")
        # RFC 7512 recommends percent-encoding every byte of an id; parse_uri decodes it back.
        return f"{path};id={''.join(f'%{b:02X}' for b in key_id)}{mark}{query}"
