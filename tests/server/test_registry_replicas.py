"""Two `keyplane serve` replicas on one PostgreSQL share agent state.

Both are real uvicorn processes with the same issuer key, ``state`` and ``registry`` on the
session's PostgreSQL database: an agent registered and advanced on one is seen, and gated,
on the other; suspending it on one makes the other's gate DENY; two replicas advancing the
same agent from the same head cannot fork its history (one 201, one 409, one linear history).
Also the configuration: ``registry`` takes a URI, not together with ``agents``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from signers.agents.lifecycle import Approvers, verify_history
from signers.errors import ConfigError
from signers.jose import JWKS
from signers.server.config import ServerConfig
from signers.server.registry import AgentRegistry
from signers.stores import open_state
from signers.tokens.possession import Challenge, prove_possession

from .conftest import GATE_TOML, walk_to
from .harness import ServiceProcess, make_file_key

ROOT = Path(__file__).resolve().parents[2]
FLEET_ISSUER = "https://issuer.fleet.test"
POP_TOOL = '[agents.gate.servers.bank.tools.transfer]\nscopes = ["bank:read"]\nproof = true\n'


class Replica(ServiceProcess):
    """A ServiceProcess whose revocations, audit chain and agent registry live in a shared store."""

    def __init__(self, directory: Path, keys_toml: str, store_uri: str) -> None:
        self.store_uri = store_uri
        # PYTHONPATH: the replicas run this tree's signers, whatever the venv's editable install points at
        super().__init__(directory, keys_toml, extra_toml=GATE_TOML + POP_TOOL, env={"PYTHONPATH": str(ROOT)})

    def write(self, key: str = "issuer", previous: list[str] | None = None) -> None:
        super().write(key, previous)
        text = self.config.read_text(encoding="utf-8")
        text = text.replace(f'state = "sqlite:///{self.directory}/state.db"', f'state = "{self.store_uri}"')
        text = text.replace(f'agents = "{self.directory}/agents"', f'registry = "{self.store_uri}"')
        text = text.replace(f'issuer = "{self.url}"', f'issuer = "{FLEET_ISSUER}"')  # replicas behind one name
        assert f'registry = "{self.store_uri}"' in text and "sqlite" not in text
        self.config.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres_uri: str) -> Iterator[list[Replica]]:
    shared = tmp_path_factory.mktemp("replicas")
    store_uri = make_file_key(shared / "keys", "issuer")  # one issuer key: every replica signs as the same issuer
    keys = f'[stores.files]\nuri = "{store_uri}"\n[keys.issuer]\nstore = "files"\nname = "issuer"\n'
    started: list[Replica] = []
    try:
        for n in range(2):
            directory = shared / f"replica-{n}"
            directory.mkdir()
            replica = Replica(directory, keys, postgres_uri)
            replica.start()
            started.append(replica)
        yield started
    finally:
        for replica in started:
            replica.stop()
    for replica in started:
        assert not (replica.directory / "agents").exists()  # nothing went to a local directory


def _passport(replica: Replica, agent: str, agent_signer: Any) -> str:
    with replica.client("issuer") as client:
        answer = client.post("/v1/passports", json={"agent": agent, "agent_key": agent_signer.public_key.to_jwk(),
                                                    "scopes": ["bank:read"]})
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def _gate(replica: Replica, passport: str) -> dict[str, Any]:
    with replica.client("gatekeeper") as client:
        answer = client.post("/v1/gate", json={"passport": passport, "server": "bank", "tool": "balance"})
    assert answer.status_code == 200, answer.text
    decision: dict[str, Any] = answer.json()
    return decision


def test_an_agent_advanced_on_one_replica_is_seen_and_gated_on_the_other(
        replicas: list[Replica], agent_signer: Any, summary_lines: list[str]) -> None:
    one, other = replicas
    with one.client("operator") as client:
        walk_to(client, "replicated-agent")  # registered and advanced to ACTIVE on replica 0
    with other.client("operator") as client:
        seen = client.get("/v1/agents/replicated-agent/history")
        assert seen.status_code == 200, seen.text
        assert seen.json()["stage"] == "ACTIVE" and seen.json()["transitions"] == 6
        assert "replicated-agent" in [a["agent"] for a in client.get("/v1/agents").json()["agents"]]
    passport = _passport(one, "replicated-agent", agent_signer)
    allowed = _gate(other, passport)  # replica 1 checks the passport's stage against the shared history
    assert allowed["allow"] is True, allowed
    with other.client("operator") as client:
        suspended = client.post("/v1/agents/replicated-agent/suspend", json={"reason": "incident"})
    assert suspended.status_code == 201, suspended.text
    denied = _gate(one, passport)  # replica 0 sees the suspension written by replica 1
    assert denied["allow"] is False and "stage" in denied["checks_failed"], denied
    summary_lines.append("server: 2 replicas on one PostgreSQL: agent advanced on one, gated and suspended on the other")


def test_a_challenge_from_one_replica_is_answered_at_the_other_and_only_once(
        replicas: list[Replica], agent_signer: Any) -> None:
    """Behind a load balancer the challenge and the proof reach different replicas: both must work, once."""
    one, other = replicas
    with one.client("operator") as client:
        walk_to(client, "pop-agent")
    passport = _passport(one, "pop-agent", agent_signer)
    with one.client("gatekeeper") as client:
        offered = client.get("/v1/gate/challenge").json()
    assert offered["aud"] == FLEET_ISSUER
    proof = prove_possession(agent_signer, Challenge(offered["nonce"], offered["aud"], offered["iat"]), sub="pop-agent")
    body = {"passport": passport, "server": "bank", "tool": "transfer", "proof": proof}
    with other.client("gatekeeper") as client:
        without = client.post("/v1/gate", json={k: v for k, v in body.items() if k != "proof"}).json()
        allowed = client.post("/v1/gate", json=body).json()
    assert without["allow"] is False and "possession" in without["checks_failed"], without
    assert allowed["allow"] is True, allowed
    with one.client("gatekeeper") as client:
        replayed = client.post("/v1/gate", json=body).json()  # the same proof at the replica that issued it
    assert replayed["allow"] is False and "possession" in replayed["checks_failed"], replayed


def test_a_tampered_shared_history_fails_closed_on_every_replica(
        replicas: list[Replica], agent_signer: Any, postgres_uri: str) -> None:
    one, other = replicas
    with one.client("operator") as client:
        walk_to(client, "tampered-agent")
    passport = _passport(one, "tampered-agent", agent_signer)
    assert _gate(other, passport)["allow"] is True
    with psycopg.connect(postgres_uri, autocommit=True) as conn:  # someone with database access swaps two tokens
        rows = dict(conn.execute("SELECT seq, token FROM keyplane_agent_history WHERE agent = 'tampered-agent'"
                                 " AND seq IN (2, 3)").fetchall())
        for seq, token in ((2, rows[3]), (3, rows[2])):
            conn.execute("UPDATE keyplane_agent_history SET token = %s WHERE agent = 'tampered-agent' AND seq = %s",
                         (token, seq))
    for replica in replicas:
        denied = _gate(replica, passport)
        assert denied["allow"] is False and "stage" in denied["checks_failed"], denied
        with replica.client("operator") as client:
            assert client.get("/v1/agents/tampered-agent/history").status_code == 500  # State Corrupt
            refused = client.post("/v1/agents/tampered-agent/suspend", json={"reason": "after tampering"})
            assert refused.status_code == 500, refused.text  # nothing is appended to a damaged history


def test_two_replicas_advancing_one_agent_at_once_do_not_fork_it(replicas: list[Replica]) -> None:
    one, other = replicas
    with one.client("operator") as client:
        walk_to(client, "raced-agent", "TESTING")

    def advance(replica: Replica) -> int:
        with replica.client("operator") as client:
            return client.post("/v1/agents/raced-agent/advance",
                               json={"to": "DEV_APPROVED", "reason": f"by {replica.port}"}).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(advance, [one, other]))
    # one wins; the other lost the compare-and-set (409, nothing written) or read the new head and was
    # refused by the lifecycle (422: DEV_APPROVED -> DEV_APPROVED); never two 201s
    assert codes in ([201, 409], [201, 422]), codes
    with other.client("operator") as client:
        history = client.get("/v1/agents/raced-agent/history").json()
    stages = [t["to"] for t in history["history"]]
    assert stages == ["INTAKE", "VETTING", "TESTING", "DEV_APPROVED"], stages  # one linear history
    for before, after in zip(history["history"], history["history"][1:], strict=False):
        assert after["prev"] == before["hash"]


def test_a_history_written_by_the_service_verifies_offline(replicas: list[Replica], postgres_uri: str) -> None:
    with replicas[0].client("operator") as client:
        walk_to(client, "offline-agent", "VETTING")
    with open_state(postgres_uri) as state:
        raw = state.agent_registry(lambda tokens, agent: tokens)  # the rows, chain-checked, not yet verified
        approvers = Approvers.from_dict(raw.approvers()[1])
        tokens = raw.history("offline-agent")
        assert verify_history(tokens, approvers, agent="offline-agent").stage == "VETTING"


def test_registry_config_takes_a_uri_and_not_with_agents(tmp_path: Path) -> None:
    base = {"issuer": "https://x", "key": "file:/k#k"}
    config = ServerConfig.from_dict({"server": {**base, "registry": f"sqlite:///{tmp_path}/s.db"}})
    assert config.agents == f"sqlite:///{tmp_path}/s.db"
    assert ServerConfig.from_dict({"server": base}).agents == Path.cwd().resolve() / "agents"
    with pytest.raises(ConfigError, match="not both"):
        ServerConfig.from_dict({"server": {**base, "registry": "redis://127.0.0.1/0", "agents": "a"}})
    with pytest.raises(ConfigError, match="state-store URI"):
        ServerConfig.from_dict({"server": {**base, "registry": "/var/lib/agents"}})
    with pytest.raises(ConfigError):
        ServerConfig.from_dict({"server": {**base, "registry": 7}})


def test_a_registry_uri_opens_the_store_and_merges_the_service_key(tmp_path: Path, agent_signer: Any) -> None:
    uri = f"sqlite:///{tmp_path}/state.db"
    with AgentRegistry(uri, JWKS.of(agent_signer)) as registry:
        assert agent_signer.key_id in registry.approvers.jwks and registry.history("nobody") is None
        assert registry.history("../bad") is None and list(registry.agents()) == []
    with AgentRegistry(uri, JWKS.of(agent_signer)) as again:  # a second start adds nothing new
        with open_state(uri) as state:
            assert state.agent_registry(lambda t, a: t).approvers()[0] == 1
        with pytest.raises(ConfigError):
            again.path("agent")  # a store has no history files
    assert not (tmp_path / "agents").exists()
