"""The spend ledger kind: what each agent paid, per asset, shared by every gate of a fleet.

A gate (`signers.agents.spending`) asks the ledger to *charge* a payment: under the engine's
lock (SQLite's write lock, a PostgreSQL advisory lock per agent and asset, a Redis WATCH
transaction) the ledger reads the agent's payments of that asset in the last month, checks
the passport's limits against the rolling hour / day / week / month sums, and records the
payment only if every limit holds. Two replicas allowing payments for one agent at once
therefore cannot overspend one allowance. Entries older than a month are dropped on write.
Amounts are whole numbers of the asset's smallest unit, kept exactly (up to 2**256).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from ..clock import epoch
from ..errors import ConfigError
from ..eth.limits import PERIOD_SECONDS, SpendLimit, check_spend, spent_by_period

__all__ = ["MONTH", "StoreSpendLedger"]

MONTH = PERIOD_SECONDS["month"]
Entries = list[tuple[float, int]]


class StoreSpendLedger(ABC):
    """The `SpendLedger` Protocol of `signers.agents.spending` over one engine.

    Engines implement `_entries` (the payments since a time) and `_record` (under the
    engine's lock: read, call the check, insert). Raises ConfigError for a bad agent, asset
    or amount, SpendLimitExceeded when a limit would break (nothing recorded), and
    BackendUnavailable when the engine cannot be reached.
    """

    what: str

    def spent(self, agent: str, asset: str, *, now: float | None = None) -> dict[str, int]:
        at = epoch(now)
        return spent_by_period(self._entries(_agent(agent), _asset(asset), at - MONTH), at)

    def charge(self, agent: str, payment: Any, limits: Sequence[SpendLimit], *, now: float | None = None) -> None:
        at = epoch(now)
        amount = payment.amount
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < 2**256:
            raise ConfigError("a payment amount is a whole number from 0 to 2**256 - 1")

        def check(entries: Entries) -> None:
            check_spend(limits, payment.asset, amount, spent_by_period(entries, at))

        self._record(_agent(agent), _asset(payment.asset), at, amount, check)

    @abstractmethod
    def _entries(self, agent: str, asset: str, since: float) -> Entries:
        """The agent's payments of `asset` after `since`, as (time, amount)."""

    @abstractmethod
    def _record(self, agent: str, asset: str, at: float, amount: int, check: Callable[[Entries], None]) -> None:
        """Under the engine's lock: entries of the last month, `check(entries)` (it raises to refuse), insert."""

    def close(self) -> None:  # noqa: B027 - most engines' connections belong to their StateBackend
        """Release what this ledger holds itself (nothing, unless an engine says otherwise)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.what})"


def _agent(agent: Any) -> str:
    if not isinstance(agent, str) or not agent or len(agent) > 200:
        raise ConfigError("a spend ledger's agent id is a non-empty string of at most 200 characters")
    return agent


def _asset(asset: Any) -> str:
    if not isinstance(asset, str) or not asset or len(asset) > 200:
        raise ConfigError("a spend ledger's asset is a non-empty string of at most 200 characters")
    return asset.lower()  # an address in any checksum case is one asset
