"""`Passport`: what a verified passport says (its own module so proofs of possession can use it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..keys import PublicKey

__all__ = ["Passport"]


@dataclass(frozen=True)
class Passport:
    """A verified passport's contents."""

    sub: str
    name: str
    agent_key: PublicKey
    code_hash: str
    stage: str
    trust_score: int
    scopes: tuple[str, ...]
    iss: str | None
    jti: str
    issued_at: datetime
    expires_at: datetime
    issuer_kid: str
    claims: dict[str, Any]

    def has_scope(self, scope: str) -> bool:
        """True when the passport grants `scope`."""
        return scope in self.scopes
