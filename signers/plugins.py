"""Entry points of one group, read without importing importlib.metadata.

`keyplane --help` lists the ``keyplane.commands`` plugins, so it must find them at every
start; importlib.metadata costs about 30 ms to import (email, zipfile, csv, ...) before it
reads a single file, most of the CLI's start. The installed metadata is plain files: each
distribution on ``sys.path`` has a ``*.dist-info`` (or ``*.egg-info``) directory whose
``entry_points.txt`` is the INI-like format of the PyPA entry-points specification. This
module reads those (one directory listing per path entry, one small file per distribution
that has entry points), first distribution of a name wins, as importlib.metadata does.
Zipped eggs and custom finders are not covered: `registry` (back ends) keeps using
importlib.metadata, which does cover them.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["PluginEntry", "entries"]

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
_VALUE = re.compile(r"^(?P<module>[\w.]+)\s*(?::\s*(?P<attr>[\w.]+))?\s*(?:\[[^\]]*\])?$")


@dataclass(frozen=True)
class PluginEntry:
    """One entry point: ``name = module:attr``; `load()` imports it (raises ImportError / AttributeError)."""

    name: str
    value: str

    def load(self) -> Any:
        match = _VALUE.match(self.value)
        if match is None:
            raise ImportError(f"malformed entry point value {self.value!r}")
        obj: Any = importlib.import_module(match["module"])
        for part in (match["attr"] or "").split(".") if match["attr"] else ():
            obj = getattr(obj, part)
        return obj


def entries(group: str, path: list[str] | None = None) -> list[PluginEntry]:
    """Every entry point in `group` of the distributions on `path` (default ``sys.path``), in path order."""
    seen: set[str] = set()
    found: list[PluginEntry] = []
    for directory in path if path is not None else sys.path:
        try:
            names = sorted(os.listdir(directory or "."))
        except OSError:
            continue
        for name in names:
            stem, dot, kind = name.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            distribution = re.sub(r"[-_.]+", "_", stem.split("-")[0]).lower()
            if distribution in seen:
                continue
            seen.add(distribution)
            found.extend(_read(os.path.join(directory or ".", name, "entry_points.txt"), group))
    return found


def _read(filename: str, group: str) -> list[PluginEntry]:
    try:
        with open(filename, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:  # no entry points (most distributions), or not readable
        return []
    out: list[PluginEntry] = []
    current = None
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        section = _SECTION.match(line)
        if section is not None:
            current = section["name"].strip()
            continue
        if current == group and "=" in line:
            name, _, value = line.partition("=")
            out.append(PluginEntry(name.strip(), value.strip()))
    return out
