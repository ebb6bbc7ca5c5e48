"""Signature algorithms served by an optional keyplane module, imported the first time one is met.

Composite ML-DSA (`signers.composite`) verifies composite JWS and certificates, but it is
heavy (every variant, its DER, its CA) and most programs never meet a composite
signature, so `import signers` does not load it. Instead the JOSE verifier and
`verify_chain`, on meeting an ``alg`` or a signature OID they do not know, look here: if
the name is one of the few below, the module serving it is imported, and importing it
registers its verifiers (`signers.jose.register_jose_algorithm`,
`signers.x509.chain.register_chain_verifier`). A relying party that only holds a token
and a JWKS file, or a certificate chain, needs no import of its own.

The tables are static and name only this distribution's own modules: no installed
package can claim an ``alg`` or an OID through them (entry points would let any
installed distribution decide what a token's signature means). An unknown name, or a
module that fails to import, leaves the algorithm unregistered, and its tokens and
certificates refused. tests/composite checks the tables against `CompositeAlgorithm`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

__all__ = ["JOSE_ALGORITHM_MODULES", "SIGNATURE_OID_MODULES", "load_jose_algorithm", "load_signature_oid"]

_COMPOSITE = "signers.composite"

# draft-ietf-jose-pq-composite-sigs `alg` values keyplane implements.
JOSE_ALGORITHM_MODULES: Mapping[str, str] = dict.fromkeys(
    ("ML-DSA-44-ES256", "ML-DSA-65-ES256", "ML-DSA-87-ES384", "ML-DSA-44-Ed25519", "ML-DSA-65-Ed25519"),
    _COMPOSITE,
)

# draft-ietf-lamps-pq-composite-sigs (April 2026) signature OIDs keyplane implements: id-arc 1.3.6.1.5.5.7.6.
SIGNATURE_OID_MODULES: Mapping[str, str] = {
    f"1.3.6.1.5.5.7.6.{n}": _COMPOSITE for n in (37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 48, 49, 52, 53)
}


def _load(module: str | None) -> bool:
    if module is None:
        return False
    try:
        importlib.import_module(module)
    except ImportError:  # e.g. a `cryptography` without ML-DSA: the algorithm stays unregistered (refused)
        return False
    return True


def load_jose_algorithm(name: object) -> bool:
    """Import the module serving JOSE ``alg`` `name`, if keyplane has one; True when it is imported."""
    return isinstance(name, str) and _load(JOSE_ALGORITHM_MODULES.get(name))


def load_signature_oid(oid: str) -> bool:
    """Import the module serving signature algorithm `oid` (dotted), if keyplane has one; True when imported."""
    return _load(SIGNATURE_OID_MODULES.get(oid))
