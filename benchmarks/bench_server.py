"""`keyplane serve` over HTTP against `issue_agent_passport` in-process, same key, same run.

    python benchmarks/bench_server.py [--ops 300] [--clients 1,8,64] [--no-openbao]

For an Ed25519 file key and an Ed25519 key in OpenBao Transit (a dev server this script
starts), passports are issued:

* ``in-process``   `issue_agent_passport(signer, history, ...)` with the raw Signer (threads);
* ``+audit``       the same through `AuditedSigner` on SQLite, the durability the service has;
* ``http``         ``POST /v1/passports`` to a real `keyplane serve` process (clients on raw
                   keep-alive asyncio streams, see `RawClient`): auth, body validation, trust
                   score, status list entry when configured, audit record, JSON answer.

at 1, 8 and 64 concurrent clients: requests/s, p50 and p99 in ms, and the HTTP layer's
p50 overhead over ``+audit`` (target: at most 1 ms at 8 clients). Then the JWKS endpoint:
requests/s of conditional GETs answered 304. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.server.harness / tests.fixtures.openbao: the set-up the tests use

import httpx  # noqa: E402

import signers  # noqa: E402
from signers import KeySpec  # noqa: E402
from signers.agents.lifecycle import Approvers, register  # noqa: E402
from signers.agents.passports import issue_agent_passport  # noqa: E402
from signers.audit import AuditedSigner, SQLiteAuditLog  # noqa: E402
from signers.server.registry import _RACY_NS  # noqa: E402
from tests.fixtures.openbao import OpenBaoServer, find_bao, store_uri  # noqa: E402
from tests.server.harness import TOKENS, ServiceProcess, make_file_key  # noqa: E402

CODE = "sha256:" + "ab" * 32


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def in_process(signer: Any, ops: int, clients: int) -> tuple[float, float, float]:
    approvers = Approvers.of({"registrar": [signer]})
    history = register(signer, "bench-agent", CODE, approvers)
    agent_key = signer.public_key
    latencies: list[float] = []

    def one(_: int) -> None:
        started = time.perf_counter()
        issue_agent_passport(signer, history, name="bench", agent_key=agent_key, trust_score=50, iss="bench")
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(ops)))
    wall = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return ops / wall, p50, p99


class RawClient:
    """HTTP/1.1 keep-alive on one asyncio stream: the least a client can cost, so the figure is the server's.

    httpx's async client spends about as much CPU per request as the service does; on a
    two-core machine that would be charged to the HTTP layer.
    """

    def __init__(self, url: str, token: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port, self.token = host, int(port), token

    async def __aenter__(self) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes]:
        self.writer.write(f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\nauthorization: Bearer {self.token}\r\n"
                          f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode()
                          + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def over_http(url: str, body: dict[str, Any], ops: int, clients: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    data = json.dumps(body).encode()
    remaining = [ops]

    async def worker() -> None:
        async with RawClient(url, TOKENS["issuer"]) as client:
            while remaining[0] > 0:
                remaining[0] -= 1
                started = time.perf_counter()
                status, answer = await client.request("POST", "/v1/passports", data)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 201:
                    raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return ops / wall, p50, p99


async def jwks_304(url: str, ops: int, clients: int) -> float:
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
        etag = (await client.get("/.well-known/jwks.json")).headers["etag"]
    remaining = [ops]

    async def worker() -> None:
        async with RawClient(url, TOKENS["verifier"]) as client:
            while remaining[0] > 0:
                remaining[0] -= 1
                status, _ = await client.request("GET", "/.well-known/jwks.json", headers=f"if-none-match: {etag}\r\n")
                if status != 304:
                    raise RuntimeError(f"JWKS answered {status}, not 304")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return ops / (time.perf_counter() - started)


def bench_key(label: str, keys_toml: str, signer: Any, workdir: Path, ops: int, clients: list[int],
              overheads: list[str]) -> list[str]:
    service = ServiceProcess(workdir, keys_toml, server_toml="rate_limit = 1000000\n")
    service.start()
    rows = []
    try:
        with service.client("operator") as client:
            client.post("/v1/agents", json={"agent": "bench-agent", "code_hash": CODE}).raise_for_status()
        registered = time.monotonic()
        body = {"agent": "bench-agent", "agent_key": signer.public_key.to_jwk()}
        audited = AuditedSigner(signer, SQLiteAuditLog(workdir / "bench-audit.db"), checkpoint_every=100)
        for n in clients:
            bare = in_process(signer, ops, n)
            with_audit = in_process(audited, ops, n)
            # steady state: a history file changed in the last 2 s is re-read on every issuance
            # (signers/server/registry.py, _RACY_NS); a service issues to agents registered before that
            time.sleep(max(0.0, registered + _RACY_NS / 1e9 + 0.1 - time.monotonic()))
            http = asyncio.run(over_http(service.url, body, ops, n))
            rows.append(f"| {label:<15} | {n:>3} | {bare[0]:>8.0f} {bare[1]:>6.2f} {bare[2]:>7.2f} "
                        f"| {with_audit[0]:>8.0f} {with_audit[1]:>6.2f} {with_audit[2]:>7.2f} "
                        f"| {http[0]:>8.0f} {http[1]:>6.2f} {http[2]:>7.2f} | {http[1] - with_audit[1]:>+8.2f} "
                        f"| {os.getloadavg()[0]:>4.1f} |")
            if n == 8:
                overheads.append(f"{label}: HTTP layer overhead at 8 clients = {http[1]:.2f} - {with_audit[1]:.2f} = "
                                 f"{http[1] - with_audit[1]:+.2f} ms p50 (target <= 1 ms)")
        rows.append(f"| {label:<15} | JWKS 304 at 8 clients: {asyncio.run(jwks_304(service.url, ops * 4, 8)):.0f} req/s |")
    finally:
        service.stop()
    return rows


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300, help="passports per configuration")
    parser.add_argument("--clients", default="1,8,64", help="concurrent clients, comma-separated")
    parser.add_argument("--no-openbao", action="store_true", help="only the file key")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    rows: list[str] = []
    overheads: list[str] = []
    before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="keyplane-bench-server-") as tmp:
        base = Path(tmp)
        uri = make_file_key(base / "keys", "issuer")
        keys_toml = f'[stores.files]\nuri = "{uri}"\n[keys.issuer]\nstore = "files"\nname = "issuer"\n'
        (base / "file").mkdir()
        with signers.open_store(uri) as store:
            rows += bench_key("file Ed25519", keys_toml, store.open("issuer"), base / "file", args.ops, clients,
                              overheads)
        if not args.no_openbao:
            bao = OpenBaoServer(find_bao())
            bao.start()
            try:
                os.environ["KEYPLANE_TEST_VAULT_TOKEN"] = bao.token
                bao_uri = store_uri(bao)
                with signers.open_store(bao_uri) as store:
                    signer = store.create_key("bench-issuer", KeySpec.ED25519)
                    keys_toml = f'[stores.bao]\nuri = "{bao_uri}"\n[keys.issuer]\nstore = "bao"\nname = "bench-issuer"\n'
                    (base / "bao").mkdir()
                    rows += bench_key("OpenBao Ed25519", keys_toml, signer, base / "bao", args.ops, clients, overheads)
            finally:
                bao.cleanup()
    print("passport issuance: requests/s, p50 ms, p99 ms; overhead = http p50 - in-process(+audit) p50 (ms); "
          "load = 1-minute load average after the row")
    print("| key             | cli | in-process req/s p50 p99 | +audit req/s p50 p99     | http req/s p50 p99       "
          "| overhead | load |")
    print("|-----------------|-----|--------------------------|--------------------------|--------------------------"
          "|----------|------|")
    for row in rows:
        print(row)
    for line in overheads:
        print(line)
    print(f"load average {before[0]:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs; "
          f"http server: uvicorn with {'httptools' if _has('httptools') else 'h11'}, "
          f"{'uvloop' if _has('uvloop') else 'asyncio'} loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
