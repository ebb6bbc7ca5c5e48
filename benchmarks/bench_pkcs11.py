"""keyplane's PKCS#11 back end against raw python-pkcs11: same SoftHSM2 token, same key.

    python benchmarks/bench_pkcs11.py [--seconds 2] [--threads 8] [--specs P-256,Ed25519,RSA-2048]
                                      [--locking os|serialize|both]

Sets up its own SoftHSM2 token under a temp dir. For each key spec: signatures/s, p50 and
p99 latency, sequential and from N threads, for keyplane (`Signer.sign(message)`: host
digest, pool checkout, C_Sign, DER conversion) and for raw python-pkcs11 (host digest and
`key.sign()` on a session each thread owns), and the overhead ratio raw/keyplane.

`--locking both` runs the whole table once per module initialisation strategy (in a child
process each, since the choice is made once per process): ``os`` (C_Initialize with
CKF_OS_LOCKING_OK, the default) and ``serialize`` (NULL args, every call behind one lock;
raw python-pkcs11 then needs the same lock, or SoftHSM2 crashes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.pkcs11 import Pkcs11KeyStore  # noqa: E402
from backends.pkcs11.module import LOCKING_ENV  # noqa: E402
from signers.algorithms import KeyFamily, KeySpec  # noqa: E402
from tests.fixtures.softhsm import make_softhsm_token  # noqa: E402

PIN_ENV = "KEYPLANE_BENCH_PKCS11_PIN"
MESSAGE = b"keyplane benchmark message " * 4  # 108 bytes: a typical JWS signing input is this size


def measure(fn: Callable[[int], None], threads: int, seconds: float) -> dict[str, float]:
    """Run fn(thread_index) in a loop from `threads` threads for `seconds`; ops/s and latency percentiles."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds
    errors: list[BaseException] = []

    def loop(index: int) -> None:
        own = latencies[index]
        try:
            while True:
                start = time.perf_counter()
                if start >= stop:
                    return
                fn(index)
                own.append(time.perf_counter() - start)
        except BaseException as e:
            errors.append(e)

    began, cpu_began = time.perf_counter(), time.process_time()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    if errors:
        raise errors[0]
    flat = sorted(x for per in latencies for x in per)
    return {
        "ops": len(flat),
        "ops_per_s": len(flat) / elapsed,
        "p50_ms": statistics.median(flat) * 1000,
        "p99_ms": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000,
        # CPU time per signature (this process, all threads): robust on a shared, loaded machine.
        "cpu_us": cpu / max(1, len(flat)) * 1e6,
    }


def raw_signers(store: Pkcs11KeyStore, label: str, spec: KeySpec, threads: int) -> list[Callable[[], bytes]]:
    """One raw python-pkcs11 sign function per thread, each on its own session, same key, same work."""
    import pkcs11

    tokens = store._tokens
    assert tokens is not None
    sign_fns: list[Callable[[], bytes]] = []
    pss = (pkcs11.Mechanism.SHA256, pkcs11.MGF.SHA256, 32)

    # The family is chosen here, not per call: the raw side pays for nothing but its own work
    # (a per-call `spec.family` is an enum-keyed lookup that would flatter keyplane).
    family = spec.family

    def bind(key: Any) -> Callable[[], bytes]:
        if family is KeyFamily.EDDSA:
            def sign() -> bytes:
                return bytes(key.sign(MESSAGE, mechanism=pkcs11.Mechanism.EDDSA))
        elif family is KeyFamily.EC:
            def sign() -> bytes:
                return bytes(key.sign(hashlib.sha256(MESSAGE).digest(), mechanism=pkcs11.Mechanism.ECDSA))
        else:
            def sign() -> bytes:
                return bytes(key.sign(hashlib.sha256(MESSAGE).digest(), mechanism=pkcs11.Mechanism.RSA_PKCS_PSS,
                                      mechanism_param=pss))
        return sign

    for _ in range(threads):
        session = tokens.token.open(rw=False)  # shares the store's login, as any second session would
        (key,) = session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                                      pkcs11.Attribute.LABEL: label})
        sign_fns.append(bind(key))
    return sign_fns


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def run_table(seconds: float, threads: int, specs: list[KeySpec], rounds: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keyplane-bench-softhsm-") as tmp:
        token = make_softhsm_token(Path(tmp), label="bench")
        os.environ["SOFTHSM2_CONF"] = str(token.conf)
        os.environ[PIN_ENV] = token.pin
        with Pkcs11KeyStore.from_uri(token.uri(PIN_ENV) + f"&max-sessions={threads}") as store:
            rows = []
            for spec in specs:
                label = f"bench-{spec.value}"
                signer = store.create_key(label, spec)
                raw = raw_signers(store, label, spec, threads)
                module = store._tokens.module if store._tokens else None
                raw_call: Callable[[int], None]
                if module is not None and module.locking == "serialize":
                    guard: AbstractContextManager[Any] = module.guard

                    def raw_call(index: int, raw: list[Callable[[], bytes]] = raw,
                                 guard: AbstractContextManager[Any] = guard) -> None:
                        with guard:  # raw python-pkcs11 on a NULL-initialised module must serialise too
                            raw[index]()
                else:
                    def raw_call(index: int, raw: list[Callable[[], bytes]] = raw) -> None:
                        raw[index]()

                def keyplane_call(index: int, signer: Any = signer) -> None:
                    signer.sign(MESSAGE)

                keyplane_call(0)
                raw_call(0)  # warm both paths (key lookup cached per session)
                for mode, n in (("sequential", 1), (f"{threads} threads", threads)):
                    # Interleaved rounds, median kept: a shared machine's noise hits both sides alike.
                    raw_runs, kp_runs = [], []
                    for _ in range(rounds):
                        raw_runs.append(measure(raw_call, n, seconds / rounds))
                        kp_runs.append(measure(keyplane_call, n, seconds / rounds))
                    raw_stats, kp_stats = _median(raw_runs), _median(kp_runs)
                    rows.append({"spec": spec.value, "mode": mode, "raw": raw_stats, "keyplane": kp_stats,
                                 "overhead": raw_stats["ops_per_s"] / kp_stats["ops_per_s"]})
                store.delete_key(label)
            locking = store._tokens.module.locking if store._tokens else "?"
    return {"locking": locking, "rows": rows, "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}


def print_table(result: dict[str, Any]) -> None:
    print(f"\nPKCS#11 on SoftHSM2, module locking: {result['locking']} "
          f"({result['cpus']} CPUs, load average {result['load_average']:.1f} at the end)")
    header = f"{'spec':<10} {'mode':<11} {'raw ops/s':>10} {'kp ops/s':>10} {'raw p50':>8} {'kp p50':>8} " \
             f"{'raw p99':>8} {'kp p99':>8} {'raw cpu':>8} {'kp cpu':>8} {'overhead':>8}"
    print(header)
    print("-" * len(header))
    for row in result["rows"]:
        raw, kp = row["raw"], row["keyplane"]
        print(f"{row['spec']:<10} {row['mode']:<11} {raw['ops_per_s']:>10.0f} {kp['ops_per_s']:>10.0f} "
              f"{raw['p50_ms']:>7.3f}m {kp['p50_ms']:>7.3f}m {raw['p99_ms']:>7.3f}m {kp['p99_ms']:>7.3f}m "
              f"{raw['cpu_us']:>6.0f}us {kp['cpu_us']:>6.0f}us {row['overhead']:>7.2f}x")
    print("  (latencies in ms; cpu = process CPU time per signature; overhead = raw ops/s / keyplane ops/s)")
    by_spec: dict[str, dict[str, float]] = {}
    for row in result["rows"]:
        by_spec.setdefault(row["spec"], {})[row["mode"]] = row["keyplane"]["ops_per_s"]
    for spec, modes in by_spec.items():
        seq, par = modes.get("sequential"), [v for k, v in modes.items() if k != "sequential"]
        if seq and par:
            print(f"  {spec}: keyplane threads/sequential = {par[0] / seq:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement, split into rounds (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved raw/keyplane rounds; medians reported")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--specs", default="P-256,Ed25519,RSA-2048")
    parser.add_argument("--locking", choices=("os", "serialize", "both"), default="os")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    specs = [KeySpec.parse(s) for s in args.specs.split(",") if s]
    if args.locking == "both":
        results = []
        for locking in ("os", "serialize"):
            cmd = [sys.executable, __file__, "--seconds", str(args.seconds), "--threads", str(args.threads),
                   "--rounds", str(args.rounds),
                   "--specs", args.specs, "--locking", locking, "--json"]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, LOCKING_ENV: locking})
            results.append(json.loads(out.stdout))
    else:
        os.environ[LOCKING_ENV] = args.locking
        results = [run_table(args.seconds, args.threads, specs, args.rounds)]
    for result in results:
        if args.json:
            print(json.dumps(result))
        else:
            print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
