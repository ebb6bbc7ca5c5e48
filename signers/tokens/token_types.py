"""The ``typ`` header of every token keyplane issues (explicit typing, RFC 8725 3.11).

Each kind of token keyplane signs carries its own media type, and each verifier asks for
exactly one: a passport is never accepted as an action token, a revocation list never as
a login token. The generic `verify_jwt` refuses all of these unless the caller names the
type (``typ=``), so a key that signs passports cannot be used to mint "plain" JWTs from
them by accident.
"""

from __future__ import annotations

__all__ = [
    "ACTION_TYP",
    "AUDIT_CHECKPOINT_TYP",
    "KEYPLANE_TYPES",
    "PASSPORT_TYP",
    "POP_TYP",
    "REVOCATION_LIST_TYP",
    "media_type",
]

PASSPORT_TYP = "passport+jwt"
ACTION_TYP = "action+jwt"
POP_TYP = "pop+jwt"
REVOCATION_LIST_TYP = "revocation-list+jwt"
AUDIT_CHECKPOINT_TYP = "keyplane-audit-checkpoint+jwt"

KEYPLANE_TYPES = frozenset({PASSPORT_TYP, ACTION_TYP, POP_TYP, REVOCATION_LIST_TYP, AUDIT_CHECKPOINT_TYP})


def media_type(typ: str) -> str:
    """`typ` compared as RFC 7515 4.1.9 says: case-insensitive, ``application/`` prefix optional."""
    lowered = typ.lower()
    return lowered[len("application/") :] if lowered.startswith("application/") else lowered
