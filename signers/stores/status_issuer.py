"""`StatusListIssuer`: status-list indices and publication backed by the shared state.

Indices come from the StateBackend (unique across issuer replicas); a token's status is a
revocation of kind ``"status"`` with id ``"<list uri>#<index>"`` (value in the reason
field as ``status:<n>``), so revoking through any replica and publishing from any replica
agree. `publish()` signs the current list with the issuer's key (any back end).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..signer import Signer
from ..status_list import INVALID, StatusList, issue_status_list, status_claim
from .base import StateBackend

__all__ = ["StatusListIssuer"]

KIND = "status"


class StatusListIssuer:
    """Allocates indices in, revokes entries of, and publishes one status list."""

    def __init__(self, signer: Signer, state: StateBackend, *, uri: str, size: int = 1 << 20, bits: int = 1,
                 ttl: float = 60.0, lifetime: float = 3600.0) -> None:
        StatusList(size, bits)  # validates size and bits now, not at the first publish
        self._signer = signer
        self._state = state
        self._revocations: Any = state.revocations()
        self.uri = uri
        self.size = size
        self.bits = bits
        self.ttl = ttl
        self.lifetime = lifetime

    def allocate(self) -> dict[str, Any]:
        """The ``status`` claim for a new token (a fresh index); ConfigError when the list is full."""
        index = self._state.allocate_index(self.uri)
        if index >= self.size:
            raise ConfigError(f"status list {self.uri} is full ({self.size} entries): start a new list")
        return status_claim(index, self.uri)

    def set_status(self, index: int, status: int = INVALID, reason: str = "revoked") -> None:
        """Record a non-VALID status for `index` (first record wins, as every revocation)."""
        StatusList(self.size, self.bits).set(index, status)  # range and width checks
        self._revocations.revoke(f"{self.uri}#{index}", kind=KIND, reason=f"status:{status}:{reason}")

    def current(self) -> StatusList:
        """The list as the shared state has it now."""
        statuses = StatusList(self.size, self.bits)
        prefix = self.uri + "#"
        for record in self._revocations.list(kind=KIND):
            if record.id.startswith(prefix):
                status = int(record.reason.split(":", 2)[1]) if record.reason.startswith("status:") else INVALID
                statuses.set(int(record.id[len(prefix):]), status)
        return statuses

    def publish(self, now: float | None = None) -> str:
        """The signed ``statuslist+jwt`` for the current list."""
        return issue_status_list(self._signer, self.current(), uri=self.uri, ttl=self.ttl, lifetime=self.lifetime,
                                 now=now)
