"""Named keys and stores from ``keyplane.toml``, with environment overrides.

Operators pick back ends in a file instead of code:

```toml
[stores.hsm]
uri = "pkcs11:token=agents?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PKCS11_PIN"

[keys.ca]
store = "hsm"          # a key in a named store ...
name = "ca"
algorithm = "ES256"    # optional: the algorithm to sign with

[keys.deploy]
uri = "file:/var/lib/keyplane/deploy?password-source=env:KEYPLANE_PASSWORD"   # ... or a full URI
```

The file is ``--config`` / `Config.load(path)`, else ``$KEYPLANE_CONFIG``, else
``./keyplane.toml`` when present. ``KEYPLANE_KEY_<NAME>_URI``, ``KEYPLANE_KEY_<NAME>_ALGORITHM``
and ``KEYPLANE_STORE_<NAME>_URI`` override (or add) entries, so a deployment can change
one key without editing the file. Names are letters, digits, ``-`` and ``_``.

The layers above the core keep their settings in the same file, in sections they own and
validate themselves: ``[agents]`` (gate policies, the lifecycle, auto-revocation; read by
`signers.agents`) and ``[server]`` (``keyplane serve``). `Config.section(name)` hands
such a section over as a plain mapping; this module only checks that it is a table.

Every mistake is a ConfigError naming the place: an unknown section or field (a typo is
an error, never ignored), a ``uri`` that is not a URI (so a key cannot name itself or
another key and loop), a file nested too deeply to parse. The repr of a `Config` or
`KeyEntry` shows URIs with their secret-bearing attributes (``pin-value``, ...) removed.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .algorithms import SignatureAlgorithm
from .errors import ConfigError
from .uri import parse_uri, redacted

__all__ = ["OWNED_SECTIONS", "Config", "KeyEntry"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_STORE_FIELDS = frozenset({"uri"})
_KEY_FIELDS = frozenset({"uri", "store", "name", "algorithm"})
_MAX_DEPTH = 32  # tables and arrays inside each other: far more than any keyplane.toml needs
_CORE_SECTIONS = frozenset({"stores", "keys"})
# Sections owned (and validated) by a layer above the core: kept as raw tables for it.
OWNED_SECTIONS = frozenset({"agents", "server"})


def _checked_uri(value: object, where: str) -> str:
    """`value` if it is a key or store URI; ConfigError (not echoing it) otherwise."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: uri must be a string")
    if ":" not in value:
        raise ConfigError(f"{where}: uri must be a URI such as 'file:/path' or 'pkcs11:...', not a name")
    try:
        parse_uri(value)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return value


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


@dataclass(frozen=True)
class KeyEntry:
    """Where a named key lives: a full URI, or a store name plus the key's name in it."""

    name: str
    uri: str | None = None
    store: str | None = None
    key: str | None = None
    algorithm: SignatureAlgorithm | None = None

    def __repr__(self) -> str:
        uri = redacted(self.uri) if self.uri is not None else None
        return (f"KeyEntry(name={self.name!r}, uri={uri!r}, store={self.store!r}, key={self.key!r}, "
                f"algorithm={self.algorithm.value if self.algorithm else None!r})")


@dataclass
class Config:
    stores: dict[str, str] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    path: Path | None = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)  # [agents], [server]: raw, for their owners

    def __repr__(self) -> str:
        # The owned sections are named, never shown: their owners know which of their values are secret.
        stores = {name: redacted(uri) for name, uri in self.stores.items()}
        return (f"Config(path={self.path!r}, stores={stores!r}, keys={self.keys!r}, "
                f"sections={sorted(self.sections)!r})")

    def section(self, name: str) -> dict[str, Any]:
        """A copy of the ``[name]`` table owned by a layer above the core (``agents``, ``server``).

        An absent section is an empty mapping; the owner validates what it holds. Raises
        ConfigError for a name that is not one of `OWNED_SECTIONS` (a typo in the caller).
        """
        if name not in OWNED_SECTIONS:
            raise ConfigError(f"no configuration section [{name}]: the owned sections are {sorted(OWNED_SECTIONS)}")
        return copy.deepcopy(self.sections.get(name, {}))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
        """The configuration from `path` (else ``$KEYPLANE_CONFIG``, else ``./keyplane.toml``), with overrides.

        `environ` (default `os.environ`) supplies ``KEYPLANE_CONFIG`` and the ``KEYPLANE_KEY_*`` /
        ``KEYPLANE_STORE_*`` overrides. No file at all gives an empty configuration. Raises
        ConfigError for a missing file that was named, an unreadable, binary, malformed or too
        deeply nested one, an unknown section or field, or a uri that is not a URI.
        """
        env = os.environ if environ is None else environ
        chosen: Path | None = None
        if path is not None:
            chosen = Path(path)
            if not chosen.is_file():
                raise ConfigError(f"config file {chosen} does not exist")
        elif env.get("KEYPLANE_CONFIG"):
            chosen = Path(env["KEYPLANE_CONFIG"])
            if not chosen.is_file():
                raise ConfigError(f"KEYPLANE_CONFIG names {chosen}, which does not exist")
        elif Path("keyplane.toml").is_file():
            chosen = Path("keyplane.toml")
        data: dict[str, Any] = {}
        if chosen is not None:
            import tomllib  # only when a file is read: its parser was 5% of `import signers`

            try:
                data = tomllib.loads(chosen.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"config file {chosen} does not exist") from None
            except OSError as e:
                raise ConfigError(f"cannot read config {chosen}: {e.strerror or type(e).__name__}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"config {chosen} is not UTF-8 text") from None
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"config {chosen} is not valid TOML: {e}") from None
            except RecursionError:
                raise ConfigError(f"config {chosen} is nested too deeply to be a keyplane.toml") from None
            if _too_deep(data):  # the parser's own limit moves with the recursion limit: ours does not
                raise ConfigError(f"config {chosen} is nested too deeply to be a keyplane.toml")
        config = cls._from_dict(data, chosen)
        config._apply_environment(env)
        return config

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], path: Path | None) -> Config:
        where = str(path) if path else "config"
        unknown = set(data) - _CORE_SECTIONS - OWNED_SECTIONS
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {sorted(unknown)}; expected [stores.*], [keys.*], "
                              f"{', '.join(f'[{name}]' for name in sorted(OWNED_SECTIONS))}")
        config = cls(path=path)
        for name in sorted(OWNED_SECTIONS & set(data)):
            if not isinstance(data[name], Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            config.sections[name] = dict(data[name])
        for name, table in _tables(data.get("stores", {}), where, "stores").items():
            unknown = set(table) - _STORE_FIELDS
            if unknown:
                raise ConfigError(f"{where}: [stores.{name}] has unknown field(s) {sorted(unknown)}; "
                                  f"known: {sorted(_STORE_FIELDS)}")
            if "uri" not in table:
                raise ConfigError(f"{where}: [stores.{name}] needs uri = \"...\"")
            config.stores[name] = _checked_uri(table["uri"], f"{where}: [stores.{name}]")
        for name, table in _tables(data.get("keys", {}), where, "keys").items():
            config.keys[name] = _key_entry(name, table, where)
        for entry in config.keys.values():
            if entry.store is not None and entry.store not in config.stores:
                raise ConfigError(f"{where}: [keys.{entry.name}] names store {entry.store!r}, which is not defined")
        return config

    def _apply_environment(self, env: Mapping[str, str]) -> None:
        for var, value in env.items():
            if var.startswith("KEYPLANE_STORE_") and var.endswith("_URI") and len(var) > 19:
                self.stores[self._name_for(var[15:-4], self.stores)] = _checked_uri(value, var)
        for var, value in env.items():
            if not var.startswith("KEYPLANE_KEY_"):
                continue
            for suffix in ("_URI", "_ALGORITHM"):
                if var.endswith(suffix) and len(var) > 13 + len(suffix):
                    name = self._name_for(var[13 : -len(suffix)], self.keys)
                    entry = self.keys.get(name, KeyEntry(name))
                    if suffix == "_URI":
                        entry = KeyEntry(name, uri=_checked_uri(value, var), algorithm=entry.algorithm)
                    else:
                        entry = KeyEntry(name, entry.uri, entry.store, entry.key, SignatureAlgorithm.parse(value))
                    self.keys[name] = entry

    @staticmethod
    def _name_for(env_part: str, existing: Mapping[str, Any]) -> str:
        for name in existing:
            if _env_name(name) == env_part:
                return name
        return env_part.lower().replace("_", "-")

    def key(self, name: str) -> KeyEntry:
        """The entry for key `name`; ConfigError (naming the file) when there is none."""
        entry = self.keys.get(name)
        if entry is None:
            where = self.path or "the configuration (no keyplane.toml found)"
            raise ConfigError(f"no key named {name!r} in {where}")
        return entry

    def store_uri(self, name: str) -> str:
        """The URI of store `name`; ConfigError when there is none."""
        uri = self.stores.get(name)
        if uri is None:
            raise ConfigError(f"no store named {name!r} in {self.path or 'the configuration'}")
        return uri


def _too_deep(data: Any) -> bool:
    """True when tables / arrays nest more than `_MAX_DEPTH` levels (checked without recursion)."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > _MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _tables(value: Any, where: str, section: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{section}] must be a table")
    for name, table in value.items():
        if not _NAME.match(name) or not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [{section}.{name}] must be a table with a simple name")
    return dict(value)


def _key_entry(name: str, table: Mapping[str, Any], where: str) -> KeyEntry:
    unknown = set(table) - _KEY_FIELDS
    if unknown:
        raise ConfigError(f"{where}: [keys.{name}] has unknown field(s) {sorted(unknown)}; known: {sorted(_KEY_FIELDS)}")
    uri, store = table.get("uri"), table.get("store")
    if (uri is None) == (store is None):
        raise ConfigError(f"{where}: [keys.{name}] needs exactly one of uri = ... or store = ...")
    algorithm = table.get("algorithm")
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"{where}: [keys.{name}] store must be a store name (a string)")
    key = table.get("name", name)
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: [keys.{name}] name must be the key's name in its store (a string)")
    return KeyEntry(
        name,
        uri=_checked_uri(uri, f"{where}: [keys.{name}]") if uri is not None else None,
        store=store,
        key=key,
        algorithm=SignatureAlgorithm.parse(str(algorithm)) if algorithm is not None else None,
    )
