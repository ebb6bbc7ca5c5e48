"""The ``[server]`` section of keyplane.toml: what `keyplane serve` runs with.

```toml
[keys.issuer]
uri = "hashivault://?addr=https://bao:8200&mount=transit&token-source=env:BAO_TOKEN#issuer"

[server]
listen = "127.0.0.1:8400"             # the default
issuer = "https://keyplane.example"   # the iss of everything it signs
key = "issuer"                        # signing key: a [keys] name or a URI (it never leaves its back end)
previous_keys = ["file:/var/lib/keyplane/keys?...#issuer-2025"]   # rotated out, still in the JWKS
state = "sqlite:///var/lib/keyplane/state.db"    # revocations + audit chain; default: beside this file
agents = "/var/lib/keyplane/agents"   # agent registry (the `keyplane agent` layout); default: ./agents beside it
# registry = "postgresql://keyplane@db/keyplane?password-source=env:PGPASSWORD"  # instead of `agents`: the
#            agent registry in a state store (sqlite:/postgresql:/redis:), shared by every replica
admin_token_source = "env:KEYPLANE_ADMIN_TOKEN"

[server.callers.billing]
token_source = "env:BILLING_TOKEN"
scopes = ["passports:issue", "verify"]

[server.webhooks.ops]
url = "https://ops.example/keyplane"
events = ["agent.revoked", "gate.denied"]

[server.ca]                            # optional: certificates from CSRs, CRLs
key = "ca"
certificate = "/var/lib/keyplane/ca.pem"

[server.status_list]                   # optional: IETF Token Status List
size = 65536
```

The gate policy is the ``[agents.gate]`` section and the auto-revoke policy
``[agents.autorevoke]`` (see `signers.agents`). Every unknown field is a ConfigError naming
its place; secrets come only from ``*_source`` references (``env:`` / ``file:``) and are
held as `Secret`, never printed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents.policy import GatePolicy
from ..config import Config
from ..errors import ConfigError
from ..secrets import Secret, resolve_secret

__all__ = ["SCOPES", "WEBHOOK_EVENTS", "CAConfig", "Caller", "ServerConfig", "StatusListConfig", "Webhook"]

SCOPES = frozenset({
    "passports:issue", "actions:issue", "verify", "revoke", "agents:register", "agents:advance", "agents:read",
    "gate", "certificates:issue", "receipts", "admin",
})
WEBHOOK_EVENTS = frozenset({"token.rejected", "agent.revoked", "agent.stage_changed", "gate.denied"})

_SERVER_FIELDS = frozenset({
    "listen", "issuer", "key", "previous_keys", "state", "audit_log", "agents", "registry", "admin_token_source",
    "max_body",
    "jwks_max_age", "revocation_list_ttl", "passport_ttl", "rate_limit", "rate_window", "callers", "webhooks",
    "ca", "status_list", "webhook_queue", "log_level",
})
_CALLER_FIELDS = frozenset({"token_source", "scopes"})
_WEBHOOK_FIELDS = frozenset({"url", "events", "timeout", "retries"})
_CA_FIELDS = frozenset({"key", "certificate", "leaf_days"})
_STATUS_FIELDS = frozenset({"size", "bits", "ttl"})


@dataclass(frozen=True)
class Caller:
    """A client of the /v1 API: its name (its identity in the audit chain), bearer token and scopes."""

    name: str
    token: Secret
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class Webhook:
    """A ``[server.webhooks.NAME]`` receiver: the events it gets, each delivery's timeout and retry budget."""

    name: str
    url: str
    events: frozenset[str]
    timeout: float = 5.0
    retries: int = 5


@dataclass(frozen=True)
class CAConfig:
    """``[server.ca]``: the CA key (a [keys] name or URI, used only through `sign`), its certificate
    file (PEM, the chain after it), and the lifetime in days of the leaves it issues from CSRs."""

    key: str
    certificate: Path
    leaf_days: int = 90


@dataclass(frozen=True)
class StatusListConfig:
    """``[server.status_list]``: indices per list, bits per status (1: valid/invalid, 2: also suspended),
    and the seconds a published ``statuslist+jwt`` stays fresh (its ``ttl``)."""

    size: int = 65536
    bits: int = 1
    ttl: float = 60.0


@dataclass(frozen=True)
class ServerConfig:
    """The parsed ``[server]`` section plus the file's keys and stores (`keyplane`)."""

    issuer: str
    key: str
    host: str = "127.0.0.1"
    port: int = 8400
    previous_keys: tuple[str, ...] = ()
    state: str = "sqlite:///var/lib/keyplane/state.db"
    audit_log: str = "server"
    agents: Path | str = Path("agents")  # a directory (the `keyplane agent` layout) or a state-store URI
    admin_token: Secret | None = None
    max_body: int = 64 * 1024
    jwks_max_age: int = 300
    revocation_list_ttl: int = 300
    passport_ttl: float = 3600.0
    rate_limit: int = 50  # requests per caller per window
    rate_window: float = 1.0
    webhook_queue: int = 1000
    log_level: str = "info"
    callers: Mapping[str, Caller] = field(default_factory=dict)
    webhooks: tuple[Webhook, ...] = ()
    ca: CAConfig | None = None
    status_list: StatusListConfig | None = None
    gate: GatePolicy | None = None
    autorevoke: Mapping[str, Any] | None = None
    keyplane: Config = field(default_factory=Config)

    def __repr__(self) -> str:
        return (f"ServerConfig(issuer={self.issuer!r}, listen={self.host}:{self.port}, key={self.key!r}, "
                f"callers={sorted(self.callers)}, webhooks={[w.name for w in self.webhooks]})")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServerConfig:
        """Read keyplane.toml; ConfigError naming the place of any mistake (nothing half-loaded)."""
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as e:
            raise ConfigError(f"cannot read config {file}: {type(e).__name__}: {e}") from None
        return cls.from_dict(data, file)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | None = None) -> ServerConfig:
        where = f"{path or 'config'}: [server]"
        server = data.get("server")
        if not isinstance(server, Mapping):
            raise ConfigError(f"{path or 'config'} has no [server] section")
        unknown = set(server) - _SERVER_FIELDS
        if unknown:
            raise ConfigError(f"{where} has unknown field(s) {sorted(unknown)}; known: {sorted(_SERVER_FIELDS)}")
        keyplane = Config.load(path) if path is not None else Config()
        for name in ("issuer", "key"):
            if not isinstance(server.get(name), str) or not server[name]:
                raise ConfigError(f"{where}: {name} = \"...\" is required")
        host, port = _listen(server.get("listen", "127.0.0.1:8400"), where)
        base = (path.parent if path is not None else Path.cwd()).resolve()  # relative paths: beside the file
        agents_table = data.get("agents", {})
        if not isinstance(agents_table, Mapping):
            raise ConfigError(f"{path or 'config'}: [agents] must be a table")
        gate = GatePolicy.from_dict(agents_table["gate"]) if "gate" in agents_table else None
        values: dict[str, Any] = {
            "issuer": server["issuer"], "key": server["key"], "host": host, "port": port,
            "previous_keys": tuple(_strings(server.get("previous_keys", []), f"{where}: previous_keys")),
            "state": _string(server.get("state", f"sqlite:///{base / 'keyplane-state.db'}"), f"{where}: state"),
            "audit_log": _string(server.get("audit_log", "server"), f"{where}: audit_log"),
            "agents": _agents(server, base, where),
            "admin_token": _secret(server.get("admin_token_source"), f"{where}: admin_token_source"),
            "callers": _callers(server.get("callers", {}), where),
            "webhooks": _webhooks(server.get("webhooks", {}), where),
            "ca": _ca(server.get("ca"), where), "status_list": _status(server.get("status_list"), where),
            "gate": gate, "autorevoke": agents_table.get("autorevoke"), "keyplane": keyplane,
            "log_level": _string(server.get("log_level", "info"), f"{where}: log_level"),
        }
        for name, low in (("max_body", 256), ("jwks_max_age", 0), ("revocation_list_ttl", 1), ("rate_limit", 1),
                          ("webhook_queue", 1)):
            if name in server:
                values[name] = _integer(server[name], f"{where}: {name}", low)
        for name in ("passport_ttl", "rate_window"):
            if name in server:
                values[name] = _number(server[name], f"{where}: {name}")
        return cls(**values)


def _agents(server: Mapping[str, Any], base: Path, where: str) -> Path | str:
    """The agent registry: ``registry = URI`` (a state store), else the ``agents`` directory (default ./agents)."""
    if "registry" not in server:
        return base / _string(server.get("agents", "agents"), f"{where}: agents")
    if "agents" in server:
        raise ConfigError(f"{where}: set either agents (a directory) or registry (a state-store URI), not both")
    uri = _string(server["registry"], f"{where}: registry")
    if "://" not in uri:
        raise ConfigError(f"{where}: registry is a state-store URI (sqlite:///path, postgresql://..., redis://...)")
    return uri


def _listen(value: Any, where: str) -> tuple[str, int]:
    text = _string(value, f"{where}: listen")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{where}: listen must be 'HOST:PORT', such as '127.0.0.1:8400'")
    return host.strip("[]"), int(port)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return list(value)


def _integer(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where} must be an integer of at least {low}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 10**9:
        raise ConfigError(f"{where} must be a positive number of seconds")
    return float(value)


def _secret(value: Any, where: str) -> Secret | None:
    if value is None:
        return None
    secret = resolve_secret(_string(value, where), where)
    if len(secret.reveal()) < 16:
        raise ConfigError(f"{where}: the token must be at least 16 characters")
    return secret


def _table(value: Any, where: str, known: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(value) - known
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    return value


def _callers(value: Any, where: str) -> dict[str, Caller]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.callers must be a table")
    callers: dict[str, Caller] = {}
    for name, raw in value.items():
        place = f"{where}.callers.{name}"
        table = _table(raw, place, _CALLER_FIELDS)
        if "token_source" not in table:
            raise ConfigError(f"{place} needs token_source = \"env:...\" (the token is never in the file)")
        scopes = frozenset(_strings(table.get("scopes", []), f"{place}: scopes"))
        if scopes - SCOPES:
            raise ConfigError(f"{place}: unknown scope(s) {sorted(scopes - SCOPES)}; known: {sorted(SCOPES)}")
        token = resolve_secret(_string(table["token_source"], f"{place}: token_source"), f"{place}: token_source")
        if len(token.reveal()) < 16:
            raise ConfigError(f"{place}: the caller token must be at least 16 characters")
        callers[name] = Caller(name, token, scopes)
    return callers


def _webhooks(value: Any, where: str) -> tuple[Webhook, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.webhooks must be a table")
    hooks = []
    for name, raw in value.items():
        place = f"{where}.webhooks.{name}"
        table = _table(raw, place, _WEBHOOK_FIELDS)
        url = _string(table.get("url"), f"{place}: url")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{place}: url must be http:// or https://")
        events = frozenset(_strings(table.get("events", sorted(WEBHOOK_EVENTS)), f"{place}: events"))
        if events - WEBHOOK_EVENTS:
            raise ConfigError(f"{place}: unknown event(s) {sorted(events - WEBHOOK_EVENTS)}; known: "
                              f"{sorted(WEBHOOK_EVENTS)}")
        hooks.append(Webhook(name, url, events, _number(table.get("timeout", 5.0), f"{place}: timeout"),
                             _integer(table.get("retries", 5), f"{place}: retries", 0)))
    return tuple(hooks)


def _ca(value: Any, where: str) -> CAConfig | None:
    if value is None:
        return None
    table = _table(value, f"{where}.ca", _CA_FIELDS)
    return CAConfig(_string(table.get("key"), f"{where}.ca: key"),
                    Path(_string(table.get("certificate"), f"{where}.ca: certificate")),
                    _integer(table.get("leaf_days", 90), f"{where}.ca: leaf_days", 1))


def _status(value: Any, where: str) -> StatusListConfig | None:
    if value is None:
        return None
    table = _table(value, f"{where}.status_list", _STATUS_FIELDS)
    return StatusListConfig(_integer(table.get("size", 65536), f"{where}.status_list: size", 8),
                            _integer(table.get("bits", 1), f"{where}.status_list: bits", 1),
                            _number(table.get("ttl", 60), f"{where}.status_list: ttl"))
