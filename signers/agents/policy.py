"""Gate policies: per server and per tool, from the ``[agents.gate]`` section of keyplane.toml.

```toml
[agents.gate]
issuer = "https://issuer.example"      # expected passport iss (optional)
jwks = "issuer-jwks.json"              # the issuer's keys, relative to this file (optional)
audience = "tools.example"             # expected passport aud (optional)

[agents.gate.defaults]                 # every server and tool inherits these
min_stage = "ACTIVE"                   # SUSPENDED / RETIRED never pass a min_stage
min_trust = 50
proof = true                           # proof of possession required

[agents.gate.servers.payments]
allow_unlisted = false                 # a tool not listed below is denied (the default)

[agents.gate.servers.payments.tools.transfer]
scopes = ["payments:write"]
min_trust = 80
action_token = true                    # an action token for this tool (and its params) required
action = "payments.transfer"           # the action name the token must carry (default: the tool)
code_hashes = ["sha256:..."]           # attested builds allowed to call it

[agents.gate.servers.wallet.tools.pay]
payment = true                         # a payment: the passport's wallet and spend_limit apply
payment_params = { amount = "value" }  # where the call's params hold asset / amount / payer
```

A ``[agents.lifecycle]`` table in the same file (see `Lifecycle.from_dict`) defines the
stages the policy names; ``[agents.autorevoke]`` is read by `AutoRevoke.from_config`.

Rule fields: ``min_stage``, ``min_trust``, ``scopes``, ``proof``, ``action_token``,
``action``, ``code_hashes``, ``payment``, ``payment_params`` (see `signers.agents.spending`). A tool's rule overrides its server's, which overrides the
defaults. Every mistake (an unknown field, a stage the lifecycle does not know, a wrong
type) is a `PolicyError` naming its place; nothing is half-loaded.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..jose import JWKS
from .errors import PolicyError
from .events import RejectionEvents, report_to
from .lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from .spending import payment_params_of

__all__ = ["AGENT_SECTIONS", "GatePolicy", "Rule", "ServerPolicy"]

AGENT_SECTIONS = frozenset({"gate", "lifecycle", "autorevoke"})  # the tables [agents.*] may hold

_UNSET: Any = None


@dataclass(frozen=True)
class Rule:
    """What a call must show; None means "inherit" (and, at the top, no requirement)."""

    min_stage: str | None = _UNSET
    min_trust: int | None = _UNSET
    scopes: tuple[str, ...] | None = _UNSET
    proof: bool | None = _UNSET
    action_token: bool | None = _UNSET
    action: str | None = _UNSET
    code_hashes: tuple[str, ...] | None = _UNSET
    payment: bool | None = _UNSET
    payment_params: tuple[tuple[str, str], ...] | None = _UNSET

    def over(self, base: Rule) -> Rule:
        """This rule's set fields on top of `base`."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str, lifecycle: Lifecycle) -> Rule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
        values: dict[str, Any] = {}
        if "min_stage" in data:
            values["min_stage"] = lifecycle.require_stage(data["min_stage"], f"{where}: min_stage")
        if "min_trust" in data:
            trust = data["min_trust"]
            if isinstance(trust, bool) or not isinstance(trust, int) or not 0 <= trust <= 100:
                raise PolicyError(f"{where}: min_trust must be an integer from 0 to 100")
            values["min_trust"] = trust
        for name in ("proof", "action_token", "payment"):
            if name in data:
                if not isinstance(data[name], bool):
                    raise PolicyError(f"{where}: {name} must be true or false")
                values[name] = data[name]
        if "action" in data:
            if not isinstance(data["action"], str) or not data["action"]:
                raise PolicyError(f"{where}: action must be a non-empty string")
            values["action"] = data["action"]
        for name in ("scopes", "code_hashes"):
            if name in data:
                items = data[name]
                if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
                    raise PolicyError(f"{where}: {name} must be a list of strings")
                values[name] = tuple(items)
        if "payment_params" in data:
            values["payment_params"] = payment_params_of(data["payment_params"], where)
        return cls(**values)


@dataclass(frozen=True)
class ServerPolicy:
    """One server's rule, its tools' rules, and whether unlisted tools are allowed."""

    rule: Rule = field(default_factory=Rule)
    tools: Mapping[str, Rule] = field(default_factory=dict)
    allow_unlisted: bool = False


@dataclass(frozen=True)
class GatePolicy:
    """Everything the gate enforces; see the module docstring for the TOML form."""

    servers: Mapping[str, ServerPolicy] = field(default_factory=dict)
    defaults: Rule = field(default_factory=Rule)
    issuer: str | None = None
    audience: str | None = None
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE
    issuer_keys: JWKS | None = None  # from ``jwks = "issuer-jwks.json"``, so ``Gate(policy)`` needs nothing else

    def rule_for(self, server: str, tool: str) -> Rule | None:
        """The effective rule for `tool` on `server`, or None when the policy does not allow it at all."""
        server_policy = self.servers.get(server)
        if server_policy is None:
            return None
        tool_rule = server_policy.tools.get(tool)
        if tool_rule is None and not server_policy.allow_unlisted:
            return None
        merged = server_policy.rule.over(self.defaults)
        return tool_rule.over(merged) if tool_rule is not None else merged

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
                  where: str = "[agents.gate]", base: Path | None = None) -> GatePolicy:
        """From the ``[agents.gate]`` table (already parsed); a ``jwks`` path is relative to `base`."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where} must be a table")
        known = {"issuer", "audience", "jwks", "defaults", "servers"}
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
        for name in ("issuer", "audience"):
            if name in data and (not isinstance(data[name], str) or not data[name]):
                raise PolicyError(f"{where}: {name} must be a non-empty string")
        defaults = Rule.from_dict(_table(data.get("defaults", {}), f"{where}.defaults"), f"{where}.defaults", lifecycle)
        servers: dict[str, ServerPolicy] = {}
        for name, table in _table(data.get("servers", {}), f"{where}.servers").items():
            place = f"{where}.servers.{name}"
            table = dict(_table(table, place))
            tools_table = _table(table.pop("tools", {}), f"{place}.tools")
            allow = table.pop("allow_unlisted", False)
            if not isinstance(allow, bool):
                raise PolicyError(f"{place}: allow_unlisted must be true or false")
            tools = {tool: Rule.from_dict(_table(t, f"{place}.tools.{tool}"), f"{place}.tools.{tool}", lifecycle)
                     for tool, t in tools_table.items()}
            servers[name] = ServerPolicy(Rule.from_dict(table, place, lifecycle), tools, allow)
        keys = _jwks(data["jwks"], base, where) if "jwks" in data else None
        return cls(servers, defaults, data.get("issuer"), data.get("audience"), lifecycle, keys)

    @classmethod
    def load(cls, path: str | Path, *, lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
             events: RejectionEvents | None = None) -> GatePolicy:
        """From a keyplane.toml's ``[agents.gate]`` section; PolicyError if it is missing or wrong (reported to `events`)."""
        try:
            return cls._load(path, lifecycle)
        except PolicyError as e:
            report_to(events, "policy", e, context={"path": str(path)})
            raise

    @classmethod
    def _load(cls, path: str | Path, lifecycle: Lifecycle) -> GatePolicy:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise PolicyError(f"cannot read gate policy {path}: {e}") from e
        agents = data.get("agents")
        if not isinstance(agents, dict) or "gate" not in agents:
            raise PolicyError(f"{path} has no [agents.gate] section")
        unknown = set(agents) - AGENT_SECTIONS
        if unknown:
            raise PolicyError(f"{path}: unknown section(s) [agents.{sorted(unknown)[0]}]; expected {sorted(AGENT_SECTIONS)}")
        if "lifecycle" in agents and lifecycle is DEFAULT_LIFECYCLE:
            lifecycle = Lifecycle.from_dict(agents["lifecycle"], where=f"{path}: [agents.lifecycle]")
        return cls.from_dict(agents["gate"], lifecycle=lifecycle, where=f"{path}: [agents.gate]",
                             base=Path(path).parent)


def _jwks(value: Any, base: Path | None, where: str) -> JWKS:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{where}: jwks must be the path of the issuer's JWKS file")
    path = Path(value) if base is None or Path(value).is_absolute() else base / value
    try:
        return JWKS.load(path)
    except ConfigError as e:  # unreadable, not JSON, or no usable key
        raise PolicyError(f"{where}: jwks: {e}") from e


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be a table")
    return value
