"""Whatever a caller trusts, as a JWKS: `as_jwks`, with parsed key-set documents cached.

A key set given as a dict or JSON text is parsed once and cached (by content, and a dict
given again by identity, confirmed equal): verifying many tokens against the same JWKS
document does not re-parse its keys. The cache key includes the generation of registered
JOSE algorithms (`jose_algorithms.extensions_generation`), so a document parsed before an
extension algorithm was registered is parsed again, with its extension keys, afterwards.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from threading import Lock
from typing import Any

from ..errors import ConfigError
from ..json_text import json_object
from ..keys import PublicKey
from .jose_algorithms import extensions_generation, jose_extension
from .jwk import JWK, JWKS, KeySource

__all__ = ["as_jwks"]

_CACHE_SIZE = 64  # distinct JWKS documents remembered by as_jwks


class _DocumentCache:
    """JWKS parsed from documents (JSON text or dicts), remembered by content (LRU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = Lock()
        self._entries: OrderedDict[str, JWKS] = OrderedDict()

    def get(self, text: str, parse: Any) -> JWKS:
        with self._lock:
            found = self._entries.get(text)
            if found is not None:
                self._entries.move_to_end(text)
                return found
        parsed: JWKS = parse()
        with self._lock:
            self._entries[text] = parsed
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return parsed


_documents = _DocumentCache(_CACHE_SIZE)


class _IdentityCache:
    """The same dict given again: found by identity, then confirmed equal to a snapshot.

    Comparing against the snapshot is a pointer walk (the strings are shared), far cheaper
    than serialising the document; a dict changed in place no longer matches its snapshot,
    so a key removed from a live JWKS dict is never trusted from the cache.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = Lock()
        self._entries: OrderedDict[int, tuple[Mapping[str, Any], Any, int, JWKS]] = OrderedDict()

    def get(self, document: Mapping[str, Any]) -> JWKS | None:
        with self._lock:
            entry = self._entries.get(id(document))
        if entry is None or entry[0] is not document or entry[2] != extensions_generation() or entry[1] != document:
            return None
        return entry[3]

    def put(self, document: Mapping[str, Any], jwks: JWKS) -> None:
        try:
            snapshot = copy.deepcopy(document)
        except Exception:  # an exotic mapping that cannot be copied is simply not cached
            return
        with self._lock:
            self._entries[id(document)] = (document, snapshot, extensions_generation(), jwks)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


_identities = _IdentityCache(_CACHE_SIZE)


def _document_key(document: Mapping[str, Any]) -> str | None:
    try:
        return json.dumps(document, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None  # not JSON: let the parser say why


def as_jwks(keys: KeySource) -> JWKS:
    """Whatever the caller trusts, as a JWKS: a PublicKey, Signer, JWK, JWKS, JWKS/JWK dict or JSON, or a list.

    Dicts and JSON text are parsed once and cached by content. Raises ConfigError for
    anything that is not a key source or holds a malformed key.
    """
    if isinstance(keys, JWKS):
        return keys
    if isinstance(keys, PublicKey | JWK):
        return JWKS([JWK.of(keys)])
    if isinstance(keys, str | bytes):
        text = keys.decode("utf-8", errors="replace") if isinstance(keys, bytes) else keys
        return _documents.get(f"{extensions_generation()}t{text}", lambda: as_jwks(json_object(text, "key set text")))
    if isinstance(keys, Mapping):
        cached = _identities.get(keys)
        if cached is not None:
            return cached
        key = _document_key(keys)
        if key is None:
            raise ConfigError("key set is not a JSON object")
        parsed = _documents.get(f"{extensions_generation()}d{key}", lambda: _from_document(keys))
        _identities.put(keys, parsed)
        return parsed
    if isinstance(getattr(keys, "public_key", None), PublicKey) and hasattr(keys, "algorithm"):
        return JWKS([JWK.of(keys)])  # type: ignore[arg-type]  # a Signer
    extension = _extension_document(keys)
    if extension is not None:
        return JWKS((), [extension])
    if hasattr(keys, "public_key") and hasattr(keys, "algorithm"):
        return JWKS([JWK.of(keys)])  # type: ignore[arg-type]  # JWK.of says why it is not a key
    if isinstance(keys, Iterable):
        return JWKS.of(*(as_jwks(k) for k in keys))
    raise ConfigError(f"not a key source: {type(keys).__name__}")


def _extension_document(item: object) -> dict[str, Any] | None:
    """The public JWK of a key object of a registered extension algorithm (e.g. a composite signer), or None."""
    make = getattr(item, "to_dict", None) or getattr(item, "to_jwk", None)
    if not callable(make):
        make = getattr(getattr(item, "public_key", None), "to_jwk", None)
    if not callable(make) or isinstance(item, PublicKey | Mapping):
        return None
    document = make()
    if not isinstance(document, dict) or jose_extension(document.get("alg")) is None:
        return None
    return document


def _from_document(document: Mapping[str, Any]) -> JWKS:
    """A JWKS document, or a single JWK (of a built-in or a registered extension algorithm)."""
    if "keys" in document:
        return JWKS.from_dict(document)
    if jose_extension(document.get("alg")) is not None:
        return JWKS((), [document])
    return JWKS([JWK.from_dict(document)])
