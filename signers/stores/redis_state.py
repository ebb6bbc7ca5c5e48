"""Redis state (redis-py): revocations with stream push, the replay cache and the agent registry.

A revocation is one field of a hash keyed by ``kind`` and ``id`` (``HSETNX``: the first record
wins) plus one entry in a stream, written together by a Lua script, so a verifier reading the
stream (``XREAD BLOCK``: push, and resumable after a disconnect from the last id it saw)
never misses one. Redis is as durable as its server is configured to be: `features`
reads ``appendonly`` / ``appendfsync`` at open and says what an acknowledged write survives.
Audit logs need a linear, durable chain: they belong on PostgreSQL or SQLite, not here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from ..clock import utc
from ..closing import Closing
from ..errors import ConfigError
from ..revocation import Revocation
from ..sdk import require
from ..secrets import resolve_secret
from ..translation import translated
from ..uri_options import checked_uri
from .base import StateBackend, StoreFeatures
from .redis_agents import RedisAgentRegistry
from .redis_errors import redis_errors
from .redis_spend import RedisSpendLedger

__all__ = ["RedisReplayCache", "RedisRevocationStore", "RedisState", "redis_errors"]

_QUERY = {"password-source", "timeout", "connect-timeout", "prefix", "ssl-ca-certs", "ssl-certfile", "ssl-keyfile"}
Changes = list[tuple[str, Revocation]]  # module level: the class's `list` method would shadow the builtin
_REVOKE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'f', ARGV[1])
end
return redis.call('HGET', KEYS[1], ARGV[1])
"""


def _field(kind: str, id: str) -> str:
    for name, value in (("id", id), ("kind", kind)):
        if not isinstance(value, str) or not value or len(value) > 1024 or "\x00" in value:
            raise ConfigError(f"revocation {name} must be a non-empty string of at most 1024 characters")
    return f"{kind}\x00{id}"


def _record(text: Any) -> Revocation:
    data = json.loads(text)
    return Revocation(data["id"], data["kind"], data["reason"], datetime.fromisoformat(data["revoked_at"]))


class RedisRevocationStore(Closing):
    """Revocations in Redis; the contract of `signers.revocation`, with stream push. Thread-safe."""

    push = True

    def __init__(self, client: Any, prefix: str, uri: str) -> None:
        self._client = client
        self._hash = f"{prefix}revocations"
        self._stream = f"{prefix}revocations:log"
        self._script = client.register_script(_REVOKE)
        self._lock = threading.Lock()
        self.uri = uri

    def revoke(self, id: str, *, kind: str = "jti", reason: str = "unspecified",
               at: datetime | None = None) -> Revocation:
        field = _field(kind, id)
        if not isinstance(reason, str) or not reason or len(reason) > 1024:
            raise ConfigError("revocation reason must be a non-empty string of at most 1024 characters")
        record = json.dumps({"id": id, "kind": kind, "reason": reason,
                             "revoked_at": utc(at, "revocation time").isoformat()})
        with translated(redis_errors, f"revoking {kind} {id[:80]!r}"):
            stored = self._script(keys=[self._hash, self._stream], args=[field, record])
        return _record(stored)

    def get(self, id: str, *, kind: str = "jti") -> Revocation | None:
        with translated(redis_errors, "reading a revocation"):
            text = self._client.hget(self._hash, _field(kind, id))
        return None if text is None else _record(text)

    def is_revoked(self, id: str, *, kind: str = "jti") -> bool:
        return self.get(id, kind=kind) is not None

    def list(self, kind: str | None = None) -> Iterator[Revocation]:
        with translated(redis_errors, "listing revocations"):
            values = self._client.hvals(self._hash)
        records = [_record(v) for v in values]
        return iter(sorted((r for r in records if kind is None or r.kind == kind),
                           key=lambda r: (r.revoked_at, r.kind, r.id)))

    def head(self) -> str:
        """The newest stream id ("0-0" when nothing is revoked)."""
        with translated(redis_errors, "reading the revocation head"):
            last = self._client.xrevrange(self._stream, count=1)
        return last[0][0].decode() if last else "0-0"

    def changes_since(self, cursor: str, limit: int = 10_000) -> Changes:
        with translated(redis_errors, "reading new revocations"):
            entries = self._client.xrange(self._stream, min=f"({cursor}", count=limit)
            return self._resolve(entries)

    def wait_for_changes(self, cursor: str, timeout: float) -> Changes:
        """Block up to `timeout` s on the stream for entries after `cursor`; BackendUnavailable if Redis is lost."""
        with translated(redis_errors, "waiting for revocations"):
            answer = self._client.xread({self._stream: cursor}, block=max(1, int(timeout * 1000)), count=1000)
            entries = answer[0][1] if answer else []
            return self._resolve(entries)

    def _resolve(self, entries: Any) -> Changes:
        if not entries:
            return []
        fields = [e[1][b"f"] for e in entries]
        texts = self._client.hmget(self._hash, fields)
        return [(e[0].decode(), _record(t)) for e, t in zip(entries, texts, strict=True) if t is not None]

    def __repr__(self) -> str:
        return f"RedisRevocationStore(uri={self.uri!r})"


class RedisReplayCache:
    """`consume(key, expires_at)`: ``SET NX PXAT``, so a key is taken once until it expires."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}replay:"

    def consume(self, key: str, expires_at: float) -> bool:
        if not isinstance(key, str) or not key or len(key) > 1024:
            raise ConfigError("a replay-cache key is a non-empty string of at most 1024 characters")
        milliseconds = int(expires_at * 1000)
        with translated(redis_errors, "consuming a single-use id"):
            return bool(self._client.set(self._prefix + key, b"1", nx=True, pxat=max(milliseconds, 1)))


class RedisState(StateBackend):
    """``redis://[user@]host[:port][/db]`` (``rediss://`` for TLS)."""

    def __init__(self, uri: str) -> None:
        parsed, options = checked_uri(uri, schemes={"redis", "rediss"}, query=_QUERY)
        redis = require("redis", "redis", "Redis state store")
        user, _, hostport = (parsed.authority or "").rpartition("@")
        if ":" in user:
            raise ConfigError("redis: URI must not carry a password; use ?password-source=env:NAME")
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "6379")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("redis: URI needs host[:port] (redis://127.0.0.1:6379/0)")
        db = parsed.path.strip("/") or "0"
        if not db.isdigit() or int(db) > 10_000:
            raise ConfigError("redis: URI database must be a number (redis://host/0)")
        source = options.text("password-source")
        timeout = options.number("timeout", 5.0, minimum=0.05, maximum=600)
        tls = parsed.scheme == "rediss"
        kwargs: dict[str, Any] = {
            "host": host, "port": int(port), "db": int(db), "username": user or None,
            "password": resolve_secret(source, "password-source").reveal() if source else None,
            "socket_timeout": timeout + 2.0,  # XREAD BLOCK holds the socket up to `timeout`
            "socket_connect_timeout": options.number("connect-timeout", 5.0, minimum=0.05, maximum=300),
            "ssl": tls, "health_check_interval": 10,
        }
        if tls:
            kwargs.update({k.replace("-", "_"): v for k in ("ssl-ca-certs", "ssl-certfile", "ssl-keyfile")
                           if (v := options.text(k)) is not None})
        self.uri = str(parsed)
        self._prefix = options.text("prefix", "keyplane:") or "keyplane:"
        self._client = redis.Redis(**kwargs)
        with translated(redis_errors, f"connecting to {self.uri}"):
            self._client.ping()
        self.features = StoreFeatures("redis", self._durability(), push=True, shared=True)

    def _durability(self) -> str:
        try:
            config = self._client.config_get("append*")
        except Exception:  # managed Redis often forbids CONFIG: say so rather than guess
            return "unknown: the server does not allow CONFIG GET; check its AOF settings"
        aof = config.get("appendonly", b"no")
        fsync = config.get("appendfsync", b"everysec")
        aof = aof.decode() if isinstance(aof, bytes) else str(aof)
        fsync = fsync.decode() if isinstance(fsync, bytes) else str(fsync)
        if aof != "yes":
            return "not durable: AOF is off; a restart loses writes since the last RDB snapshot"
        return {"always": "AOF fsync always: an acknowledged write survives a crash",
                "everysec": "AOF fsync everysec: up to about 1 s of acknowledged writes can be lost in a crash",
                }.get(fsync, f"AOF fsync {fsync}: the OS decides when writes reach the disk")

    @classmethod
    def from_uri(cls, uri: str) -> RedisState:
        return cls(uri)

    def revocations(self) -> RedisRevocationStore:
        return RedisRevocationStore(self._client, self._prefix, self.uri)

    def replay_cache(self) -> RedisReplayCache:
        return RedisReplayCache(self._client, self._prefix)

    def agent_registry(self, verify: Callable[[list[str], str], Any]) -> RedisAgentRegistry:
        """The agent registry in this Redis (see `signers.stores.redis_agents`; durability as `features`)."""
        return RedisAgentRegistry(self._client, self._prefix, self.uri, verify)

    def spend_ledger(self) -> RedisSpendLedger:
        """The spend ledger in this Redis (see `signers.stores.redis_spend`; durability as `features`)."""
        return RedisSpendLedger(self._client, self._prefix, self.uri)

    def allocate_index(self, list_uri: str) -> int:
        """The next unused index of the status list at `list_uri` (``INCR``: unique across replicas)."""
        with translated(redis_errors, "allocating a status list index"):
            return int(self._client.incr(f"{self._prefix}status-index:{list_uri}")) - 1

    def close(self) -> None:
        self._client.close()
