"""Who may approve stage transitions: the approvers' public keys and the roles each holds.

A role grant may end (``not_after``, epoch seconds): transitions the key signed up to then
keep verifying, later ones are refused, so retiring an approver does not invalidate every
history it ever approved, and a leaked retired key cannot approve anything new.

The file form (``keyplane agent approver`` writes it, verifiers read it offline)::

    {"approvers": [{"jwk": {...}, "roles": ["release-approver"], "not_after": 1767225600}]}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..jose import JWKS, KeySource, as_jwks
from .errors import PolicyError

__all__ = ["Approvers"]


class Approvers:
    """The approvers' keys (a JWKS), their roles and role end dates, by key id (= JWKS kid)."""

    def __init__(
        self,
        keys: KeySource,
        roles: Mapping[str, Iterable[str]],
        not_after: Mapping[str, float] | None = None,
    ) -> None:
        self.jwks: JWKS = as_jwks(keys)
        self.roles: dict[str, frozenset[str]] = {}
        for kid, granted in roles.items():
            if kid not in self.jwks:
                raise PolicyError(f"approver role given for key {kid[:60]!r}, which is not in the approvers' keys")
            self.roles[kid] = frozenset([granted] if isinstance(granted, str) else granted)
        self.not_after: dict[str, float] = {}
        for kid, until in (not_after or {}).items():
            if kid not in self.jwks or isinstance(until, bool) or not isinstance(until, int | float) \
                    or not math.isfinite(until):
                raise PolicyError(f"not_after for key {kid[:60]!r} must be a time (epoch seconds) of a listed key")
            self.not_after[kid] = float(until)

    @classmethod
    def of(cls, by_role: Mapping[str, Iterable[Any]]) -> Approvers:
        """From ``{"release-approver": [signer_or_public_key, ...], ...}``."""
        roles: dict[str, set[str]] = {}
        items = []
        for role, holders in by_role.items():
            for holder in holders:
                jwks = as_jwks(holder)
                items.append(jwks)
                for jwk in jwks:
                    roles.setdefault(jwk.kid, set()).add(role)
        return cls(JWKS.of(*items), roles)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Approvers:
        """From the file form (see the module docstring); PolicyError when malformed."""
        entries = data.get("approvers") if isinstance(data, Mapping) else None
        if not isinstance(entries, list):
            raise PolicyError("approvers file must be {'approvers': [{'jwk': {...}, 'roles': [...]}]}")
        jwks: list[Any] = []
        roles: dict[str, list[str]] = {}
        ends: dict[str, float] = {}
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("roles"), list):
                raise PolicyError("each approver needs a 'jwk' object and a 'roles' list")
            unknown = set(entry) - {"jwk", "roles", "not_after"}
            if unknown:
                raise PolicyError(f"approver entry has unknown field(s) {sorted(unknown)}")
            key_set = as_jwks(entry.get("jwk") or {})
            jwks.append(key_set)
            for jwk in key_set:
                roles[jwk.kid] = [str(r) for r in entry["roles"]]
                if "not_after" in entry:
                    ends[jwk.kid] = entry["not_after"]
        return cls(JWKS.of(*jwks), roles, ends)

    def to_dict(self) -> dict[str, Any]:
        entries = []
        for jwk in self.jwks:
            entry: dict[str, Any] = {"jwk": jwk.to_dict(), "roles": sorted(self.roles.get(jwk.kid, ()))}
            if jwk.kid in self.not_after:
                entry["not_after"] = self.not_after[jwk.kid]
            entries.append(entry)
        return {"approvers": entries}

    def roles_of(self, kid: str, at: float | None = None) -> frozenset[str]:
        """The roles `kid` holds at time `at` (epoch seconds; None: regardless of end dates)."""
        until = self.not_after.get(kid)
        if at is not None and until is not None and at > until:
            return frozenset()
        return self.roles.get(kid, frozenset())
