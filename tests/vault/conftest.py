"""Shared pieces for the Vault / OpenBao tests: a store on the session server, key names, root calls."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from backends.vault_transit import VaultTransitKeyStore
from tests.fixtures.openbao import OpenBaoServer
from tests.fixtures.stores import opened, unique_name

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def root_call(server: OpenBaoServer, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One request as the root token, outside keyplane (test set-up: policies, tokens)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.addr + path, data=data, method=method,
                                     headers={"X-Vault-Token": server.token, "Content-Type": "application/json"})
    with _HTTP.open(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


@pytest.fixture
def store(openbao_store_uri: str) -> Iterator[VaultTransitKeyStore]:
    yield from opened(VaultTransitKeyStore, openbao_store_uri)


@pytest.fixture
def key_name() -> str:
    return unique_name()


def refuse_item(signer: Any, monkeypatch: pytest.MonkeyPatch, refused: bytes) -> None:
    """Make Transit refuse the one batch item whose message is `refused` (its input is sent as bad base64)."""
    real_input = signer._input

    def input_with_a_bad_item(message: bytes) -> str:
        return "!!not-base64" if message == refused else real_input(message)

    monkeypatch.setattr(signer, "_input", input_with_a_bad_item)
