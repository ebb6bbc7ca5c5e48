"""Keys and a lifecycle cast for the agent-governance tests.

Keys live in a real file back end store made once per session: an issuer, three
approvers with different roles, an outsider without any role, and two agents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import signers
from signers import KeySpec
from signers.agents.lifecycle import Approvers
from signers.passport import code_hash_of
from tests.fixtures.files import password_file_store_uri

NAMES = ("issuer", "registrar", "approver", "release", "outsider", "agent", "peer", "gate")
CODE = code_hash_of(b"agent code v1")
NEW_CODE = code_hash_of(b"agent code v2")


@pytest.fixture(scope="session")
def agents_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    uri = password_file_store_uri(tmp_path_factory.mktemp("agents"), "agents test password")
    with signers.open_store(uri) as store:
        for name in NAMES:
            store.create_key(name, KeySpec.ED25519)
        store.create_key("issuer-p256", KeySpec.P256)
        yield store


@pytest.fixture(scope="session")
def keys(agents_store: Any) -> dict[str, Any]:
    return {name: agents_store.open(name) for name in (*NAMES, "issuer-p256")}


@pytest.fixture(scope="session")
def approvers(keys: dict[str, Any]) -> Approvers:
    return Approvers.of(
        {
            "registrar": [keys["registrar"]],
            "approver": [keys["approver"]],
            "release-approver": [keys["release"]],
            # the outsider's key is known (its signature verifies) but holds no role
            "visitor": [keys["outsider"]],
        }
    )
