"""The issuer key in OpenBao and in SoftHSM2; PostgreSQL state; outages, rate limits, shutdown.

Must show: `keyplane serve` with the issuer key in OpenBao; a second process verifies a
passport it obtained over HTTP using only `JWKSClient`, then keeps verifying with the
service stopped. A back end that is down gives 503 with Retry-After and readiness false,
and the service recovers without a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import signers
from signers import KeySpec
from signers.clients import AsyncStatusListClient, JWKSClient, StatusListClient
from signers.errors import TokenRevoked
from signers.jose import verify_jwt
from signers.passport import verify_passport

from .conftest import CODE
from .harness import TOKENS, Receiver, ServiceProcess, make_file_key

VERIFIER = Path(__file__).with_name("offline_verifier.py")


def _wait_until(predicate: Any, deadline: float = 20.0) -> bool:
    """Poll a condition of another process against a deadline (its recovery), not a synchronisation sleep."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def bao_service(tmp_path_factory: pytest.TempPathFactory, openbao_server: Any, openbao_store_uri: str,
                postgres_uri: str) -> Iterator[ServiceProcess]:
    with signers.open_store(openbao_store_uri) as store:
        store.create_key("server-issuer", KeySpec.ED25519)
    directory = tmp_path_factory.mktemp("bao-serve")
    keys = f'[stores.bao]\nuri = "{openbao_store_uri}&timeout=1"\n[keys.issuer]\nstore = "bao"\nname = "server-issuer"\n'
    service = ServiceProcess(directory, keys, server_toml="[server.status_list]\nsize = 1024\nttl = 30\n")
    service.write()
    text = service.config.read_text().replace(f'state = "sqlite:///{directory}/state.db"', f'state = "{postgres_uri}"')
    service.config.write_text(text)
    service.start()
    with service.client("operator") as client:
        assert client.post("/v1/agents", json={"agent": "bao-agent", "code_hash": CODE}).status_code == 201
    try:
        yield service
    finally:
        service.stop()


def test_passports_signed_in_openbao_verify_with_the_jwks(bao_service: ServiceProcess, agent_signer: Any) -> None:
    keys = JWKSClient(bao_service.url + "/.well-known/jwks.json")
    with bao_service.client("issuer") as client:
        token = client.post("/v1/passports", json={"agent": "bao-agent",
                                                   "agent_key": agent_signer.public_key.to_jwk()}).json()["token"]
    assert verify_passport(token, keys, issuer=bao_service.url).sub == "bao-agent"


def test_status_list_revocation_reaches_an_offline_verifier(bao_service: ServiceProcess) -> None:
    keys = JWKSClient(bao_service.url + "/.well-known/jwks.json")
    with bao_service.client("issuer") as client:
        token = client.post("/v1/actions", json={"sub": "bao-agent", "action": "pay", "params": {"n": 1}}).json()["token"]
    claims = verify_jwt(token, keys, typ="action+jwt").claims
    reference = claims["status"]["status_list"]
    assert reference["uri"] == bao_service.url + "/statuslists/1"
    with httpx.Client(trust_env=False) as client:
        published = client.get(reference["uri"])
    assert published.headers["content-type"] == "application/statuslist+jwt"
    now = [time.time()]
    lists = StatusListClient(keys, clock=lambda: now[0])
    assert lists.check(claims) == 0
    with bao_service.client("revoker") as client:
        answer = client.post("/v1/revocations", json={"kind": "status", "id": str(reference["idx"])})
    assert answer.status_code == 201, answer.text
    now[0] += 31  # past the list's ttl: the client fetches again
    with pytest.raises(TokenRevoked):
        lists.check(claims)

    async def asynchronously() -> None:
        client = AsyncStatusListClient(keys)
        with pytest.raises(TokenRevoked):
            await client.check(claims)
        await client.aclose()

    asyncio.run(asynchronously())


def test_openbao_down_is_503_and_not_ready_then_recovers_without_restart(
        bao_service: ServiceProcess, openbao_server: Any, agent_signer: Any) -> None:
    body = {"agent": "bao-agent", "agent_key": agent_signer.public_key.to_jwk()}
    pid = openbao_server._process.pid
    os.kill(pid, signal.SIGSTOP)  # the back end hangs: every call times out (timeout=1)
    try:
        with bao_service.client("issuer") as client:
            down = client.post("/v1/passports", json=body)
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            assert down.headers["content-type"].startswith("application/problem+json")
        with bao_service.client() as client:
            assert _wait_until(lambda: client.get("/readyz").status_code == 503)
            not_ready = client.get("/readyz")
            assert not_ready.json()["ready"] is False and not_ready.headers["retry-after"] == "5"
            assert client.get("/healthz").status_code == 200  # alive, just not ready
    finally:
        os.kill(pid, signal.SIGCONT)
    with bao_service.client() as client:
        assert _wait_until(lambda: client.get("/readyz").status_code == 200)
    with bao_service.client("issuer") as client:
        assert client.post("/v1/passports", json=body).status_code == 201


def test_a_second_process_verifies_with_only_the_jwks_then_offline(
        bao_service: ServiceProcess, agent_signer: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, str(VERIFIER), bao_service.url, "bao-agent", TOKENS["issuer"],
         json.dumps(agent_signer.public_key.to_jwk())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).parents[2])
    try:
        assert process.stdout is not None and process.stdin is not None
        first = process.stdout.readline().split()
        assert first[:2] == ["verified", "bao-agent"], process.stderr.read() if process.stderr else ""
        assert bao_service.stop() == 0  # graceful: SIGTERM, exit status 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(bao_service.url + "/healthz", timeout=2)
        process.stdin.write("go\n")
        process.stdin.flush()
        second = process.stdout.readline().split()
        assert second[:2] == ["verified-offline", "bao-agent"], second
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "keyplane serve stopped" in bao_service.log()


def test_the_issuer_key_in_softhsm(tmp_path: Path, softhsm_store_uri: str, agent_signer: Any) -> None:
    with signers.open_store(softhsm_store_uri) as store:
        store.create_key("server-issuer-p256", KeySpec.P256)
    keys_toml = f'[stores.hsm]\nuri = "{softhsm_store_uri}"\n[keys.issuer]\nstore = "hsm"\nname = "server-issuer-p256"\n'
    service = ServiceProcess(tmp_path, keys_toml, server_toml="rate_limit = 3\nrate_window = 60\n")
    service.start()
    try:
        with service.client("operator") as client:
            assert client.post("/v1/agents", json={"agent": "hsm-agent", "code_hash": CODE}).status_code == 201
        with service.client("issuer") as client:
            token = client.post("/v1/passports", json={"agent": "hsm-agent",
                                                       "agent_key": agent_signer.public_key.to_jwk()}).json()["token"]
            assert client.post("/v1/passports", json={}).status_code == 400
            assert client.post("/v1/passports", json={}).status_code == 400
            limited = client.post("/v1/passports", json={})  # the fourth call in the window
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        keys = JWKSClient(service.url + "/.well-known/jwks.json")
        passport = verify_passport(token, keys, issuer=service.url)
        assert passport.sub == "hsm-agent" and keys.get(passport.issuer_kid).public_key.spec is KeySpec.P256
        with service.client() as client:
            metrics = client.get("/metrics").text
        assert 'keyplane_rate_limited_total{caller="issuer"} 1' in metrics
        assert 'keyplane_backend_seconds_count{operation="sign",outcome="ok"}' in metrics
        assert "keyplane_passports_issued_total 1" in metrics
    finally:
        assert service.stop() == 0


def test_shutdown_finishes_in_flight_requests_and_reports_dropped_webhooks(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=10**6)  # never answers 2xx
    store = make_file_key(tmp_path / "keys", "issuer")
    keys_toml = f'[stores.files]\nuri = "{store}"\n[keys.issuer]\nstore = "files"\nname = "issuer"\n'
    service = ServiceProcess(tmp_path, keys_toml,
                             server_toml=f'[server.webhooks.down]\nurl = "{receiver.url}"\nretries = 8\n')
    service.start()
    try:
        with service.client("operator") as client:
            for n in range(3):
                assert client.post("/v1/agents", json={"agent": f"hook-{n}", "code_hash": CODE}).status_code == 201
        # An in-flight request finishes: its handler is waiting for the body when SIGTERM arrives.
        body = json.dumps({"agent": "late-agent", "code_hash": CODE}).encode()
        with socket.create_connection(("127.0.0.1", service.port), timeout=20) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            while b'{"ok":true}' not in first:  # the whole answer: the connection is accepted and kept alive
                chunk = conn.recv(65536)
                assert chunk, first
                first += chunk
            assert first.startswith(b"HTTP/1.1 200")
            conn.sendall(b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Expect: 100-continue\r\n"
                         + f"Authorization: Bearer {TOKENS['operator']}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            assert conn.recv(65536).startswith(b"HTTP/1.1 100")  # the handler is running, waiting for the body
            assert service.process is not None
            service.process.send_signal(signal.SIGTERM)
            conn.sendall(body)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    finally:
        code = service.stop()
        receiver.close()
    assert code == 0
    stopped = [json.loads(line) for line in service.log().splitlines() if "keyplane serve stopped" in line]
    assert stopped and stopped[0]["webhooks_dropped"] >= 1  # reported, never silently lost
