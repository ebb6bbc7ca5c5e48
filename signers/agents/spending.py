"""Payments through the gate: the passport's ``wallet`` and ``spend_limit``, checked per tool call.

A policy rule with ``payment = true`` marks a tool as a payment (an x402 ``pay``, a transfer).
The call's params name the asset (a token contract address), the amount (in the asset's
smallest unit, a decimal string or an integer) and optionally the payer; a rule's
``payment_params`` table renames them when a tool calls them otherwise::

    [agents.gate.servers.wallet.tools.pay]
    payment = true
    payment_params = { asset = "token", amount = "value", payer = "from" }

The passport must carry a ``wallet`` (the payer, when the call names one, must be it) and a
``spend_limit`` for the asset (`signers.eth.limits`); anything missing or malformed is a
refusal, never a pass. A limit per period (hour, day, ...) needs a `SpendLedger` to know
what was already spent; without one such a limit refuses, fail closed. The gate charges the
ledger only for a call it allows, under the ledger's lock, so two concurrent payments
cannot both fit under one remaining allowance.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import TokenInvalid
from ..eth.limits import PERIOD_SECONDS, SpendLimit, check_spend, spent_by_period
from .errors import PolicyError

__all__ = ["ADDRESS", "PAYMENT_PARAMS", "PERIOD_SECONDS", "MemorySpendLedger", "Payment", "SpendLedger", "check_wallet",
           "payment_of", "payment_params_of"]

PAYMENT_PARAMS: Mapping[str, str] = {"asset": "asset", "amount": "amount", "payer": "payer"}
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")  # an Ethereum address, any checksum case
_MAX_DIGITS = 78  # 2**256 has 78 decimal digits: no token amount is longer


@dataclass(frozen=True)
class Payment:
    """What one tool call would pay: `amount` of `asset`, from `payer` when the call names one."""

    asset: str
    amount: int
    payer: str | None = None


def payment_params_of(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """A rule's ``payment_params`` table as sorted pairs; PolicyError for an unknown or empty name."""
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: payment_params must be a table of asset / amount / payer param names")
    unknown = set(value) - set(PAYMENT_PARAMS)
    if unknown:
        raise PolicyError(f"{where}: payment_params: unknown field(s) {sorted(unknown)}; expected some of "
                          f"{sorted(PAYMENT_PARAMS)}")
    if not all(isinstance(v, str) and v for v in value.values()):
        raise PolicyError(f"{where}: payment_params values must be non-empty param names")
    return tuple(sorted({**PAYMENT_PARAMS, **value}.items()))


def payment_of(params: Mapping[str, Any], names: Sequence[tuple[str, str]] | None = None) -> Payment:
    """The payment a call's `params` describe; TokenInvalid when the asset or amount is missing or malformed."""
    field = dict(names or PAYMENT_PARAMS.items())
    asset, amount, payer = (params.get(field[k]) for k in ("asset", "amount", "payer"))
    if not isinstance(asset, str) or not asset or len(asset) > 200:
        raise TokenInvalid(f"a payment needs the asset in param {field['asset']!r}")
    if isinstance(amount, str) and amount.isascii() and amount.isdigit() and len(amount) <= _MAX_DIGITS:
        value = int(amount)
    elif isinstance(amount, int) and not isinstance(amount, bool) and 0 <= amount < 10**_MAX_DIGITS:
        value = amount
    else:
        raise TokenInvalid(f"a payment needs a non-negative whole amount in param {field['amount']!r}")
    if payer is not None and (not isinstance(payer, str) or not ADDRESS.match(payer)):
        raise TokenInvalid(f"param {field['payer']!r} must be an Ethereum address")
    return Payment(asset, value, payer)


def check_wallet(claims: Mapping[str, Any], payment: Payment) -> str:
    """The passport's wallet, which must be the payer when the call names one; TokenInvalid otherwise."""
    wallet = claims.get("wallet")
    if not isinstance(wallet, str) or not ADDRESS.match(wallet):
        raise TokenInvalid("the passport carries no wallet address: it grants no payments")
    if payment.payer is not None and payment.payer.lower() != wallet.lower():
        raise TokenInvalid(f"the payer {payment.payer} is not the passport's wallet {wallet}")
    return wallet


@runtime_checkable
class SpendLedger(Protocol):
    """What an agent already spent, per asset and period; `charge` checks and records in one step."""

    def spent(self, agent: str, asset: str, *, now: float | None = None) -> dict[str, int]:
        """Amounts of `asset` spent by `agent` in each period (hour, day, week, month) up to `now`."""
        ...

    def charge(self, agent: str, payment: Payment, limits: Sequence[SpendLimit], *, now: float | None = None) -> None:
        """Record `payment` if it fits every limit (SpendLimitExceeded otherwise, nothing recorded)."""
        ...


class MemorySpendLedger:
    """A process-local ledger of rolling windows (an hour is the last 3,600 s, a month 30 days).

    One gate process's view: replicas that must share an allowance need a shared ledger
    (this Protocol over a fleet store). Entries older than a month are dropped on use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], deque[tuple[float, int]]] = {}

    def _window(self, agent: str, asset: str, now: float) -> deque[tuple[float, int]]:
        entries = self._entries.setdefault((agent, asset.lower()), deque())
        while entries and entries[0][0] <= now - PERIOD_SECONDS["month"]:
            entries.popleft()
        return entries

    def _spent(self, agent: str, asset: str, now: float) -> dict[str, int]:
        return spent_by_period(self._window(agent, asset, now), now)

    def spent(self, agent: str, asset: str, *, now: float | None = None) -> dict[str, int]:
        with self._lock:
            return self._spent(agent, asset, time.time() if now is None else now)

    def charge(self, agent: str, payment: Payment, limits: Sequence[SpendLimit], *, now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._lock:
            check_spend(limits, payment.asset, payment.amount, self._spent(agent, payment.asset, at))
            self._window(agent, payment.asset, at).append((at, payment.amount))

    def __repr__(self) -> str:
        return f"MemorySpendLedger(agents={len({a for a, _ in self._entries})})"

