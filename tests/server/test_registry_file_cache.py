"""A directory registry re-reads a history file whenever it may have changed, and only then.

The service caches each history file's lines by its stat stamp (inode, size, mtime, ctime), so
an issuance costs one ``stat`` instead of an open, a read and a close. These tests hold that
no change is missed: a file replaced (a new inode), a file damaged in place with the same size
in the same clock tick (the "racily clean" case: a recent stamp is never trusted), and a file
removed are each seen on the very next read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from signers.agents.errors import HistoryInvalid
from signers.agents.lifecycle import advance, register
from signers.errors import KeyplaneError
from signers.server import registry as registry_module
from signers.server.registry import AgentRegistry
from signers.tokens.jwk import JWKS
from signers.tokens.passport import code_hash_of


def _registered(tmp_path: Path, signer: Any) -> tuple[AgentRegistry, Any]:
    registry = AgentRegistry(tmp_path / "agents", JWKS.of(signer))
    history = register(signer, "agent-1", code_hash_of(b"code"), registry.approvers)
    registry.save(history)
    return registry, history


def test_a_damaged_file_is_seen_at_once_even_with_the_same_size_and_stamp_tick(tmp_path: Path,
                                                                               agent_signer: Any) -> None:
    registry, history = _registered(tmp_path, agent_signer)
    assert registry.history("agent-1") == history
    file = registry.path("agent-1")
    stat = file.stat()
    text = file.read_bytes()
    damaged = text[:-10] + (b"A" if text[-10:-9] != b"A" else b"B") + text[-9:]  # same size, one byte changed
    with open(file, "r+b") as handle:  # in place: the same inode
        handle.write(damaged)
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even the same mtime
    with pytest.raises((HistoryInvalid, KeyplaneError)):
        registry.history("agent-1")


def test_an_old_unchanged_file_is_served_from_the_cache_and_a_replaced_one_is_read(
        tmp_path: Path, agent_signer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, history = _registered(tmp_path, agent_signer)
    monkeypatch.setattr(registry_module, "_RACY_NS", -1)  # the file counts as old: its stamp is trusted
    file = registry.path("agent-1")
    assert registry.history("agent-1") == history
    reads: list[Path] = []
    real = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    assert registry.history("agent-1") == history and reads == []  # one stat, no read
    advanced = advance(agent_signer, history, "VETTING", registry.approvers, reason="tested")
    registry.save(advanced)  # a new file replaces the old one (a new inode)
    assert registry.history("agent-1") == advanced and reads == [file]
    file.unlink()
    assert registry.history("agent-1") is None
