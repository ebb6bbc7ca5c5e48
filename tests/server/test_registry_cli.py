"""``keyplane agent ... --registry URI``: the agent commands on a state store's agent registry.

An operator adds approvers, registers and advances an agent from the command line against the
same store a `keyplane serve` replica uses (``[server] registry = URI``); the service sees the
result, a second registration is a Conflict, and nothing is written by a refused command.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import signers
from signers.agents.lifecycle import DEFAULT_LIFECYCLE
from signers.cli import main
from signers.jose import JWKS
from signers.server.registry import AgentRegistry
from signers.stores import open_state

from .conftest import CODE
from .harness import make_file_key

ROLES = (("registrar", "registrar"), ("approver", "approver"), ("release", "release-approver"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def key_uris(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("cli-keys") / "keys"
    uris = {}
    for name, _ in ROLES:
        store = make_file_key(directory, name)
        path, _, query = store.partition("?")
        uris[name] = f"{path}/{name}?{query}"
    return uris


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return str(request.getfixturevalue("postgres_uri"))


def test_the_agent_commands_work_on_a_store(capsys: pytest.CaptureFixture[str], key_uris: dict[str, str],
                                            registry_uri: str, tmp_path: Path) -> None:
    reg = ["--registry", registry_uri]
    agent = f"cli-{uuid.uuid4().hex[:10]}"
    code, _, err = run(capsys, "agent", "history", agent, *reg)
    assert code != 0 and ("no approvers" in err or "not registered" in err)
    for name, role in ROLES:
        code, _, err = run(capsys, "agent", "approver", key_uris[name], "--role", role, *reg)
        assert code == 0, err
    code, _, err = run(capsys, "agent", "register", agent, "--key", key_uris["registrar"], "--code-hash", CODE, *reg)
    assert code == 0, err
    code, _, err = run(capsys, "agent", "register", agent, "--key", key_uris["registrar"], "--code-hash", CODE, *reg)
    assert code != 0 and "Conflict" in err  # the store refuses a second registration
    code, _, err = run(capsys, "agent", "advance", agent, "ACTIVE", "--key", key_uris["release"], *reg)
    assert code == 1 and "TransitionRefused" in err  # no skipping, and nothing written
    for stage in DEFAULT_LIFECYCLE.stages[1:]:
        who = "release" if stage in ("PROD_APPROVED", "ACTIVE") else "approver"
        code, _, err = run(capsys, "agent", "advance", agent, stage, "--key", key_uris[who], *reg)
        assert code == 0, err
    code, out, _ = run(capsys, "--json", "agent", "history", agent, *reg)
    assert code == 0 and json.loads(out)["stage"] == "ACTIVE" and len(json.loads(out)["transitions"]) == 6
    assert not (tmp_path / "agents").exists()
    with open_state(registry_uri) as state:  # the service's view of the same store: it adds its key, sees the agent
        issuer = make_file_key(tmp_path / "issuer", "issuer")
        with signers.open_store(issuer) as store, AgentRegistry(registry_uri, JWKS.of(store.open("issuer"))) as seen:
            history = seen.history(agent)
            assert history is not None and history.stage == "ACTIVE"
            service_kid = store.open("issuer").key_id
        _, document = state.agent_registry(lambda t, a: t).approvers()
        listed = {entry["jwk"]["kid"]: entry["roles"] for entry in document["approvers"]}  # type: ignore[index]
        assert service_kid in listed and {"registrar", "approver", "release-approver"} <= {
            role for roles in listed.values() for role in roles}  # the CLI's approvers and the service's key


def test_a_bad_registry_uri_is_a_config_error(capsys: pytest.CaptureFixture[str], key_uris: dict[str, Any]) -> None:
    code, _, err = run(capsys, "agent", "history", "a", "--registry", "nosuch://x")
    assert code != 0 and "ConfigError" in err
