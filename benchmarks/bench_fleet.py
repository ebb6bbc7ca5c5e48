"""The fleet's state stores measured against doing without them, in one run.

    python benchmarks/bench_fleet.py [--seconds 2] [--postgres URI] [--redis URI]

Rows (printed as a table with the load average):
- revocation check with the verifier cache warm vs no check at all (verify_passport, Ed25519);
- revocation propagation across processes: PostgreSQL LISTEN/NOTIFY and Redis stream push,
  and polling every 100 ms, p50 / p99 from revoke() returning to a second process's cache
  answering "revoked";
- audit append on PostgreSQL with 1 and 8 writer processes vs a raw psycopg INSERT with the
  same durability (a committed transaction per record);
- status list check (1M indices, decoded once) vs a SQLite revocation lookup.

Defaults use the machine's PostgreSQL (127.0.0.1:5432, database test) and Redis (127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from latency import sample_for, summarize  # noqa: E402

import signers  # noqa: E402
from signers.algorithms import KeySpec  # noqa: E402
from signers.jose import JWKS  # noqa: E402
from signers.passport import code_hash_of, issue_passport, verify_passport  # noqa: E402
from signers.revocation import SQLiteRevocationStore  # noqa: E402
from signers.status_list import INVALID, StatusList  # noqa: E402
from signers.stores import open_state  # noqa: E402
from signers.stores.cache import RevocationCache  # noqa: E402

ROWS: list[str] = []


def row(name: str, ours: float, base: float, unit: str = "µs") -> None:
    ROWS.append(f"| {name} | {ours:.1f} {unit} | {base:.1f} {unit} | {ours / base:.3f} |")


def p50_us(fn: object, seconds: float) -> float:
    return summarize(sample_for(fn, seconds))[1] * 1000  # type: ignore[arg-type]


def bench_cache(seconds: float, redis_uri: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KEYPLANE_BENCH_PASSWORD"] = "bench"
        with signers.open_store(f"file:{tmp}/s?password-source=env:KEYPLANE_BENCH_PASSWORD") as store:
            issuer = store.create_key("issuer", KeySpec.ED25519)
            agent = store.create_key("agent", KeySpec.ED25519)
        token = issue_passport(issuer, sub="agent:1", name="a", agent_key=agent.public_key,
                               code_hash=code_hash_of(b"x"), stage="production", trust_score=80)
        jwks = JWKS.of(issuer)
        with open_state(redis_uri) as state, RevocationCache(state.revocations()) as cache:
            verify_passport(token, jwks, revocations=cache)  # warm
            for _ in range(3):
                bare = p50_us(lambda: verify_passport(token, jwks), seconds / 2)
                cached = p50_us(lambda: verify_passport(token, jwks, revocations=cache), seconds / 2)
            row("verify_passport + warm revocation cache vs no check", cached, bare)


FOLLOWER = """
import sys, time
from signers.stores import open_state
from signers.stores.cache import RevocationCache
store = open_state(sys.argv[1]).revocations()
mode = sys.argv[2]
cache = RevocationCache(store, staleness_bound=10, push_timeout=0.5, poll_interval=0.1)
if mode == "poll":
    cache.stats.mode = "poll"
    type(store).wait_for_changes = lambda self, c, t: (_ for _ in ()).throw(__import__("signers").BackendUnavailable("poll only"))
print("READY", flush=True)
for line in sys.stdin:
    jti = line.strip()
    cache.is_revoked(jti)
    print("WATCHING", flush=True)
    while not cache.is_revoked(jti):
        time.sleep(0.0005)
    print(repr(time.time()), flush=True)
"""


def bench_propagation(uri: str, mode: str, label: str, count: int = 30) -> None:
    follower = subprocess.Popen([sys.executable, "-c", FOLLOWER, uri, mode], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1)
    assert follower.stdin and follower.stdout
    assert follower.stdout.readline().startswith("READY")
    delays = []
    with open_state(uri) as state:
        store = state.revocations()
        for _ in range(count):
            jti = uuid.uuid4().hex
            follower.stdin.write(jti + "\n")
            follower.stdin.flush()
            assert follower.stdout.readline().startswith("WATCHING")
            store.revoke(jti)
            returned = time.time()
            delays.append(float(follower.stdout.readline()) - returned)
    follower.kill()
    delays.sort()
    ROWS.append(f"| propagation, {label} | p50 {statistics.median(delays) * 1000:.1f} ms | "
                f"p99 {delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000:.1f} ms | |")


WRITER = """
import sys, time
from signers.stores import open_state
with open_state(sys.argv[1]) as state:
    log = state.audit_log(sys.argv[2])
    n = int(sys.argv[3])
    started = time.perf_counter()
    for i in range(n):
        log.append({"ts": "t", "kind": "signature", "key_id": "k", "alg": "Ed25519", "message_sha256": "0" * 64,
                    "context": {}})
    print(time.perf_counter() - started)
"""
RAW = """
import sys, time, json, hashlib, psycopg
with psycopg.connect(sys.argv[1].split("?")[0], autocommit=True) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, record text)")
    n = int(sys.argv[3])
    started = time.perf_counter()
    for i in range(n):
        with conn.transaction():
            conn.execute("INSERT INTO bench_raw (record) VALUES (%s)", (json.dumps({"i": i, "h": hashlib.sha256(b"x").hexdigest()}),))
    print(time.perf_counter() - started)
"""


def bench_audit(postgres_uri: str, n: int = 300) -> None:
    for writers in (1, 8):
        name = f"bench-{uuid.uuid4().hex[:6]}"
        rates = []
        for script in (WRITER, RAW):
            started = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-c", script, postgres_uri, name, str(n)], cwd=ROOT,
                                      stdout=subprocess.PIPE, text=True) for _ in range(writers)]
            for p in procs:
                p.wait()
            rates.append(writers * n / (time.perf_counter() - started))
        ROWS.append(f"| audit append, {writers} writer(s): keyplane vs raw INSERT (records/s) | {rates[0]:.0f} | "
                    f"{rates[1]:.0f} | {rates[1] / rates[0]:.2f} |")


def bench_status_list(seconds: float) -> None:
    statuses = StatusList(1 << 20, 1)
    for i in range(0, 1 << 20, 997):
        statuses.set(i, INVALID)
    decoded = StatusList.from_json(statuses.to_json())
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteRevocationStore(Path(tmp) / "r.db")
        for i in range(0, 20_000, 7):
            store.revoke(f"jti-{i}")
        ours = p50_us(lambda: decoded.get(123_457), seconds)
        theirs = p50_us(lambda: store.get("jti-12345"), seconds)
        store.close()
    row("status list check (1M indices) vs SQLite revocation lookup", ours, theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0?prefix=keyplane-bench:")
    args = parser.parse_args()
    bench_cache(args.seconds, args.redis)
    bench_propagation(args.postgres, "push", "PostgreSQL LISTEN/NOTIFY")
    bench_propagation(args.redis, "push", "Redis stream")
    bench_propagation(args.redis, "poll", "polling every 100 ms")
    bench_audit(args.postgres)
    bench_status_list(args.seconds)
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores)")
    print("| row | keyplane | baseline | ratio |")
    print("|---|---|---|---|")
    print("\n".join(ROWS))


if __name__ == "__main__":
    main()
