"""CompositeKeyStore: the ``composite:`` back end, registered like any other in ``keyplane.backends``.

``signers.open("composite:MLDSA65-Ed25519-SHA512?mldsa=<URI>&classical=<URI>")`` opens both
halves through `signers.open` (each from its own back end, or a keyplane.toml name) and
returns a CompositeSigner. As a store (``composite:?mldsa=<store URI>&classical=<store URI>``)
it creates, lists and deletes composite keys as a pair of same-named keys, one per store:
`create_key(name, variant)` makes the ML-DSA key first and deletes it again when the
traditional one cannot be made, so a failure leaves neither store changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from signers.errors import AlgorithmNotSupported, ConfigError, KeyplaneError
from signers.registry import open as open_key
from signers.registry import open_store
from signers.signer import BaseKeyStore, Capabilities, KeyInfo, KeyStore, capabilities_of
from signers.uri import parse_uri

from .signer import CompositeSigner
from .uri import CompositeURI, composite_uri, parse_composite_uri
from .variants import CompositeAlgorithm

__all__ = ["CompositeKeyStore"]

# A composite key URI names two keys, not two stores: it opens, nothing else.
_KEY_URI_CAPABILITIES = Capabilities(key_specs=frozenset(), create=False, list=False, delete=False)


class CompositeKeyStore(BaseKeyStore):
    """Pairs two stores (or two keys) into composite keys; the halves' own errors pass through unchanged."""

    signer_class = CompositeSigner  # capabilities_of reads the signer protocols (sign-many) from it

    def __init__(self, parsed: CompositeURI) -> None:
        self._parsed = parsed
        self.uri = composite_uri(parsed.variant, _public_uri(parsed.mldsa), _public_uri(parsed.classical))
        self._stores: dict[str, KeyStore] = {}

    @classmethod
    def from_uri(cls, uri: str) -> CompositeKeyStore:
        """Nothing is opened yet: a key URI opens its halves in `open`, a store URI its stores on first use."""
        return cls(parse_composite_uri(uri))

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]  # read-only: derived from the two stores
        """What both stores allow: create / list / delete when both do, the weaker deletion, process-local if
        either is. A composite store holds no KeySpec of its own: its "specs" are the variants both of its
        stores can make (`variant_support`), which is what the conformance harness judges."""
        if self._parsed.variant is not None:
            return _KEY_URI_CAPABILITIES
        halves = [self._store(half).capabilities for half in ("mldsa", "classical")]
        return Capabilities(key_specs=frozenset(), create=all(c.create for c in halves),
                            list=all(c.list for c in halves), delete=all(c.delete for c in halves),
                            deletion=next((c.deletion for c in halves if c.deletion != "immediate"), "immediate"),
                            process_local=any(c.process_local for c in halves))

    # -- KeyStore ----------------------------------------------------------------------

    def open(self, uri_or_name: str, algorithm: CompositeAlgorithm | str | None = None) -> CompositeSigner:
        """A composite key URI opens its two halves; a name opens that key in both stores of this store URI."""
        if ":" in uri_or_name:
            parsed = parse_composite_uri(uri_or_name)
            mldsa_uri, classical_uri = parsed.mldsa, parsed.classical
            variant = parsed.variant or (CompositeAlgorithm.parse(algorithm) if algorithm is not None else None)
            mldsa = open_key(mldsa_uri)
            classical = open_key(classical_uri, variant.classical_algorithm if variant else None)
        else:
            variant = CompositeAlgorithm.parse(algorithm) if algorithm is not None else None
            mldsa = self._store("mldsa").open(uri_or_name)
            classical = self._store("classical").open(uri_or_name, variant.classical_algorithm if variant else None)
        if variant is None:
            variant = CompositeAlgorithm.matching(mldsa.public_key.spec, classical.public_key.spec, classical.algorithm)
        return CompositeSigner(mldsa, classical, variant)

    def create_key(self, name: str, spec: CompositeAlgorithm | str, **opts: Any) -> CompositeSigner:
        """Make `name` in both stores.

        AlgorithmNotSupported, before either store is touched, if `spec` is not a composite
        variant or a half cannot be made here (`variant_support` says why); a failure after
        the first half exists deletes what was made, so neither store is left changed.
        """
        if opts:
            raise ConfigError(f"composite back end: unknown create option(s) {sorted(opts)}")
        variant = CompositeAlgorithm.parse(spec)
        why = self.variant_support()[variant]
        if why is not None:
            raise AlgorithmNotSupported(f"{variant.value}: {why}")
        mldsa_store, classical_store = self._store("mldsa"), self._store("classical")
        made: list[KeyStore] = []  # the stores holding a half of `name` so far, undone on failure
        try:
            mldsa = mldsa_store.create_key(name, variant.mldsa_spec)
            made.append(mldsa_store)
            classical = classical_store.create_key(name, variant.classical_spec, algorithm=variant.classical_algorithm)
            made.append(classical_store)
            return CompositeSigner(mldsa, classical, variant)
        except BaseException:
            for store in reversed(made):
                with contextlib.suppress(KeyplaneError):  # the original failure is what the caller must see
                    store.delete_key(name)
            raise

    def variant_support(self) -> dict[CompositeAlgorithm, str | None]:
        """Every variant -> None when both of its halves can be made here, else why not.

        The ML-DSA store must claim the ML-DSA spec and sign an external mu (MuSigner: the
        label is the ML-DSA context); the traditional store must claim the traditional spec.
        """
        caps = {half: capabilities_of(self._store(half)) for half in ("mldsa", "classical")}
        out: dict[CompositeAlgorithm, str | None] = {}
        for variant in CompositeAlgorithm:
            if variant.mldsa_spec not in caps["mldsa"].key_specs:
                out[variant] = f"the ML-DSA store ({self._public('mldsa')}) does not offer {variant.mldsa_spec.value}"
            elif not caps["mldsa"].implements("sign-mu"):
                out[variant] = (f"the ML-DSA store ({self._public('mldsa')}) cannot sign an external mu (MuSigner), "
                                "so it cannot sign with the composite label as its context")
            elif variant.classical_spec not in caps["classical"].key_specs:
                out[variant] = (f"the traditional store ({self._public('classical')}) does not offer "
                                f"{variant.classical_spec.value}")
            else:
                out[variant] = None
        return out

    def list_keys(self) -> Iterator[KeyInfo]:
        """Names present in both stores (a half on its own is not a composite key)."""
        classical = {info.name: info for info in self._store("classical").list_keys()}
        for info in self._store("mldsa").list_keys():
            other = classical.get(info.name)
            if other is not None:
                yield KeyInfo(name=info.name, uri=composite_uri(None, info.uri, other.uri))

    def delete_key(self, name: str) -> None:
        """Delete both halves (the ML-DSA one last, so a retry after a failure still finds the pair)."""
        self._store("classical").delete_key(name)
        self._store("mldsa").delete_key(name)

    def close(self) -> None:
        stores, self._stores = self._stores, {}
        for store in stores.values():
            store.close()

    # -- internals ---------------------------------------------------------------------

    def _public(self, half: str) -> str:
        return _public_uri(getattr(self._parsed, half))

    def _store(self, half: str) -> KeyStore:
        if self._parsed.variant is not None:
            raise ConfigError("this is a composite key URI; give composite:?mldsa=<store URI>&classical=<store URI> "
                              "to create, list or delete keys")
        store = self._stores.get(half)
        if store is None:
            store = self._stores[half] = open_store(getattr(self._parsed, half))
        return store


def _public_uri(half: str) -> str:
    """A half's URI without secret-valued attributes (``pin-value=`` ...); a keyplane.toml name as is."""
    return parse_uri(half).public().format() if ":" in half else half
