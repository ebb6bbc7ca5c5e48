"""What every state engine offers: the `StateBackend` contract and its declared features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..closing import Closing
from ..errors import ConfigError

__all__ = ["StateBackend", "StoreFeatures"]


@dataclass(frozen=True)
class StoreFeatures:
    """What an engine guarantees, stated so an operator knows what "durable" means on it.

    `durability` is a sentence (e.g. Redis's AOF policy as configured on the server);
    `push` says whether revocations reach subscribed verifiers without polling.
    """

    engine: str
    durability: str
    push: bool
    shared: bool  # usable by several hosts at once


class StateBackend(Closing):
    """One engine connection (pool); hands out the stores that live in it.

    Subclasses implement `from_uri` and the store kinds they hold; a kind the engine does
    not offer raises ConfigError naming an engine that does.
    """

    uri: str
    features: StoreFeatures

    @classmethod
    def from_uri(cls, uri: str) -> StateBackend:  # pragma: no cover - abstract
        raise NotImplementedError

    def revocations(self) -> Any:
        """A RevocationStore (see signers.revocation) in this engine."""
        raise ConfigError(f"{type(self).__name__} holds no revocation store")

    def audit_log(self, name: str = "default") -> Any:
        """The audit log called `name` (an AuditLog, one linear chain) in this engine."""
        raise ConfigError(f"{type(self).__name__} holds no audit log; use sqlite: or postgresql:")

    def replay_cache(self) -> Any:
        """A ReplayCache: single-use ids (nonces, jtis) consumed atomically, forgotten after their expiry."""
        raise ConfigError(f"{type(self).__name__} holds no replay cache")

    def agent_registry(self, verify: Callable[[list[str], str], Any]) -> Any:
        """An AgentRegistryStore (see signers.stores.agent_registry): agents' transition histories,
        append-only by compare-and-set, each verified with `verify(tokens, agent)` on every read."""
        raise ConfigError(f"{type(self).__name__} holds no agent registry")

    def spend_ledger(self) -> Any:
        """A SpendLedger (signers.agents.spending): payments per agent and asset, charged atomically."""
        raise ConfigError(f"{type(self).__name__} holds no spend ledger")

    def allocate_index(self, list_uri: str) -> int:
        """The next unused index of a status list, unique across replicas (never from a local counter)."""
        raise ConfigError(f"{type(self).__name__} cannot allocate status list indices; use postgresql: or redis:")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri!r})"
