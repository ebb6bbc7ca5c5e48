"""What the harness is pointed at: a store URI plus everything needed to judge it.

A Target is plain data (picklable, JSON-able) because the threaded checks re-open the
store from it in a child process: the URI, `env` and `plugins` must be enough there.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from signers.algorithms import KeySpec
from signers.errors import ConfigError, KeyplaneError
from signers.registry import register
from signers.secrets import resolve_secret
from signers.uri import parse_uri

__all__ = ["Target", "environment", "load_plugins"]

# URI attributes that name where a secret lives; the harness resolves them to watch for leaks.
_SOURCE_ATTRIBUTE = re.compile(r"^[a-z0-9-]+-source$")


@dataclass(frozen=True)
class Target:
    """A store under test.

    `specs` limits the key specs judged (default: every KeySpec; those the store does not
    claim must be refused with AlgorithmNotSupported). `secrets` are strings that must never
    show up in logs, reprs or error texts; secrets named by the URI's ``*-source``
    attributes are added automatically. `env` is extra environment for child processes
    (and is set in this process while the harness runs). `stubbed` names specs judged
    elsewhere (e.g. with the SDK's stubber) and why. `plugins` maps a URI scheme to
    ``"module:Class"``, registered in this process and in every child.
    """

    uri: str
    name: str | None = None
    specs: Sequence[KeySpec] | None = None
    bad_credentials_uri: str | None = None
    unreachable_uri: str | None = None
    secrets: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    stubbed: Mapping[KeySpec, str] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)
    key_prefix: str = "kpconf"

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

    def spec_list(self) -> list[KeySpec]:
        return list(KeySpec) if self.specs is None else [KeySpec.parse(s) for s in self.specs]

    def all_secrets(self) -> list[str]:
        """`secrets` plus the values behind the URIs' ``*-source`` attributes (where resolvable)."""
        found = [s for s in self.secrets if s]
        for uri in (self.uri, self.bad_credentials_uri):
            if uri is None:
                continue
            try:
                parsed = parse_uri(uri)
            except ConfigError:
                continue
            for name, value in {**parsed.attributes, **parsed.query}.items():
                if _SOURCE_ATTRIBUTE.match(name):
                    try:
                        with environment(self.env):
                            secret = resolve_secret(value, name).reveal()
                    except KeyplaneError:
                        continue  # an unresolvable source simply adds nothing to watch for
                    if secret and secret not in found:
                        found.append(secret)
        return found


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

