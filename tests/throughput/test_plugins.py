"""signers.plugins reads entry points as importlib.metadata does, without importing it."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from signers.plugins import PluginEntry, entries


def _dist(root: Path, name: str, text: str) -> None:
    info = root / f"{name}.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(text, encoding="utf-8")


def test_it_finds_what_importlib_metadata_finds_here() -> None:
    for group in ("keyplane.commands", "keyplane.backends", "console_scripts"):
        ours = sorted((e.name, e.value) for e in entries(group))
        theirs = sorted((e.name, e.value) for e in entry_points(group=group))
        assert ours == theirs, group


def test_only_the_group_asked_for_and_the_first_distribution_of_a_name(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _dist(first, "kp_plugin-1.0", "[other]\nx = nope:x\n\n# comment\n[keyplane.commands]\nhello = json:dumps\n")
    _dist(second, "kp.plugin-2.0", "[keyplane.commands]\nshadowed = json:loads\n")
    found = entries("keyplane.commands", [str(first), str(second), str(tmp_path / "missing")])
    assert found == [PluginEntry("hello", "json:dumps")]
    import json

    assert found[0].load() is json.dumps


@pytest.mark.parametrize("value", ["not a value!", "json:no_such_attribute", "no_such_module_kp:x"])
def test_a_bad_entry_fails_to_load_with_an_import_or_attribute_error(value: str) -> None:
    with pytest.raises((ImportError, AttributeError)):
        PluginEntry("bad", value).load()
