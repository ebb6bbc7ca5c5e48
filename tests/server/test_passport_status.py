"""Passports issued by `keyplane serve` carry a Token Status List entry, and revoking sets its bit.

Through a real uvicorn process: the verifier has only the published JWKS and the fetched
status list (the offline path), and refuses a passport once its agent or its jti is revoked
through the API, while another agent's passport stays valid.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signers.agents.trust import TrustInputs, TrustScore
from signers.clients import JWKSClient, StatusListClient
from signers.errors import TokenRevoked
from signers.passport import verify_passport

from .conftest import CODE
from .harness import ServiceProcess, make_file_key

TTL = 30


@pytest.fixture(scope="module")
def status_service(tmp_path_factory: pytest.TempPathFactory, postgres_uri: str) -> Iterator[ServiceProcess]:
    directory: Path = tmp_path_factory.mktemp("status-serve")
    uri = make_file_key(directory / "keys", "issuer")
    keys = f'[stores.files]\nuri = "{uri}"\n[keys.issuer]\nstore = "files"\nname = "issuer"\n'
    service = ServiceProcess(directory, keys, server_toml=f"[server.status_list]\nsize = 1024\nttl = {TTL}\n")
    text = service.config.read_text().replace(f'state = "sqlite:///{directory}/state.db"', f'state = "{postgres_uri}"')
    service.config.write_text(text)
    service.start()
    with service.client("operator") as client:
        for agent in ("status-a", "status-b"):
            assert client.post("/v1/agents", json={"agent": agent, "code_hash": CODE}).status_code == 201
    try:
        yield service
    finally:
        service.stop()


def issue(service: ServiceProcess, agent: str, agent_signer: Any) -> tuple[str, dict[str, Any]]:
    with service.client("issuer") as client:
        answer = client.post("/v1/passports", json={"agent": agent, "agent_key": agent_signer.public_key.to_jwk()})
    assert answer.status_code == 201, answer.text
    keys = JWKSClient(service.url + "/.well-known/jwks.json")
    claims = verify_passport(answer.json()["token"], keys, issuer=service.url).claims
    assert answer.json()["status"] == claims["status"]
    return answer.json()["token"], claims


def revoke(service: ServiceProcess, kind: str, ident: str) -> None:
    with service.client("revoker") as client:
        answer = client.post("/v1/revocations", json={"kind": kind, "id": ident, "reason": "compromised"})
    assert answer.status_code == 201, answer.text


def test_passports_carry_a_status_list_entry(status_service: ServiceProcess, agent_signer: Any) -> None:
    _, first = issue(status_service, "status-a", agent_signer)
    _, second = issue(status_service, "status-a", agent_signer)
    for claims in (first, second):
        reference = claims["status"]["status_list"]
        assert reference["uri"] == status_service.url + "/statuslists/1"
        assert isinstance(reference["idx"], int)
    assert first["status"]["status_list"]["idx"] != second["status"]["status_list"]["idx"]
    lists = StatusListClient(JWKSClient(status_service.url + "/.well-known/jwks.json"))
    assert lists.check(first) == 0 and lists.check(second) == 0


@pytest.mark.parametrize("kind", ["sub", "jti"])
def test_revoking_through_the_api_sets_the_passports_bit(
        status_service: ServiceProcess, agent_signer: Any, kind: str) -> None:
    agent = "status-a" if kind == "sub" else "status-b"
    _, revoked = issue(status_service, agent, agent_signer)
    _, also_of_agent = issue(status_service, agent, agent_signer)
    _, bystander = issue(status_service, "status-b", agent_signer)  # another agent (sub), or the same (jti)
    now = [time.time()]
    lists = StatusListClient(JWKSClient(status_service.url + "/.well-known/jwks.json"), clock=lambda: now[0])
    assert lists.check(revoked) == 0  # fetched and cached before the revocation
    revoke(status_service, kind, revoked["sub"] if kind == "sub" else revoked["jti"])
    now[0] += TTL + 1  # past the list's ttl: the verifier fetches the list again
    with pytest.raises(TokenRevoked):
        lists.check(revoked)
    if kind == "sub":  # every passport of the agent
        with pytest.raises(TokenRevoked):
            lists.check(also_of_agent)
    else:  # that passport only
        assert lists.check(also_of_agent) == 0
    assert lists.check(bystander) == 0


def test_the_trust_claim_is_the_score_of_now(status_service: ServiceProcess, agent_signer: Any) -> None:
    """The service reuses a score within its second: every passport's claim must still be exact and current."""
    for _ in range(5):
        before = int(time.time())
        _, claims = issue(status_service, "status-b", agent_signer)
        after = int(time.time())
        trust = TrustScore.from_claim(claims["trust"])
        assert before <= trust.computed_at <= after
        assert trust.matches(TrustInputs.collect(claims["stage"], claims["code_hash"], attested_builds=frozenset()))
        assert trust.score == claims["trust_score"]
