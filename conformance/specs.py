"""What the harness calls a key spec: a `KeySpec`, or a composite variant, which is its own spec.

A composite ML-DSA variant (`signers.composite.CompositeAlgorithm`) is a key spec whose only
algorithm is itself, so every per-spec row runs on it unchanged. A ``composite:`` store URI
is judged on the composite variants instead of the KeySpecs (`default_specs`); the variants
its two stores cannot make are not claimed, each with `variant_support`'s reason, so they
are "not supported", never "fail". Every other store is judged on the KeySpecs, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.composite import CompositeAlgorithm, CompositePublicKey, parse_composite_uri
from signers.errors import AlgorithmNotSupported, KeyplaneError
from signers.keys import PublicKey
from signers.signer import Capabilities, KeyStore, Signer

__all__ = [
    "AnyAlgorithm",
    "AnyPublicKey",
    "Spec",
    "claimed_specs",
    "create_key",
    "default_specs",
    "is_composite",
    "open_key",
    "parse_algorithm",
    "parse_spec",
    "public_key_from_der",
    "with_halves",
]

Spec = KeySpec | CompositeAlgorithm
AnyAlgorithm = SignatureAlgorithm | CompositeAlgorithm
AnyPublicKey = PublicKey | CompositePublicKey

COMPOSITE_SCHEME = "composite:"


def is_composite(spec: Spec) -> bool:
    return isinstance(spec, CompositeAlgorithm)


def parse_spec(name: str | Spec) -> Spec:
    """A KeySpec (name or alias) or a composite variant (name, OID or JOSE name); AlgorithmNotSupported otherwise."""
    if isinstance(name, KeySpec | CompositeAlgorithm):
        return name
    try:
        return KeySpec.parse(name)
    except AlgorithmNotSupported as first:
        try:
            return CompositeAlgorithm.parse(name)
        except AlgorithmNotSupported:
            raise AlgorithmNotSupported(f"{first} (or a composite variant: "
                                        f"{', '.join(v.value for v in CompositeAlgorithm)})") from None


def default_specs(uri: str) -> list[Spec]:
    """What a run judges when the target names no specs: the composite variants for a composite store."""
    if uri.startswith(COMPOSITE_SCHEME):
        return list(CompositeAlgorithm)
    return list(KeySpec)


def claimed_specs(store: KeyStore, capabilities: Capabilities) -> tuple[frozenset[Spec], dict[Spec, str]]:
    """(the specs the store claims, why each spec it does not claim is not offered, where it says).

    A store pairing two stores into composite keys answers `variant_support()`: a variant
    is claimed when both its halves can be made there.
    """
    support = getattr(store, "variant_support", None)
    if not callable(support):
        return frozenset(capabilities.key_specs), {}
    table: Mapping[CompositeAlgorithm, str | None] = support()
    claimed: set[Spec] = {v for v, why in table.items() if why is None}
    return frozenset(claimed | set(capabilities.key_specs)), {v: why for v, why in table.items() if why is not None}


def with_halves(uri: str) -> list[str]:
    """`uri`, and for a ``composite:`` URI its halves' URIs too (where their ``*-source`` attributes are)."""
    if not uri.startswith(COMPOSITE_SCHEME):
        return [uri]
    try:
        parsed = parse_composite_uri(uri)
    except KeyplaneError:
        return [uri]
    return [uri, *(half for half in (parsed.mldsa, parsed.classical) if ":" in half)]


def parse_algorithm(spec: Spec, name: str) -> AnyAlgorithm:
    return CompositeAlgorithm.parse(name) if is_composite(spec) else SignatureAlgorithm.parse(name)


def public_key_from_der(spec: Spec, der: bytes) -> AnyPublicKey:
    """A SubjectPublicKeyInfo as the public key type of `spec` (ConfigError if it is not one)."""
    return CompositePublicKey.from_der(der) if is_composite(spec) else PublicKey.from_der(der)


def create_key(store: KeyStore, name: str, spec: Spec) -> Signer:
    """`store.create_key(name, spec)`: a composite store takes its variants where a KeyStore takes a KeySpec."""
    made: Signer = store.create_key(name, spec)  # type: ignore[arg-type]  # a variant is a composite store's spec
    return made


def open_key(store: KeyStore, name: str, algorithm: AnyAlgorithm | None = None) -> Any:
    """`store.open(name, algorithm)` with a signature or composite algorithm."""
    return store.open(name, algorithm)  # type: ignore[arg-type]  # a composite store's algorithms are variants
