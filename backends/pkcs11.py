"""The PKCS#11 back end: keys in an HSM or a software token (SoftHSM2), through python-pkcs11.

URIs follow RFC 7512::

    pkcs11:token=agents?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PKCS11_PIN   (a store)
    pkcs11:token=agents;object=ca;id=%01%02?module-path=...&pin-source=env:PKCS11_PIN           (a key)

Token selection: ``token`` (label), ``serial``, ``manufacturer``, ``model``, ``slot-id``,
``slot-description``, ``slot-manufacturer``. Key selection: ``object`` (CKA_LABEL) and/or
``id`` (CKA_ID, percent-encoded bytes). Query: ``module-path`` (default
``$KEYPLANE_PKCS11_MODULE``), ``pin-source=env:NAME|file:PATH`` (``pin-value`` is accepted
as RFC 7512 allows, and never printed), ``max-sessions`` (default 16), ``algorithm``.

Signing hashes on the host wherever the algorithm allows (ECDSA, RSA), so a message of
any length costs one short call into the token; Ed25519 and ML-DSA sign the message
itself, as their definitions require. ECDSA comes back as r||s and leaves as DER.

A signature is the hot path (docs/pkcs11.md has the measurements against raw
python-pkcs11): what a signer needs (hash function, DigestInfo prefix, Mechanism and
parameter, key cache key) is worked out once when it is opened (`_SignPlan`), the pool
lends an idle session without a lock, errors are translated by a try/except that costs
nothing unless something is raised, and r||s becomes DER without an int round trip.

Threads: see pkcs11_module (how the module is initialised) and pkcs11_pool (one login
per token, a bounded session pool, recovery from a lost token).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyCorrupt,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.keys import PublicKey
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri

from .pkcs11_module import load_module
from .pkcs11_pool import PooledSession, TokenSelector, TokenSessions, acquire_token, loss_kind, release_token

__all__ = ["Pkcs11KeyStore", "Pkcs11Signer"]

T = TypeVar("T")

MODULE_ENV = "KEYPLANE_PKCS11_MODULE"
DEFAULT_MAX_SESSIONS = 16

# -- mapping tables (PKCS#11 numbers are the specification's, so the tables read as the spec) --

CKO_PUBLIC_KEY, CKO_PRIVATE_KEY = 2, 3
CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_ML_DSA = 0x0, 0x3, 0x40, 0x4A
CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS = 0x0, 0x1, 0xD
CKM_EC_KEY_PAIR_GEN, CKM_ECDSA = 0x1040, 0x1041
CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA = 0x1055, 0x1057
CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA = 0x1C, 0x1D  # PKCS#11 3.2
CKM_SHA256, CKM_SHA384, CKM_SHA512 = 0x250, 0x260, 0x270
CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA512 = 0x2, 0x3, 0x4


@dataclass(frozen=True)
class _KeyGen:
    """How to generate a key of one spec: key type, mechanism, and the curve / size / parameter set."""

    key_type: int
    mechanism: int
    ec_params: bytes | None = None  # DER OID of the named curve (CKA_EC_PARAMS)
    bits: int | None = None
    parameter_set: int | None = None  # CKA_PARAMETER_SET for ML-DSA


_KEYGEN: dict[KeySpec, _KeyGen] = {
    KeySpec.ED25519: _KeyGen(CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, ec_params=bytes.fromhex("06032b6570")),
    KeySpec.P256: _KeyGen(CKK_EC, CKM_EC_KEY_PAIR_GEN, ec_params=bytes.fromhex("06082a8648ce3d030107")),
    KeySpec.P384: _KeyGen(CKK_EC, CKM_EC_KEY_PAIR_GEN, ec_params=bytes.fromhex("06052b81040022")),
    KeySpec.SECP256K1: _KeyGen(CKK_EC, CKM_EC_KEY_PAIR_GEN, ec_params=bytes.fromhex("06052b8104000a")),
    KeySpec.RSA2048: _KeyGen(CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits=2048),
    KeySpec.RSA3072: _KeyGen(CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits=3072),
    KeySpec.RSA4096: _KeyGen(CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits=4096),
    KeySpec.ML_DSA_44: _KeyGen(CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, parameter_set=1),
    KeySpec.ML_DSA_65: _KeyGen(CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, parameter_set=2),
    KeySpec.ML_DSA_87: _KeyGen(CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, parameter_set=3),
}

# CKA_EC_PARAMS -> spec; Ed25519 also as the PrintableString "edwards25519" some tokens store.
_EC_PARAMS: dict[bytes, KeySpec] = {g.ec_params: s for s, g in _KEYGEN.items() if g.ec_params is not None}
_EC_PARAMS[b"\x13\x0cedwards25519"] = KeySpec.ED25519

_SIGN_MECHANISM: dict[KeyFamily, dict[bool, int]] = {  # family -> {is_pss: mechanism}
    KeyFamily.EDDSA: {False: CKM_EDDSA},
    KeyFamily.EC: {False: CKM_ECDSA},
    KeyFamily.RSA: {True: CKM_RSA_PKCS_PSS, False: CKM_RSA_PKCS},
    KeyFamily.MLDSA: {False: CKM_ML_DSA},
}

# RSA-PSS over a host digest: CK_RSA_PKCS_PSS_PARAMS (hashAlg, mgf, sLen = hash length).
_PSS_PARAMS: dict[str, tuple[int, int, int]] = {
    "sha256": (CKM_SHA256, CKG_MGF1_SHA256, 32),
    "sha384": (CKM_SHA384, CKG_MGF1_SHA384, 48),
    "sha512": (CKM_SHA512, CKG_MGF1_SHA512, 64),
}

_HASHLIB = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}

# PKCS#1 v1.5 over a host digest: CKM_RSA_PKCS pads, we supply the DigestInfo (RFC 8017 section 9.2).
_DIGEST_INFO: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

# python-pkcs11 exception (by class name) -> what it means to a caller.
_ERRORS: dict[str, type[KeyplaneError]] = {
    "PinIncorrect": AuthenticationFailed,
    "PinInvalid": AuthenticationFailed,
    "PinLenRange": AuthenticationFailed,
    "PinExpired": AuthenticationFailed,
    "PinLocked": AuthenticationFailed,
    "UserPinNotInitialized": AuthenticationFailed,
    "NoSuchKey": KeyNotFound,
    "MechanismInvalid": AlgorithmNotSupported,
    "MechanismParamInvalid": AlgorithmNotSupported,
    "KeySizeRange": AlgorithmNotSupported,
    "DomainParamsInvalid": AlgorithmNotSupported,
    "KeyTypeInconsistent": AlgorithmNotSupported,
    "FunctionNotSupported": AlgorithmNotSupported,
    "TokenWriteProtected": PermissionDenied,
    "SessionReadOnly": PermissionDenied,
    "FunctionRejected": PermissionDenied,
    "AnotherUserAlreadyLoggedIn": PermissionDenied,  # the SO is logged in to this token
    "NoSuchToken": BackendUnavailable,
    "MultipleTokensReturned": ConfigError,
}

_PATH_ATTRIBUTES = frozenset({
    "token", "manufacturer", "model", "serial", "slot-id", "slot-description", "slot-manufacturer",
    "library-manufacturer", "library-description", "library-version", "object", "id", "type",
})
_QUERY_ATTRIBUTES = frozenset({"module-path", "pin-source", "pin-value", "max-sessions", "algorithm"})
_KEY_ATTRIBUTES = ("object", "id", "type")


class Pkcs11Signer(BaseSigner):
    """A private key on a token; signs through its store's session pool."""

    def __init__(self, store: Pkcs11KeyStore, uri: str, algorithm: SignatureAlgorithm, public_key: PublicKey,
                 label: str | None, object_id: bytes | None) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the pool alive as long as the signer
        self._label = label
        self._object_id = object_id
        self._plan = _SignPlan(algorithm, label, object_id)  # everything a signature needs, worked out once

    def sign(self, message: bytes) -> bytes:
        # The hot path, kept flat: no closures or context managers per call, nothing looked up
        # that the plan already holds, and errors translated by a try that costs nothing until
        # something is raised.
        plan, store = self._plan, self._store
        if type(message) is not bytes:
            message = bytes(message)  # a bytearray or memoryview is copied: it could change meanwhile
        digest = plan.hash
        data = message if digest is None else plan.prefix + digest(message).digest()
        tokens = store._tokens
        if tokens is None or tokens.login_epoch != store._login_epoch:
            tokens = store._connect()
        try:
            raw = tokens.run(plan.sign, data, tokens, recover_with=store._pin)
        except Exception as e:
            _translate(e, plan.describe, tokens, plan.algorithm)
            raise
        return _ecdsa_raw_to_der(raw) if plan.ec else raw


class Pkcs11KeyStore(BaseKeyStore):
    """One token (chosen by the URI's token attributes) in one PKCS#11 module."""

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

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11KeyStore:
        """A store from a store URI or a key URI (its object/id are ignored here). Connects lazily."""
        parsed = parse_uri(uri)
        if parsed.scheme != "pkcs11":
            raise ConfigError(f"not a pkcs11: URI (scheme {parsed.scheme!r})")
        unknown = (set(parsed.attributes) - _PATH_ATTRIBUTES) | (set(parsed.query) - _QUERY_ATTRIBUTES)
        if unknown:
            raise ConfigError(f"pkcs11: URI has unknown attribute(s) {sorted(unknown)}")
        module_path = parsed.query.get("module-path") or os.environ.get(MODULE_ENV)
        if not module_path:
            raise ConfigError(f"pkcs11: URI needs ?module-path=/path/to/module.so (or set {MODULE_ENV})")
        if "pin-value" in parsed.query:
            pin: Secret | None = Secret(parsed.query["pin-value"])
        elif "pin-source" in parsed.query:
            pin = resolve_secret(parsed.query["pin-source"], "pin-source")
        else:
            pin = None
        max_sessions = _positive_int(parsed.query.get("max-sessions", str(DEFAULT_MAX_SESSIONS)), "max-sessions")
        attrs = parsed.attributes
        selector = TokenSelector(
            label=attrs.get("token"),
            serial=attrs.get("serial"),
            manufacturer=attrs.get("manufacturer"),
            model=attrs.get("model"),
            slot_id=_positive_int(attrs["slot-id"], "slot-id", minimum=0) if "slot-id" in attrs else None,
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
                return _capabilities(None)  # unreachable: what the back end could do; not cached
            self._capabilities = _capabilities(tokens.mechanisms, self._probe_curve(tokens, KeySpec.SECP256K1))
        return self._capabilities

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Pkcs11Signer:
        """Generate a key pair on the token: private half sensitive and never extractable.

        Options: ``algorithm``; ``id`` (bytes or hex text; default 16 random bytes).
        """
        spec = KeySpec.parse(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        object_id = _object_id(opts.pop("id", None))
        if opts:
            raise ConfigError(f"pkcs11 back end: unknown create option(s) {sorted(opts)}")
        _check_label(name)
        tokens = self._connect()
        self._check_supported(tokens, spec, algorithm)
        gen = _KEYGEN[spec]

        def create(pooled: PooledSession) -> PublicKey:
            pkcs11 = _sdk()
            session = pooled.session
            if any(True for _ in session.get_objects({pkcs11.Attribute.LABEL: name})):
                raise KeyExists(f"key {name!r} already exists on {tokens.name}")
            public_template, private_template = _templates(pkcs11, gen, name, object_id)
            public, _private = session.generate_keypair(
                pkcs11.KeyType(gen.key_type),
                gen.bits,
                store=True,
                mechanism=pkcs11.Mechanism(gen.mechanism),
                capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
                public_template=public_template,
                private_template=private_template,
            )
            return _public_key(pkcs11, public)

        public_key = self._run(tokens, create, f"creating {spec.value} key {name!r}", spec=spec)
        tokens.objects_changed()
        return Pkcs11Signer(self, self._key_uri(name, object_id), algorithm, public_key, name, object_id)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Pkcs11Signer:
        label, object_id, requested = self._key_ref(uri_or_name)
        algorithm = algorithm if algorithm is not None else requested
        tokens = self._connect()

        def load(pooled: PooledSession) -> tuple[PublicKey, str | None, bytes]:
            pkcs11 = _sdk()
            private = _find_private(pkcs11, pooled, label, object_id, tokens)
            found_id = bytes(private[pkcs11.Attribute.ID])
            found_label = private[pkcs11.Attribute.LABEL] or None
            return _read_public(pkcs11, pooled.session, private, found_id, tokens), found_label, found_id

        public_key, found_label, found_id = self._run(tokens, load, f"opening {_describe(label, object_id)}")
        chosen = choose_algorithm(public_key.spec, algorithm)
        self._check_supported(tokens, public_key.spec, chosen)
        return Pkcs11Signer(self, self._key_uri(found_label, found_id or None), chosen, public_key,
                            found_label, found_id or None)

    def list_keys(self) -> Iterator[KeyInfo]:
        tokens = self._connect()

        def scan(pooled: PooledSession) -> list[KeyInfo]:
            pkcs11 = _sdk()
            A = pkcs11.Attribute
            found = []
            for private in pooled.session.get_objects({A.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}):
                label = private[A.LABEL] or None
                object_id = bytes(private[A.ID]) or None
                found.append(KeyInfo(
                    name=label or (object_id or b"").hex(),
                    uri=self._key_uri(label, object_id),
                    spec=_spec_of(pkcs11, private),
                    extra={"id": object_id.hex() if object_id else ""},
                ))
            return found

        yield from sorted(self._run(tokens, scan, "listing keys"), key=lambda info: info.name)

    def delete_key(self, name: str) -> None:
        """Destroy the private and public objects of a key (by label, or by the object/id of a key URI)."""
        label, object_id, _ = self._key_ref(name)
        tokens = self._connect()

        def destroy(pooled: PooledSession) -> None:
            pkcs11 = _sdk()
            A = pkcs11.Attribute
            template: dict[Any, Any] = {}
            if label is not None:
                template[A.LABEL] = label
            if object_id is not None:
                template[A.ID] = object_id
            found = [o for o in pooled.session.get_objects(template)
                     if o[A.CLASS] in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY)]
            if not found:
                raise KeyNotFound(f"no key {_describe(label, object_id)} on {tokens.name}")
            for obj in found:
                obj.destroy()

        try:
            self._run(tokens, destroy, f"deleting {_describe(label, object_id)}")
        finally:
            tokens.objects_changed()

    def close(self) -> None:
        """Release this store's share of the token (the last store out logs out); reconnects if used again."""
        tokens, self._tokens, self._login_epoch = self._tokens, None, -1
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
                    with _translated("connecting", None):
                        module = load_module(self.module_path)
                        tokens = acquire_token(module, self.selector, self.max_sessions)
                    self._tokens = tokens
        if tokens.login_epoch != self._login_epoch:  # once per login, not per signature (a lock and an HMAC)
            with _translated("logging in", tokens):
                tokens.login(self._pin)
            self._login_epoch = tokens.login_epoch
        return tokens

    def _run(self, tokens: TokenSessions, op: Callable[[PooledSession], T], what: str | Callable[[], str],
             spec: KeySpec | SignatureAlgorithm | None = None) -> T:
        try:
            return tokens.run(op, recover_with=self._pin)
        except Exception as e:
            _translate(e, what, tokens, spec)
            raise

    def _check_supported(self, tokens: TokenSessions, spec: KeySpec, algorithm: SignatureAlgorithm) -> None:
        gen = _KEYGEN[spec]
        mechanism = _SIGN_MECHANISM[spec.family].get(algorithm.is_pss)
        missing = [m for m in (gen.mechanism, mechanism) if m is None or m not in tokens.mechanisms]
        if missing:
            names = ", ".join(_mechanism_name(m) for m in missing)
            offer = spec.value if algorithm is spec.default_algorithm else f"{spec.value} with {algorithm.value}"
            raise AlgorithmNotSupported(f"{tokens.name} does not offer {offer}: its mechanism list has no {names}")

    def _probe_curve(self, tokens: TokenSessions, spec: KeySpec) -> bool:
        """Whether the token generates keys on `spec`'s curve: mechanism lists do not name curves."""
        if CKM_EC_KEY_PAIR_GEN not in tokens.mechanisms or self._pin is None:
            return False
        gen = _KEYGEN[spec]

        def probe(pooled: PooledSession) -> None:
            pkcs11 = _sdk()
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
            _check_label(uri_or_name)
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
        object_id = raw_id.encode("utf-8", "surrogateescape") if raw_id is not None else None
        if label is None and object_id is None:
            raise ConfigError(f"{parsed.public().format()} names no key: add object=<label> and/or id=<bytes>")
        return label, object_id, parsed.query.get("algorithm")

    def _key_uri(self, label: str | None, object_id: bytes | None) -> str:
        attrs = dict(self._uri.attributes)
        if "token" not in attrs and self._tokens is not None:
            attrs["token"] = self._tokens.label
        if label is not None:
            attrs["object"] = label
        text = KeyURI("pkcs11", attributes=attrs, query=dict(self._uri.query)).format()
        if object_id is None:
            return text
        path, mark, query = text.partition("?")
        # RFC 7512 recommends percent-encoding every byte of an id; parse_uri decodes it back.
        return f"{path};id={''.join(f'%{b:02X}' for b in object_id)}{mark}{query}"


# -- helpers that talk to python-pkcs11 ------------------------------------------------------


def _sdk() -> Any:
    import pkcs11  # already imported by load_module (through signers.sdk.require)

    return pkcs11


def _templates(pkcs11: Any, gen: _KeyGen, label: str, object_id: bytes) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Attribute templates: a token key pair whose private half is sensitive and not extractable."""
    A = pkcs11.Attribute
    public: dict[Any, Any] = {A.TOKEN: True, A.PRIVATE: False, A.VERIFY: True, A.ENCRYPT: False, A.WRAP: False,
                              A.LABEL: label, A.ID: object_id}
    private: dict[Any, Any] = {A.TOKEN: True, A.PRIVATE: True, A.SENSITIVE: True, A.EXTRACTABLE: False,
                               A.SIGN: True, A.DECRYPT: False, A.UNWRAP: False, A.DERIVE: False,
                               A.LABEL: label, A.ID: object_id}
    if gen.ec_params is not None:
        public[A.EC_PARAMS] = gen.ec_params
    if gen.parameter_set is not None:
        public[A.PARAMETER_SET] = gen.parameter_set
    return public, private


def _find_private(pkcs11: Any, pooled: PooledSession, label: str | None, object_id: bytes | None,
                  tokens: TokenSessions) -> Any:
    A = pkcs11.Attribute
    template: dict[Any, Any] = {A.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}
    if label is not None:
        template[A.LABEL] = label
    if object_id is not None:
        template[A.ID] = object_id
    found = list(pooled.session.get_objects(template))
    if len(found) == 1:
        return found[0]
    what = _describe(label, object_id)
    if len(found) > 1:
        raise ConfigError(f"{len(found)} private keys match {what} on {tokens.name}; name it by id= as well")
    tokens.check_present(pooled)  # an empty search on a gone token or without a login is not a missing key
    template[A.CLASS] = pkcs11.ObjectClass.PUBLIC_KEY
    if any(True for _ in pooled.session.get_objects(template)):
        raise KeyNotFound(f"key {what} on {tokens.name} has a public half but no private key")
    raise KeyNotFound(f"no key {what} on {tokens.name}")


def _read_public(pkcs11: Any, session: Any, private: Any, object_id: bytes, tokens: TokenSessions) -> PublicKey:
    """The key pair's public key: from its public object, or (RSA) from the private object's public parts."""
    A = pkcs11.Attribute
    # Pair by CKA_ID (PKCS#11's convention); a key made without one is paired by its label.
    pairing = {A.ID: object_id} if object_id else {A.LABEL: private[A.LABEL]}
    candidates = list(session.get_objects({A.CLASS: pkcs11.ObjectClass.PUBLIC_KEY, **pairing}))
    if len(candidates) == 1:
        return _public_key(pkcs11, candidates[0])
    if private[A.KEY_TYPE] == pkcs11.KeyType.RSA:
        return _public_key(pkcs11, private)
    raise KeyCorrupt(f"the private key {_describe(private[A.LABEL], object_id)} on {tokens.name} has no public key "
                     "object with its id, and its public key cannot be derived")


def _public_key(pkcs11: Any, obj: Any) -> PublicKey:
    """A PublicKey from a public-key object's attributes (or an RSA private key's modulus and exponent)."""
    try:
        return _decode_public_key(pkcs11, obj)
    except ValueError as e:  # cryptography refused the numbers: the object is damaged
        raise KeyCorrupt(f"the token holds a public key keyplane cannot decode: {e}") from e


def _decode_public_key(pkcs11: Any, obj: Any) -> PublicKey:
    A = pkcs11.Attribute
    key_type = int(obj[A.KEY_TYPE])
    if key_type == CKK_RSA:
        n = int.from_bytes(obj[A.MODULUS], "big")
        e = int.from_bytes(obj[A.PUBLIC_EXPONENT], "big")
        return PublicKey(rsa.RSAPublicNumbers(e, n).public_key())
    if key_type == CKK_ML_DSA:
        spec = {g.parameter_set: s for s, g in _KEYGEN.items() if g.parameter_set}.get(int(obj[A.PARAMETER_SET]))
        if spec is None:
            raise AlgorithmNotSupported("ML-DSA key with an unknown parameter set")
        return PublicKey.from_raw_mldsa(spec, bytes(obj[A.VALUE]))
    spec = _EC_PARAMS.get(bytes(obj[A.EC_PARAMS]))
    if spec is None:
        raise AlgorithmNotSupported(f"EC key on a curve keyplane does not support (params {bytes(obj[A.EC_PARAMS]).hex()})")
    point = _ec_point(bytes(obj[A.EC_POINT]), 32 if spec is KeySpec.ED25519 else 1 + 2 * _CURVE_BYTES[spec])
    if spec is KeySpec.ED25519:
        return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(point))
    return PublicKey(ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[spec], point))


_CURVE_BYTES = {KeySpec.P256: 32, KeySpec.P384: 48, KeySpec.SECP256K1: 32}
_CURVES: dict[KeySpec, ec.EllipticCurve] = {
    KeySpec.P256: ec.SECP256R1(), KeySpec.P384: ec.SECP384R1(), KeySpec.SECP256K1: ec.SECP256K1(),
}


def _ec_point(value: bytes, size: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING by the spec, a bare point on some tokens: accept both."""
    if len(value) == size:
        return value
    if len(value) == size + 2 and value[0] == 0x04 and value[1] == size:
        return value[2:]
    if len(value) == size + 3 and value[0] == 0x04 and value[1] == 0x81 and value[2] == size:
        return value[3:]
    raise KeyCorrupt(f"CKA_EC_POINT of {len(value)} bytes is not a point of {size} bytes")


def _spec_of(pkcs11: Any, private: Any) -> KeySpec | None:
    """The spec of a private key object from attributes every token shows, or None if not ours."""
    A = pkcs11.Attribute
    try:
        key_type = int(private[A.KEY_TYPE])
        if key_type == CKK_RSA:
            return KeySpec.parse(f"RSA-{len(bytes(private[A.MODULUS])) * 8}")
        if key_type in (CKK_EC, CKK_EC_EDWARDS):
            return _EC_PARAMS.get(bytes(private[A.EC_PARAMS]))
        if key_type == CKK_ML_DSA:
            return {g.parameter_set: s for s, g in _KEYGEN.items() if g.parameter_set}.get(int(private[A.PARAMETER_SET]))
    except (KeyplaneError, pkcs11.PKCS11Error, KeyError, ValueError):
        return None
    return None


class _SignPlan:
    """How one signer signs, worked out when it is opened rather than on every signature.

    The host-side digest (hashlib: a quarter of cryptography's cost here) and any DigestInfo
    prefix, the python-pkcs11 Mechanism and its parameter, and whether r||s becomes DER.
    """

    __slots__ = ("algorithm", "cache_key", "ec", "hash", "label", "mechanism", "object_id", "param", "prefix")

    def __init__(self, algorithm: SignatureAlgorithm, label: str | None, object_id: bytes | None) -> None:
        family = algorithm.family
        hash_name = algorithm.hash_name
        self.algorithm = algorithm
        self.label, self.object_id, self.cache_key = label, object_id, (label, object_id)
        self.ec = family is KeyFamily.EC
        self.prefix = b""
        self.param: Any = None
        self.hash: Callable[[bytes], Any] | None = None
        if family in (KeyFamily.EDDSA, KeyFamily.MLDSA):
            mechanism = _SIGN_MECHANISM[family][False]  # pure: the token signs the message itself
        else:
            assert hash_name is not None  # ECDSA and RSA always hash
            self.hash = _HASHLIB[hash_name]
            if family is KeyFamily.EC:
                mechanism = CKM_ECDSA
            elif algorithm.is_pss:
                mechanism, self.param = CKM_RSA_PKCS_PSS, _PSS_PARAMS[hash_name]
            else:
                mechanism, self.prefix = CKM_RSA_PKCS, _DIGEST_INFO[hash_name]
        self.mechanism = _sdk().Mechanism(mechanism)

    def sign(self, pooled: PooledSession, data: bytes, tokens: TokenSessions) -> bytes:
        """The operation `TokenSessions.run` lends a session to: C_Sign with the key cached in that session."""
        key = pooled.keys.get(self.cache_key)
        if key is None:
            key = pooled.keys[self.cache_key] = _find_private(_sdk(), pooled, self.label, self.object_id, tokens)
        param = self.param
        if param is None:  # one keyword fewer through python-pkcs11's **kwargs layers
            return bytes(key.sign(data, mechanism=self.mechanism))
        return bytes(key.sign(data, mechanism=self.mechanism, mechanism_param=param))

    def describe(self) -> str:
        """What failed, for an error message (built only on failure)."""
        return f"signing with {_describe(self.label, self.object_id)}"


def _ecdsa_raw_to_der(raw: bytes) -> bytes:
    """r||s (two equal halves) to DER Ecdsa-Sig-Value; equals signers.signature_format.ecdsa_raw_to_der.

    Works on the bytes directly (no int round trip): each half becomes a minimal DER
    INTEGER, i.e. leading zero bytes dropped and one put back when the high bit is set.
    """
    size = len(raw)
    if not size or size & 1:
        raise InvalidSignature(f"raw ECDSA signature has odd length {size}")
    half = size >> 1
    r = raw[:half].lstrip(b"\x00")
    s = raw[half:].lstrip(b"\x00")
    if not r or r[0] > 0x7F:
        r = b"\x00" + r
    if not s or s[0] > 0x7F:
        s = b"\x00" + s
    r_len, s_len = len(r), len(s)
    if r_len + s_len < 0x7C:  # every curve up to P-384: short-form lengths throughout
        return b"\x30%c\x02%c%b\x02%c%b" % (r_len + s_len + 4, r_len, r, s_len, s)
    body = b"\x02" + _der_length(r_len) + r + b"\x02" + _der_length(s_len) + s
    return b"\x30" + _der_length(len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _capabilities(mechanisms: frozenset[int] | None, secp256k1: bool = False) -> Capabilities:
    """Specs whose generation and signing mechanisms the token lists (all classical ones when unknown)."""
    specs: set[KeySpec] = set()
    for spec, gen in _KEYGEN.items():
        sign = _SIGN_MECHANISM[spec.family][spec.default_algorithm.is_pss]
        if mechanisms is None:
            if spec.family is not KeyFamily.MLDSA and spec is not KeySpec.SECP256K1:
                specs.add(spec)
        elif gen.mechanism in mechanisms and sign in mechanisms and (spec is not KeySpec.SECP256K1 or secp256k1):
            specs.add(spec)
    return Capabilities(
        key_specs=frozenset(specs),
        prehash=True,  # ECDSA and RSA sign a host-side digest
        deterministic=frozenset(specs & {KeySpec.ED25519, KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87}),
    )


# -- error translation: the one place a python-pkcs11 exception becomes a keyplane error ----------


def _translate(exc: Exception, what: str | Callable[[], str], tokens: TokenSessions | None,
               spec: KeySpec | SignatureAlgorithm | None = None) -> None:
    """Raise `exc` as a keyplane error naming the token (never the PIN) if it is a python-pkcs11 failure.

    Returns (and the caller re-raises `exc` as it is) for keyplane errors and for anything
    else: a programming error must not pass for an outage. `what` may be lazy, built only here.
    """
    if isinstance(exc, KeyplaneError) or not type(exc).__module__.startswith("pkcs11"):
        return
    _raise_translated(exc, what if isinstance(what, str) else what(), tokens, spec)


class _translated:
    """Context manager over `_translate`, for the paths that are not per signature."""

    def __init__(self, what: str | Callable[[], str], tokens: TokenSessions | None,
                 spec: KeySpec | SignatureAlgorithm | None = None):
        self.what, self.tokens, self.spec = what, tokens, spec  # `what` may be lazy: built only on failure

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, Exception):
            _translate(exc, self.what, self.tokens, self.spec)


def _raise_translated(exc: Exception, what: str, tokens: TokenSessions | None,
                      spec: KeySpec | SignatureAlgorithm | None) -> NoReturn:
    where = tokens.name if tokens is not None else "the PKCS#11 module"
    name = type(exc).__name__
    error = _ERRORS.get(name)
    if error is AuthenticationFailed:
        raise AuthenticationFailed(f"{where} rejected the PIN ({name})") from exc
    if error is AlgorithmNotSupported:
        about = f" {spec.value}" if spec is not None else ""
        raise AlgorithmNotSupported(f"{where} does not support{about} ({name}) while {what}") from exc
    if error is not None and error is not BackendUnavailable:
        raise error(f"{what} on {where} failed: {name}") from exc
    lost = loss_kind(exc)
    reason = f"the {lost} was lost and did not come back" if lost else f"the token failed ({name})"
    raise BackendUnavailable(f"{what} on {where}: {reason}", exc) from exc


# -- small parsers -------------------------------------------------------------------------------


def _positive_int(text: str, what: str, minimum: int = 1) -> int:
    try:
        value = int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise ConfigError(f"{what} must be an integer, not {text[:20]!r}") from None
    if value < minimum:
        raise ConfigError(f"{what} must be at least {minimum}")
    return value


def _object_id(value: bytes | str | None) -> bytes:
    if value is None:
        return os.urandom(16)
    if isinstance(value, bytes) and value:
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ConfigError("id must be bytes or hexadecimal text") from None
    raise ConfigError("id must be non-empty bytes or hexadecimal text")


def _check_label(name: str) -> None:
    if not isinstance(name, str) or not name or len(name.encode("utf-8")) > 128 or not name.isprintable():
        raise ConfigError("key name (CKA_LABEL) must be 1-128 bytes of printable text")


def _describe(label: str | None, object_id: bytes | None) -> str:
    parts = ([f"{label!r}"] if label is not None else []) + ([f"id={object_id.hex()}"] if object_id else [])
    return " ".join(parts) or "(unnamed)"


def _mechanism_name(mechanism: int | None) -> str:
    if mechanism is None:
        return "signing mechanism"
    try:
        return "CKM_" + _sdk().Mechanism(mechanism).name
    except (ImportError, ValueError):
        return f"mechanism 0x{mechanism:x}"
