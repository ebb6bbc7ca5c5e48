"""`RedisSpendLedger`: the spend ledger in Redis, one sorted set per agent and asset.

``<prefix>spend:<agent>:<asset>`` holds one member per payment (``<random id>:<amount>``,
scored by its time). A charge is an optimistic transaction: ``WATCH`` the set, read the last
month, check the limits in Python (amounts stay exact integers, which Lua's doubles would
not), then ``MULTI`` / ``ZADD`` / ``EXEC``; a concurrent charge for the same set makes
``EXEC`` fail and the charge is re-read and re-checked. Durability is the server's AOF
policy, as `RedisState.features` states it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..errors import BackendUnavailable, StateCorrupt
from ..sdk import require
from ..translation import translated
from .redis_errors import redis_errors
from .spend_ledger import MONTH, Entries, StoreSpendLedger

__all__ = ["RedisSpendLedger"]

_ATTEMPTS = 100  # concurrent charges of one agent and asset that may win before this one gives up


class RedisSpendLedger(StoreSpendLedger):
    """The spend ledger contract in Redis; thread-safe (redis-py's pool)."""

    def __init__(self, client: Any, prefix: str, uri: str) -> None:
        self._client = client
        self._prefix = prefix
        self.what = f"spend ledger {uri}"

    def _key(self, agent: str, asset: str) -> str:
        return f"{self._prefix}spend:{len(agent)}:{agent}:{asset}"

    def _entries(self, agent: str, asset: str, since: float) -> Entries:
        with translated(redis_errors, self.what):
            return _parsed(self._client.zrangebyscore(self._key(agent, asset), f"({since}", "+inf", withscores=True))

    def _record(self, agent: str, asset: str, at: float, amount: int, check: Callable[[Entries], None]) -> None:
        watch_error = require("redis.exceptions", "redis", "Redis state store").WatchError
        key = self._key(agent, asset)
        with translated(redis_errors, self.what):
            for _ in range(_ATTEMPTS):
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(key)
                        check(_parsed(pipe.zrangebyscore(key, f"({at - MONTH}", "+inf", withscores=True)))
                        pipe.multi()
                        pipe.zremrangebyscore(key, "-inf", at - MONTH)
                        pipe.zadd(key, {f"{os.urandom(8).hex()}:{amount}": at})
                        pipe.expire(key, MONTH + 3600)
                        pipe.execute()
                        return
                    except watch_error:
                        continue  # another charge of this agent and asset won: read and check again
        raise BackendUnavailable(f"{self.what}: {_ATTEMPTS} concurrent charges won before this one")


def _parsed(rows: list[tuple[Any, float]]) -> Entries:
    entries = []
    for member, score in rows:
        text = member.decode() if isinstance(member, bytes) else str(member)
        _, _, amount = text.partition(":")
        if not amount.isdigit():
            raise StateCorrupt("a spend ledger entry in Redis is not <id>:<amount>")
        entries.append((float(score), int(amount)))
    return entries
