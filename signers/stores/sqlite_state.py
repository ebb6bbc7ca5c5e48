"""``sqlite:///path``: today's single-machine stores behind the StateBackend contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..audit import SQLiteAuditLog
from ..errors import ConfigError
from ..revocation import SQLiteRevocationStore
from ..uri_options import checked_uri
from .base import StateBackend, StoreFeatures
from .sqlite_agents import SQLiteAgentRegistry
from .sqlite_spend import SQLiteSpendLedger

__all__ = ["SQLiteState"]


class SQLiteState(StateBackend):
    """A SQLite file for revocations; audit logs (``<file>.<name>.audit.db``), the agent registry
    (``<file>.agents.db``) and the spend ledger (``<file>.spend.db``) beside it."""

    def __init__(self, uri: str) -> None:
        parsed, _ = checked_uri(uri, schemes={"sqlite"})
        if parsed.authority not in (None, ""):
            raise ConfigError("sqlite: URI is sqlite:///absolute/path.db (three slashes, no host)")
        if not parsed.path or parsed.path.endswith("/"):
            raise ConfigError("sqlite: URI needs a file path (sqlite:///var/lib/keyplane/state.db)")
        self.path = Path(parsed.path)
        self.uri = str(parsed)
        self.features = StoreFeatures("sqlite", "WAL with synchronous=FULL: a returned write is fsynced",
                                      push=False, shared=False)
        self._stores: list[Any] = []

    @classmethod
    def from_uri(cls, uri: str) -> SQLiteState:
        return cls(uri)

    def revocations(self) -> SQLiteRevocationStore:
        store = SQLiteRevocationStore(self.path)
        self._stores.append(store)
        return store

    def audit_log(self, name: str = "default") -> SQLiteAuditLog:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError("an audit log name for sqlite: is letters, digits, '-' and '_'")
        log = SQLiteAuditLog(self.path.with_name(f"{self.path.name}.{name}.audit.db"))
        self._stores.append(log)
        return log

    def agent_registry(self, verify: Callable[[list[str], str], Any]) -> SQLiteAgentRegistry:
        registry = SQLiteAgentRegistry(self.path.with_name(f"{self.path.name}.agents.db"), verify)
        self._stores.append(registry)
        return registry

    def spend_ledger(self) -> SQLiteSpendLedger:
        ledger = SQLiteSpendLedger(self.path.with_name(f"{self.path.name}.spend.db"))
        self._stores.append(ledger)
        return ledger

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._stores.clear()
