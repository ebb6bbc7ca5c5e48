"""Spending limits an agent's passport grants (`spend_limit` claim), checked before signing a payment.

Claim shape (in a passport, next to ``wallet``)::

    "wallet": "0xAbC...",
    "spend_limit": [{"asset": "0x036C...", "max": "1000000", "period": "per-payment"}]

``max`` is in the asset's smallest unit (a decimal string, since JSON numbers lose
precision past 2**53). Only ``per-payment`` limits are enforced statelessly here; a period
such as ``day`` needs a spend ledger and is refused by `check_spend` unless the caller
passes what was already spent in that period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .errors import SpendLimitExceeded

__all__ = ["PERIOD_SECONDS", "SpendLimit", "check_spend", "spend_limits_from_claims", "spent_by_period"]

# Rolling windows a spend ledger counts: an hour is the last 3,600 s, a month the last 30 days.
PERIOD_SECONDS: Mapping[str, int] = {"hour": 3600, "day": 86_400, "week": 7 * 86_400, "month": 30 * 86_400}
_PERIODS = frozenset({"per-payment", *PERIOD_SECONDS})


@dataclass(frozen=True)
class SpendLimit:
    """At most `max_amount` of `asset` (smallest unit) per `period`."""

    asset: str
    max_amount: int
    period: str = "per-payment"

    def to_claim(self) -> dict[str, str]:
        return {"asset": self.asset, "max": str(self.max_amount), "period": self.period}


def spend_limits_from_claims(claims: Mapping[str, Any]) -> list[SpendLimit]:
    """The passport's spend limits; ConfigError for a malformed claim (an empty list when absent)."""
    raw = claims.get("spend_limit")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("claim 'spend_limit' must be a list")
    limits = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("asset"), str):
            raise ConfigError("each spend_limit entry needs an 'asset' string")
        period = item.get("period", "per-payment")
        text = item.get("max")
        if period not in _PERIODS or not isinstance(text, str) or not text.isdigit() or len(text) > 78:
            raise ConfigError("spend_limit 'max' must be a decimal string and 'period' one of " + ", ".join(sorted(_PERIODS)))
        limits.append(SpendLimit(item["asset"], int(text), period))
    return limits


def check_spend(limits: Iterable[SpendLimit], asset: str, amount: int, spent_in_period: Mapping[str, int] | None = None) -> None:
    """SpendLimitExceeded when paying `amount` of `asset` breaks a limit; an asset with no limit is refused too.

    Fail closed: a passport that grants limits for other assets grants nothing for this one.
    """
    relevant = [lim for lim in limits if lim.asset.lower() == asset.lower()]
    if not relevant:
        raise SpendLimitExceeded(f"the passport grants no spending of asset {asset}")
    for lim in relevant:
        already = 0
        if lim.period != "per-payment":
            if spent_in_period is None or lim.period not in spent_in_period:
                raise SpendLimitExceeded(f"a per-{lim.period} limit needs the amount already spent this {lim.period}")
            already = spent_in_period[lim.period]
        if already + amount > lim.max_amount:
            raise SpendLimitExceeded(
                f"payment of {amount} exceeds the {lim.period} limit of {lim.max_amount} for {asset}")


def spent_by_period(entries: Iterable[tuple[float, int]], now: float) -> dict[str, int]:
    """What `entries` (time, amount) add up to in each rolling period ending at `now`."""
    listed = list(entries)
    return {period: sum(a for t, a in listed if now - seconds < t <= now) for period, seconds in PERIOD_SECONDS.items()}
