"""The session's `keyplane serve`: file keys (Ed25519 current, ML-DSA-44 rotated out), a CA, a gate
policy, auto-revoke, and a webhook receiver that fails its first two deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import signers
from signers import KeySpec
from signers.agents.lifecycle import DEFAULT_LIFECYCLE
from signers.passport import code_hash_of
from signers.x509 import CertificateAuthority, write_pem

from .harness import Receiver, ServiceProcess, make_file_key

CODE = code_hash_of(b"agent code v1")
GATE_TOML = """
[agents.gate]
[agents.gate.defaults]
min_stage = "ACTIVE"
[agents.gate.servers.bank.tools.balance]
scopes = ["bank:read"]
[agents.gate.servers.wallet.tools.pay]
payment = true
[agents.autorevoke]
threshold = 3
window = 60
"""


@dataclass
class Deployment:
    service: ServiceProcess
    receiver: Receiver
    store_uri: str
    ca_certificate: Any

    @property
    def url(self) -> str:
        return self.service.url

    def client(self, caller: str | None = None) -> httpx.Client:
        return self.service.client(caller)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("serve")
    store_uri = make_file_key(directory / "keys", "issuer")
    make_file_key(directory / "keys", "issuer-pq", KeySpec.ML_DSA_44)
    make_file_key(directory / "keys", "ca")
    with signers.open_store(store_uri) as store:
        ca = CertificateAuthority.create_root(store.open("ca"), "CN=keyplane test root")
    write_pem(directory / "ca.pem", ca.certificate)
    receiver = Receiver(fail_first=2)
    keys = (f'[stores.files]\nuri = "{store_uri}"\n[keys.issuer]\nstore = "files"\nname = "issuer"\n'
            f'[keys.ca]\nstore = "files"\nname = "ca"\n')
    server = (f"max_body = 8192\nrate_limit = 1000\n"
              f'[server.ca]\nkey = "ca"\ncertificate = "{directory / "ca.pem"}"\n'
              f'[server.webhooks.ops]\nurl = "{receiver.url}"\nretries = 4\n')
    service = ServiceProcess(directory, keys, server_toml=server, extra_toml=GATE_TOML)
    service.write(previous=[_key_uri(store_uri, "issuer-pq")])
    service.start()
    try:
        yield Deployment(service, receiver, store_uri, ca.certificate)
    finally:
        service.stop()
        receiver.close()


def _key_uri(store_uri: str, name: str) -> str:
    path, _, query = store_uri.partition("?")
    return f"{path}/{name}?{query}"


def walk_to(client: httpx.Client, agent: str, stage: str = "ACTIVE", code: str = CODE) -> dict[str, Any]:
    """Register `agent` and advance it stage by stage to `stage` through the API."""
    answer = client.post("/v1/agents", json={"agent": agent, "code_hash": code})
    assert answer.status_code == 201, answer.text
    for step in DEFAULT_LIFECYCLE.stages[1:DEFAULT_LIFECYCLE.stages.index(stage) + 1]:
        answer = client.post(f"/v1/agents/{agent}/advance", json={"to": step, "reason": f"approved for {step}"})
        assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture(scope="session")
def agent_signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The agent's own key (it signs receipts and proofs; the service never holds it)."""
    directory = tmp_path_factory.mktemp("agent")
    uri = make_file_key(directory / "keys", "agent")
    with signers.open_store(uri) as store:
        yield store.open("agent")
