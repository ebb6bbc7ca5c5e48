"""The contracts: Signer, KeyStore, Capabilities, KeyInfo.

A back end is one KeyStore class (registered under its URI scheme in the entry-point
group `keyplane.backends`, with a classmethod `from_uri`) whose `open()` returns
Signers. Everything above (JOSE, passports, the CA, the conformance harness) only
uses what is declared here.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

from .algorithms import KeySpec, SignatureAlgorithm
from .closing import Closing
from .errors import BatchSignError, ConfigError, KeyplaneError
from .keys import PublicKey
from .workers import WorkerPool, io_pool, run_blocking

__all__ = [
    "BaseKeyStore",
    "BaseSigner",
    "BatchSigner",
    "Capabilities",
    "DigestSigner",
    "DisablingKeyStore",
    "ImportingKeyStore",
    "KeyInfo",
    "KeyStore",
    "MU_SIZE",
    "MuSigner",
    "NativeAsyncSigner",
    "RotatingKeyStore",
    "STORE_PROTOCOLS",
    "SIGNER_PROTOCOLS",
    "Signer",
    "capabilities_of",
    "choose_algorithm",
    "has_own_async",
    "key_in_memory",
    "signer_protocols",
    "store_protocols",
]


@runtime_checkable
class Signer(Protocol):
    """One key, one algorithm. Thread-safe: a Signer may be shared across threads."""

    key_id: str  # RFC 7638 thumbprint of public_key: stable across back ends and re-opens
    uri: str  # the key's URI with every secret removed
    algorithm: SignatureAlgorithm
    public_key: PublicKey  # fetched once when opened

    def sign(self, message: bytes) -> bytes:
        """Sign the whole message (any length); the standard X.509 signature encoding."""
        ...

    async def sign_async(self, message: bytes) -> bytes: ...


Deletion = Literal["immediate", "scheduled", "soft", "disabled"]


@dataclass(frozen=True)
class Capabilities:
    """What a store can do; the conformance harness tests exactly what is claimed here.

    The optional powers (rotation, disable/enable, import, digest / batch / native-async
    signing) are not flags: they are the Protocols below, and `capabilities_of(store)`
    fills `protocols` from the ones the store and its signers actually satisfy.
    """

    key_specs: frozenset[KeySpec]
    create: bool = True
    list: bool = True
    delete: bool = True
    prehash: bool = False  # the service signs digests (we hash locally)
    deterministic: frozenset[KeySpec] = frozenset()  # specs whose signatures are deterministic
    # Specs the store answers for without the real service (e.g. SDK-stubbed), with why.
    stubbed: dict[KeySpec, str] = field(default_factory=dict)
    # What delete_key does: removes at once, schedules destruction, soft-deletes (recoverable) or disables.
    deletion: Deletion = "immediate"
    # Keys live in this process only (an in-memory plugin, a one-session device): the harness
    # runs its concurrency checks in the worker that holds the store, not in a fresh process.
    process_local: bool = False
    # Filled by `capabilities_of`: names from STORE_PROTOCOLS / SIGNER_PROTOCOLS this store implements.
    protocols: frozenset[str] = frozenset()

    def supports(self, spec: KeySpec) -> bool:
        return spec in self.key_specs

    def implements(self, protocol: str) -> bool:
        """True when `capabilities_of` found the store (or its signers) satisfy that protocol name."""
        return protocol in self.protocols


@dataclass(frozen=True)
class KeyInfo:
    """One entry of `KeyStore.list_keys()`."""

    name: str
    uri: str
    spec: KeySpec | None = None
    key_id: str | None = None
    version: str | None = None
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class KeyStore(Protocol):
    """One connection to one back end (session pool, HTTP client); closes with `close()` or `with`."""

    capabilities: Capabilities
    uri: str  # the store's URI, secrets removed

    def create_key(self, name: str, spec: KeySpec, **opts: Any) -> Signer:
        """Create a new key; KeyExists if the name is taken, AlgorithmNotSupported if the spec is not offered."""
        ...

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | None = None) -> Signer:
        """Open an existing key by full URI or by name; KeyNotFound if absent."""
        ...

    def list_keys(self) -> Iterator[KeyInfo]: ...

    def delete_key(self, name: str) -> None:
        """Delete (or schedule deletion / disable, where the service requires) a key."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> KeyStore: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


# -- optional capabilities ---------------------------------------------------------------
# A store or signer has a power when it satisfies one of these Protocols; callers discover
# it with isinstance (smallstep's optional interfaces). None of them is required: a back end
# that implements only Signer and KeyStore passes every core conformance row.


@runtime_checkable
class RotatingKeyStore(Protocol):
    """Keys with versions: `rotate_key` adds one and makes it current.

    The returned Signer signs with the new version and exposes ``version``; Signers opened
    before keep signing with theirs, and their public keys stay valid for verification.
    Raises KeyNotFound (no such key) or AlgorithmNotSupported (the service cannot rotate it).
    """

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> Signer: ...


@runtime_checkable
class DisablingKeyStore(Protocol):
    """Key lifecycle beyond delete: a disabled key refuses to sign (KeyDisabled) until enabled."""

    def disable_key(self, name: str) -> None:
        """Raises KeyNotFound if absent."""
        ...

    def enable_key(self, name: str) -> None:
        """Raises KeyNotFound if absent."""
        ...


@runtime_checkable
class ImportingKeyStore(Protocol):
    """Bring your own key: store existing private key material in the back end.

    `private_key` is a `cryptography` private key object (see `signers.key_import` for
    loading PEM / DER / JWK / ML-DSA seeds). Raises KeyExists, AlgorithmNotSupported (the
    service does not import that kind of key, with why) or ConfigError (bad material).
    """

    def import_key(self, name: str, private_key: Any, algorithm: SignatureAlgorithm | str | None = None) -> Signer: ...


@runtime_checkable
class DigestSigner(Protocol):
    """Signs a precomputed digest, never hashing it again.

    The digest must be as long as the signer's hash (ECDSA: any hash of that length, e.g.
    Keccak-256 for Ethereum; the curve does not care which function made it). Shaped as a
    Signer method, not a store method, because the signer already holds the key handle and
    the algorithm that fixes the digest length. Raises ConfigError on a wrong length and
    AlgorithmNotSupported where the algorithm has no digest form (Ed25519, pure ML-DSA).
    """

    def sign_digest(self, digest: bytes) -> bytes: ...


MU_SIZE = 64  # FIPS 204 mu: 512 bits


@runtime_checkable
class MuSigner(Protocol):
    """An ML-DSA Signer that signs a caller-computed FIPS 204 mu (64 bytes), never hashing it again.

    The ML-DSA counterpart of DigestSigner. FIPS 204 (Algorithm 7) lets the caller compute
    mu = SHAKE256(tr || 0x00 || len(ctx) || ctx || M) itself (`cryptography`'s
    MLDSAMuHasher), so a back end that signs an external mu signs with ANY context string
    (composite ML-DSA needs its label as the context). Raises ConfigError for a mu that is
    not 64 bytes and AlgorithmNotSupported when the key behind this signer is not ML-DSA
    or the back end cannot take a mu for it.
    """

    def sign_mu(self, mu: bytes) -> bytes: ...


@runtime_checkable
class BatchSigner(Protocol):
    """Signs many messages in fewer round trips; results in the order given.

    A failure of one item raises `signers.errors.BatchSignError` carrying every item's
    result (signature or error), so successful signatures are never lost.
    """

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]: ...

    async def sign_many_async(self, messages: Sequence[bytes]) -> list[bytes]: ...


@runtime_checkable
class NativeAsyncSigner(Protocol):
    """`sign_async` runs on an async client (no worker thread); `aclose` releases that client."""

    async def sign_async(self, message: bytes) -> bytes: ...

    async def aclose(self) -> None: ...


STORE_PROTOCOLS: dict[str, type] = {
    "rotate": RotatingKeyStore,
    "disable": DisablingKeyStore,
    "import": ImportingKeyStore,
}
SIGNER_PROTOCOLS: dict[str, type] = {
    "sign-digest": DigestSigner,
    "sign-mu": MuSigner,
    "sign-many": BatchSigner,
    "native-async": NativeAsyncSigner,
}


def store_protocols(store: object) -> frozenset[str]:
    """Names of the optional store Protocols `store` satisfies."""
    return frozenset(name for name, proto in STORE_PROTOCOLS.items() if isinstance(store, proto))


def signer_protocols(signer: object) -> frozenset[str]:
    """Names of the optional signer Protocols `signer` satisfies."""
    return frozenset(name for name, proto in SIGNER_PROTOCOLS.items() if isinstance(signer, proto))


def capabilities_of(store: KeyStore, signer_class: type | None = None) -> Capabilities:
    """The store's Capabilities with `protocols` derived from what it implements.

    Signer protocols are read from `signer_class` (default: the store's ``signer_class``
    attribute when it has one), so the answer needs no key to be opened.
    """
    names = set(store_protocols(store))
    cls = signer_class or getattr(store, "signer_class", None)
    if isinstance(cls, type):
        names |= {name for name, proto in SIGNER_PROTOCOLS.items() if _class_satisfies(cls, proto)}
    return replace(store.capabilities, protocols=frozenset(names))


def _class_satisfies(cls: type, proto: type) -> bool:
    attrs = getattr(proto, "__protocol_attrs__", None)
    if attrs is None:  # Python 3.11 keeps a Protocol's members behind typing's private helper
        attrs = typing._get_protocol_attrs(proto)  # type: ignore[attr-defined]
    members = [m for m in attrs if not m.startswith("_")]
    return bool(members) and all(callable(getattr(cls, m, None)) for m in members)


class BaseSigner:
    """Shared plumbing for back-end Signers: identity fields, a safe repr, `sign_async`, `sign_many`.

    Subclasses implement `sign()`. `sign_async` runs it on `worker_pool()` (keyplane's
    bounded I/O pool unless the back end has its own; never the loop's default executor),
    so a blocking SDK call never stalls the event loop; back ends with a native async
    client override it. `sign_many` / `sign_many_async` (BatchSigner) loop over `sign` /
    `sign_async`, spread over `batch_width` lanes at once where the service takes
    concurrent requests; back ends with a real batch call override them.
    """

    #: How many items of a batch are signed at once (1: one after another). A back end whose
    #: service answers concurrent requests raises it (PKCS#11: its session pool's size).
    batch_width: int = 1

    def __init__(self, uri: str, algorithm: SignatureAlgorithm, public_key: PublicKey) -> None:
        algorithm.check_spec(public_key.spec)
        self.uri = uri
        self.algorithm = algorithm
        self.public_key = public_key
        self.key_id = public_key.key_id

    @property
    def spec(self) -> KeySpec:
        return self.public_key.spec

    def sign(self, message: bytes) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def worker_pool(self) -> WorkerPool:
        """The pool blocking calls run on from async code (default: the process's I/O pool)."""
        return io_pool()

    async def sign_async(self, message: bytes) -> bytes:
        """`sign` on `worker_pool()`; raises what `sign` raises."""
        return await run_blocking(self.sign, message, pool=self.worker_pool())

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign each message, results in input order (BatchSigner).

        Up to `batch_width` items run at once on `worker_pool()` (inline when called from
        one of its threads). A failure of any item raises BatchSignError whose ``results``
        holds every item's signature or KeyplaneError; an exception that is not a
        KeyplaneError (a bug) propagates as is.
        """
        items = list(messages)
        width = min(self.batch_width, len(items))
        pool = self.worker_pool()
        if width <= 1 or pool.in_worker():
            return self._batch_result(self._sign_lane(items))
        executor = pool.executor()
        lanes = [executor.submit(self._sign_lane, items[i::width]) for i in range(width)]
        return self._batch_result(_interleave([lane.result() for lane in lanes], len(items)))

    async def sign_many_async(self, messages: Sequence[bytes]) -> list[bytes]:
        """`sign_many` without blocking the loop: `batch_width` lanes of `sign_async` (or of `sign` on the pool)."""
        import asyncio  # stdlib; loaded only by async callers so `import signers` does not pay for it

        items = list(messages)
        if type(self).sign_many is not BaseSigner.sign_many:  # the back end's own batch call
            return await run_blocking(self.sign_many, items, pool=self.worker_pool())
        width = max(1, min(self.batch_width, len(items)))
        native = type(self).sign_async is not BaseSigner.sign_async
        if native:
            lanes = [self._sign_lane_async(items[i::width]) for i in range(width)]
        else:
            pool = self.worker_pool()
            lanes = [run_blocking(self._sign_lane, items[i::width], pool=pool) for i in range(width)]
        return self._batch_result(_interleave(list(await asyncio.gather(*lanes)), len(items)))

    def _sign_lane(self, items: list[bytes]) -> list[bytes | KeyplaneError]:
        return [self._sign_item(message) for message in items]

    async def _sign_lane_async(self, items: list[bytes]) -> list[bytes | KeyplaneError]:
        return [await self._sign_item_async(message) for message in items]

    def _sign_item(self, message: bytes) -> bytes | KeyplaneError:
        """One batch item's signature, or its typed failure: that item fails, the rest sign."""
        try:
            _check_batch_item(message)
            return self.sign(message)
        except KeyplaneError as e:
            return e

    async def _sign_item_async(self, message: bytes) -> bytes | KeyplaneError:
        try:
            _check_batch_item(message)
            return await self.sign_async(message)
        except KeyplaneError as e:
            return e

    def _batch_result(self, results: list[bytes | KeyplaneError]) -> list[bytes]:
        failed = [(i, r) for i, r in enumerate(results) if isinstance(r, KeyplaneError)]
        if failed:
            index, first = failed[0]
            raise BatchSignError(
                f"{len(failed)} of {len(results)} signatures with {self.uri} failed; item {index}: {first}", results)
        return results  # type: ignore[return-value]  # no item is an error here

    def verify(self, signature: bytes, message: bytes) -> None:
        """Verify locally with the cached public key (raises InvalidSignature)."""
        self.public_key.verify(signature, message, self.algorithm)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri!r}, algorithm={self.algorithm.value}, key_id={self.key_id!r})"


class BaseKeyStore(Closing):
    """Context-manager plumbing for KeyStores; subclasses set `capabilities` and `uri` and override `close()`."""

    capabilities: Capabilities
    uri: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri!r})"


def _check_batch_item(message: object) -> None:
    if not isinstance(message, bytes | bytearray | memoryview):
        raise ConfigError(f"a batch item must be bytes, not {type(message).__name__}")


def _interleave(lanes: list[list[bytes | KeyplaneError]], total: int) -> list[bytes | KeyplaneError]:
    """Undo the ``items[i::width]`` split: lane i holds items i, i+width, i+2*width, ..."""
    width = len(lanes)
    return [lanes[i % width][i // width] for i in range(total)]


def choose_algorithm(spec: KeySpec, requested: SignatureAlgorithm | str | None) -> SignatureAlgorithm:
    """The algorithm a Signer for a `spec` key uses: the requested one if it fits, else the default."""
    if requested is None:
        return spec.default_algorithm
    alg = SignatureAlgorithm.parse(requested)
    alg.check_spec(spec)
    return alg


def has_own_async(signer: object) -> bool:
    """Whether `signer.sign_async` is more than `sign` on a worker thread: a native async client, a coalescer.

    A wrapper that only forwards `sign_async` (the service's timing wrapper) says what its
    wrapped signer is with an ``own_async`` attribute. Callers that would hop to a thread
    for `sign` anyway (an audited signature: the sign and the durable append) then make one
    hop for all of it instead of one per step.
    """
    declared = getattr(signer, "own_async", None)
    if isinstance(declared, bool):
        return declared
    method = getattr(type(signer), "sign_async", None)
    return callable(method) and method is not BaseSigner.sign_async


def key_in_memory(signer: object) -> bool:
    """Whether `signer` holds its private key in this process's memory (a file store's decrypted key).

    Such a `sign` does no I/O and waits for nothing: it is CPU work of a known length. A
    caller on an event loop may then sign on the loop when the signature is shorter than a
    worker-thread hop (the issuer service does, for keys it measured under a limit), where a
    key behind an HSM session or a network call must never be signed on the loop. A back
    end says so with a ``key_in_memory = True`` attribute.
    """
    return getattr(signer, "key_in_memory", False) is True
