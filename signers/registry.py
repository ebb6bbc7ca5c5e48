"""Find the back end for a URI scheme, and open stores and keys through it.

Back ends, ours included, register in the entry-point group ``keyplane.backends``
(entry name = URI scheme, value = a KeyStore class with a classmethod
``from_uri(uri) -> KeyStore``). `signers` never imports a back end by name, so a
vendor's package plugs in exactly like ours.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .algorithms import SignatureAlgorithm
from .config import Config
from .errors import ConfigError
from .signer import KeyStore, Signer
from .uri import parse_uri

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["BACKEND_GROUP", "available_schemes", "backend_class", "open", "open_store", "register"]

BACKEND_GROUP = "keyplane.backends"

_lock = threading.Lock()
_registered: dict[str, Any] = {}  # explicit registrations (tests, embedding apps)
_entry_points: dict[str, EntryPoint] | None = None


def _discovered() -> dict[str, EntryPoint]:
    global _entry_points
    with _lock:
        if _entry_points is None:
            from importlib.metadata import entry_points  # stdlib, ~30 ms: loaded on the first look-up, not at import

            _entry_points = {ep.name.lower(): ep for ep in entry_points(group=BACKEND_GROUP)}
        return _entry_points


def register(scheme: str, store_class: Any) -> None:
    """Register a KeyStore class for `scheme` in this process (overrides an entry point)."""
    _registered[scheme.lower()] = store_class


def available_schemes() -> list[str]:
    """Every URI scheme with a back end: entry points and `register` calls."""
    return sorted(set(_discovered()) | set(_registered))


def backend_class(scheme: str) -> Any:
    """The KeyStore class serving `scheme`; ConfigError naming the known schemes if none."""
    scheme = scheme.lower()
    if scheme in _registered:
        return _registered[scheme]
    ep = _discovered().get(scheme)
    if ep is None:
        known = ", ".join(available_schemes()) or "none (is keyplane installed?)"
        raise ConfigError(f"no back end for URI scheme '{scheme}:'; installed: {known}")
    try:
        cls = ep.load()
    except ImportError as e:
        raise ConfigError(f"the back end for '{scheme}:' failed to import ({ep.value}): {e.msg}") from e
    return cls


def _is_name(text: str) -> bool:
    return ":" not in text


def open_store(uri_or_name: str, *, config: Config | None = None) -> KeyStore:
    """Open a key store from a store URI or a store name in keyplane.toml.

    Raises ConfigError (bad URI, unknown name or scheme, missing extra) or what the back
    end's `from_uri` raises (AuthenticationFailed, BackendUnavailable, ...).
    """
    if _is_name(uri_or_name):
        uri_or_name = (config or Config.load()).store_uri(uri_or_name)
    scheme = parse_uri(uri_or_name).scheme
    store: KeyStore = backend_class(scheme).from_uri(uri_or_name)
    return store


def open(
    uri_or_name: str,
    algorithm: SignatureAlgorithm | str | None = None,
    *,
    config: Config | None = None,
) -> Signer:
    """Open a key by URI (``pkcs11:...``, ``file:/dir/key``) or by its name in keyplane.toml.

    The returned Signer keeps its store alive; the key's public key is fetched and
    cached here, so a missing key fails now (KeyNotFound), not at the first signature.
    Raises ConfigError (bad URI, unknown name or scheme), KeyNotFound, AuthenticationFailed,
    BackendUnavailable, or whatever else the back end's `open` raises (all KeyplaneError).
    """
    alg = SignatureAlgorithm.parse(algorithm) if algorithm is not None else None
    if _is_name(uri_or_name):
        cfg = config or Config.load()
        entry = cfg.key(uri_or_name)
        alg = alg or entry.algorithm
        if entry.uri is not None:
            if _is_name(entry.uri):  # a key naming a key: refuse, rather than recurse until RecursionError
                raise ConfigError(f"key {uri_or_name!r}: its uri must be a URI, not the name of another key")
            return open(entry.uri, alg, config=cfg)
        assert entry.store is not None and entry.key is not None
        store = open_store(cfg.store_uri(entry.store), config=cfg)
        return store.open(entry.key, alg)
    scheme = parse_uri(uri_or_name).scheme
    cls = backend_class(scheme)
    key_store: KeyStore = cls.from_uri(uri_or_name)
    try:
        return key_store.open(uri_or_name, alg)
    except BaseException:
        key_store.close()
        raise
