"""`RedisAgentRegistry`: agents' histories as Redis lists, each append one Lua script.

An agent's history is the list ``<prefix>agents:history:<agent>``, one JSON row
(``seq``, ``prev``, ``hash``, ``token``) an entry; the script checks the list's length and
its last row's hash against what the append names, then ``RPUSH``es, all inside Redis's one
script execution, so two replicas cannot both extend the same head. The approvers document
is the list ``<prefix>agents:approvers`` (version = position), replaced the same way.
Durability is the server's AOF policy, as `RedisState.features` states it: with
``appendfsync everysec`` about a second of acknowledged appends can be lost in a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import StateCorrupt
from ..translation import translated
from .agent_registry import GENESIS, AgentRegistryStore, HistoryRow
from .redis_errors import redis_errors

__all__ = ["RedisAgentRegistry"]

_APPEND = """
local n = redis.call('LLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) - 1 then return 0 end
if n == 0 then
  if ARGV[2] ~= ARGV[5] then return 0 end
else
  local ok, last = pcall(cjson.decode, redis.call('LINDEX', KEYS[1], -1))
  if not ok or type(last) ~= 'table' or last['hash'] ~= ARGV[2] then return 0 end
end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""
_PUT = """
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) - 1 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
"""


class RedisAgentRegistry(AgentRegistryStore[Any]):
    """The agent registry contract in Redis; thread-safe (redis-py's pool)."""

    def __init__(self, client: Any, prefix: str, uri: str, verify: Callable[[list[str], str], Any]) -> None:
        super().__init__(verify)
        self._client = client
        self._history = f"{prefix}agents:history:"
        self._names_key = f"{prefix}agents:names"
        self._approvers = f"{prefix}agents:approvers"
        self._append = client.register_script(_APPEND)
        self._put = client.register_script(_PUT)
        self.uri = uri
        self.what = f"agent registry {uri}"

    def _rows(self, agent: str) -> list[HistoryRow]:
        with translated(redis_errors, f"reading the history of {agent!r}"):
            entries = self._client.lrange(self._history + agent, 0, -1)
        rows = []
        for position, entry in enumerate(entries, start=1):
            try:
                data = json.loads(entry)
                rows.append(HistoryRow(int(data["seq"]), str(data["prev"]), str(data["hash"]), str(data["token"])))
            except (ValueError, TypeError, KeyError) as e:
                raise StateCorrupt(f"{self.what}: transition {position} of {agent!r} is not a readable row") from e
        return rows

    def _insert(self, agent: str, row: HistoryRow) -> bool:
        entry = json.dumps({"seq": row.seq, "prev": row.prev, "hash": row.hash, "token": row.token})
        with translated(redis_errors, f"appending to the history of {agent!r}"):
            return bool(self._append(keys=[self._history + agent, self._names_key],
                                     args=[row.seq, row.prev, entry, agent, GENESIS]))

    def _names(self) -> list[str]:
        with translated(redis_errors, "listing agents"):
            return [name.decode() for name in self._client.smembers(self._names_key)]

    def _document(self) -> tuple[int, str | None]:
        with translated(redis_errors, "reading the approvers document"):
            pipe = self._client.pipeline(transaction=True)
            pipe.llen(self._approvers)
            pipe.lindex(self._approvers, -1)
            length, text = pipe.execute()
        return (int(length), text.decode()) if text is not None else (0, None)

    def _insert_document(self, version: int, text: str) -> bool:
        with translated(redis_errors, "storing the approvers document"):
            return bool(self._put(keys=[self._approvers], args=[version, text]))

    def __repr__(self) -> str:
        return f"RedisAgentRegistry(uri={self.uri!r})"
