"""Lazy, guarded imports of optional SDKs.

`import signers` and `keyplane --help` must not import any cloud SDK; back ends call
`require()` when a store is opened, and a missing SDK becomes a ConfigError that names
the extra to install instead of a bare ImportError.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConfigError

__all__ = ["require"]


def require(module: str, extra: str, backend: str) -> ModuleType:
    """Import `module` or raise ConfigError telling the user to install ``keyplane[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"the {backend} back end needs the Python package for '{module}': pip install 'keyplane[{extra}]'"
        ) from e
