"""The contracts: Signer, KeyStore, Capabilities, KeyInfo.

A back end is one KeyStore class (registered under its URI scheme in the entry-point
group `keyplane.backends`, with a classmethod `from_uri`) whose `open()` returns
Signers. Everything above (JOSE, passports, the CA, the conformance harness) only
uses what is declared here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from .algorithms import KeySpec, SignatureAlgorithm
from .closing import Closing
from .keys import PublicKey

__all__ = ["BaseKeyStore", "BaseSigner", "Capabilities", "KeyInfo", "KeyStore", "Signer", "choose_algorithm"]


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


@dataclass(frozen=True)
class Capabilities:
    """What a store can do; the conformance harness tests exactly what is claimed here."""

    key_specs: frozenset[KeySpec]
    create: bool = True
    list: bool = True
    delete: bool = True
    rotate: bool = False
    prehash: bool = False  # the service signs digests (we hash locally)
    deterministic: frozenset[KeySpec] = frozenset()  # specs whose signatures are deterministic
    # Specs the store answers for without the real service (e.g. SDK-stubbed), with why.
    stubbed: dict[KeySpec, str] = field(default_factory=dict)

    def supports(self, spec: KeySpec) -> bool:
        return spec in self.key_specs


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


class BaseSigner:
    """Shared plumbing for back-end Signers: identity fields, a safe repr, `sign_async`.

    Subclasses implement `sign()`. `sign_async` runs it in a worker thread so a blocking
    SDK call never stalls the event loop; back ends with a native async client override it.
    """

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

    async def sign_async(self, message: bytes) -> bytes:
        return await asyncio.to_thread(self.sign, message)

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




def choose_algorithm(spec: KeySpec, requested: SignatureAlgorithm | str | None) -> SignatureAlgorithm:
    """The algorithm a Signer for a `spec` key uses: the requested one if it fits, else the default."""
    if requested is None:
        return spec.default_algorithm
    alg = SignatureAlgorithm.parse(requested)
    alg.check_spec(spec)
    return alg
