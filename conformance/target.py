"""What the harness is pointed at: a store URI plus everything needed to judge it.

A Target is plain data (picklable, JSON-able) because the threaded checks re-open the
store from it in a child process: the URI, `env` and `plugins` must be enough there.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from signers.errors import ConfigError, KeyplaneError
from signers.registry import register
from signers.secrets import resolve_secret
from signers.uri import parse_uri

from .specs import Spec, default_specs, parse_spec, with_halves

__all__ = ["Target", "environment", "load_plugins"]

# URI attributes that name where a secret lives; the harness resolves them to watch for leaks.
_SOURCE_ATTRIBUTE = re.compile(r"^[a-z0-9-]+-source$")


@dataclass(frozen=True)
class Target:
    """A store under test.

    `specs` limits the key specs judged (default: every KeySpec, or every composite variant
    for a ``composite:`` store; those the store does not claim must be refused with
    AlgorithmNotSupported). `secrets` are strings that must never
    show up in logs, reprs or error texts; secrets named by the URI's ``*-source``
    attributes are added automatically. `env` is extra environment for child processes
    (and is set in this process while the harness runs). `stubbed` names specs judged
    elsewhere (e.g. with the SDK's stubber) and why. `plugins` maps a URI scheme to
    ``"module:Class"``, registered in this process and in every child.

    `secret_labels` says where each of `secrets` came from (e.g. "--secret-env VAULT_TOKEN"),
    for the report, which never shows a value. `page` is how many extra keys the listing
    check creates (more than one page of most services). `signing_latency` (seconds per
    signature) and `workload` (signatures per thread) override what the concurrency checks
    measure and derive, for devices slower than the defaults assume. `loop_stall` is the
    longest the event loop may stall while 64 `sign_async` run. `verify_sample` is the share
    of the concurrency checks' signatures verified (1.0: every one).
    """

    uri: str
    name: str | None = None
    specs: Sequence[Spec] | None = None
    bad_credentials_uri: str | None = None
    unreachable_uri: str | None = None
    secrets: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    stubbed: Mapping[Spec, str] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)
    key_prefix: str = "kpconf"
    secret_labels: Sequence[str] = ()
    page: int = 25
    signing_latency: float | None = None
    workload: int | None = None
    loop_stall: float = 0.1
    verify_sample: float = 1.0

    def to_job(self) -> dict[str, Any]:
        """This target as JSON for a worker process (secrets travel on the worker's stdin only)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["specs"] = None if self.specs is None else [parse_spec(s).value for s in self.specs]
        data["stubbed"] = {parse_spec(k).value: v for k, v in self.stubbed.items()}
        for name in ("secrets", "secret_labels"):
            data[name] = list(data[name])
        data["env"], data["plugins"] = dict(self.env), dict(self.plugins)
        return data

    @classmethod
    def from_job(cls, data: Mapping[str, Any]) -> Target:
        values = dict(data)
        values["stubbed"] = {parse_spec(k): v for k, v in values.get("stubbed", {}).items()}
        return cls(**values)

    @property
    def scheme(self) -> str:
        return parse_uri(self.uri).scheme

    @property
    def display_name(self) -> str:
        return self.name or self.scheme

    @property
    def public_uri(self) -> str:
        """The URI with any inline secret value removed (safe to print in a report)."""
        return str(parse_uri(self.uri))

    def spec_list(self) -> list[Spec]:
        return default_specs(self.uri) if self.specs is None else [parse_spec(s) for s in self.specs]

    def all_secrets(self) -> list[str]:
        """`secrets` plus the values behind the URIs' ``*-source`` attributes (where resolvable)."""
        return [value for _, value in self.secret_sources()]

    def uri_names_a_source(self) -> bool:
        """Whether the store URI (or, for a composite, a half's URI) names where its secret lives (``*-source``)."""
        return any(_SOURCE_ATTRIBUTE.match(name) for uri in with_halves(self.uri) for name, _ in _attributes(uri))

    def secret_sources(self) -> list[tuple[str, str]]:
        """(where it came from, value) for every secret to watch for; the label never holds the value."""
        found: list[tuple[str, str]] = []
        for index, secret in enumerate(self.secrets):
            if secret and secret not in (v for _, v in found):
                label = self.secret_labels[index] if index < len(self.secret_labels) else f"Target.secrets[{index}]"
                found.append((label, secret))
        for which, given in (("store URI", self.uri), ("bad-credentials URI", self.bad_credentials_uri)):
            for name, value in (pair for uri in with_halves(given or "") for pair in _attributes(uri)):
                if _SOURCE_ATTRIBUTE.match(name):
                    try:
                        with environment(self.env):
                            secret = resolve_secret(value, name).reveal()
                    except KeyplaneError:
                        continue  # an unresolvable source simply adds nothing to watch for
                    if secret and secret not in (v for _, v in found):
                        found.append((f"{name}={value} ({which})", secret))
        return found


def _attributes(uri: str) -> list[tuple[str, str]]:
    """Every (name, value) a URI carries (path attributes and query); none when it does not parse."""
    try:
        parsed = parse_uri(uri)
    except ConfigError:
        return []
    return list({**parsed.attributes, **parsed.query}.items())


def load_plugins(plugins: Mapping[str, str]) -> None:
    """Register ``scheme -> "module:Class"`` back ends in this process."""
    for scheme, spec in plugins.items():
        module_name, colon, attr = spec.partition(":")
        if not colon or not module_name or not attr:
            raise ConfigError(f"plugin for {scheme!r} must be 'module:Class', not {spec!r}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(f"plugin module {module_name!r} for {scheme!r} failed to import: {e}") from e
        obj = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError as e:
                raise ConfigError(f"plugin {spec!r}: {module_name} has no {attr!r}") from e
        register(scheme, obj)


class environment:
    """Temporarily set environment variables (restored on exit)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for name, value in self._env.items():
            self._saved[name] = os.environ.get(name)
            os.environ[name] = value

    def __exit__(self, *exc: object) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

