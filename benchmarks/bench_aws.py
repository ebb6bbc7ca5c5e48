"""keyplane's AWS KMS signer against the raw boto3 `sign` call, on one moto server, same key.

    python benchmarks/bench_aws.py [--ops 400] [--threads 8] [--json out.json]

The script starts its own moto server (a child process on loopback, so server and client do
not share a GIL; the AWS-documented Sign of tests/fixtures/moto.py) and signs with the same P-256 key both ways: a 32-byte message
(RAW on the wire for both) and a 64 KiB message (keyplane hashes locally and sends DIGEST;
the raw side does the same by hand, since RAW stops at 4096 bytes). Ten short phases
alternate raw / keyplane (A B B A ...) so drift in the server hits both sides alike. The overhead ratio is
keyplane's p50 latency over boto3's: 1.00 means keyplane adds nothing measurable.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fixtures.moto: one moto set-up for tests and benchmark

from latency import Timed, comparison_options, p50_ratios, percentile, run_calls, save_results  # noqa: E402

from backends.aws_kms import AwsKmsKeyStore  # noqa: E402
from signers.algorithms import KeySpec  # noqa: E402
from tests.fixtures.moto import REGION, MotoKms, aws_environment, start_moto_kms  # noqa: E402

Result = Timed  # case: the message size




def compare(fns: dict[str, Callable[[], bytes]], ops: int, threads: int, rounds: int = 10) -> dict[str, tuple[float, list[float]]]:
    """Alternate short phases A B B A ... so drift in the server (moto slows as it runs) hits both alike."""
    totals = {name: (0.0, []) for name in fns}  # type: dict[str, tuple[float, list[float]]]
    names = list(fns)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            run = run_calls(fns[name], max(1, ops // rounds), threads)
            seconds, lat = run.seconds, run.latencies_ms
            totals[name] = (totals[name][0] + seconds, totals[name][1] + lat)
    return totals




def serve_moto(ready_file: Path) -> int:
    """Child process: run moto until stdin closes; its address and credentials go to `ready_file`."""
    with start_moto_kms(ready_file.parent, iam_auth=False) as moto:
        tmp = ready_file.with_suffix(".part")
        tmp.write_text(json.dumps({**asdict(moto), "credentials_file": str(moto.credentials_file)}))
        tmp.rename(ready_file)  # appears complete or not at all
        sys.stdin.read()  # the parent closes our stdin when it is done
    return 0


@contextmanager
def moto_process(workdir: Path, deadline_seconds: float = 60.0) -> Iterator[MotoKms]:
    ready = workdir / "moto.json"
    child = subprocess.Popen([sys.executable, __file__, "--serve-moto", str(ready)], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + deadline_seconds
        while not ready.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the moto server process did not come up")
            time.sleep(0.05)  # polling a condition with a deadline
        data = json.loads(ready.read_text())
        yield MotoKms(**{**data, "credentials_file": Path(data["credentials_file"])})
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def run(ops: int, threads: int) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="keyplane-bench-aws-") as tmp, moto_process(Path(tmp)) as moto:
        os.environ.update(aws_environment(moto, Path(tmp)))
        import boto3
        from botocore.config import Config

        store = AwsKmsKeyStore.from_uri(moto.store_uri)
        signer = store.create_key("bench-p256", KeySpec.P256)
        raw = boto3.client("kms", endpoint_url=moto.endpoint, region_name=REGION,
                           config=Config(retries={"mode": "standard"}, max_pool_connections=32))
        short, long = b"keyplane bench message: 32 bytes", os.urandom(64 * 1024)

        def raw_short() -> bytes:
            return bytes(raw.sign(KeyId=signer.key_arn, Message=short, MessageType="RAW",
                                  SigningAlgorithm="ECDSA_SHA_256")["Signature"])

        def raw_long() -> bytes:
            return bytes(raw.sign(KeyId=signer.key_arn, Message=hashlib.sha256(long).digest(), MessageType="DIGEST",
                                  SigningAlgorithm="ECDSA_SHA_256")["Signature"])

        cases = [("32 B", raw_short, lambda: signer.sign(short)), ("64 KiB", raw_long, lambda: signer.sign(long))]
        for label, raw_sign, keyplane_sign in cases:
            signer.public_key.verify(keyplane_sign(), short if label == "32 B" else long)  # both sides correct
            signer.public_key.verify(raw_sign(), short if label == "32 B" else long)
            for mode, n in (("sequential", 1), (f"{threads} threads", threads)):
                run_calls(raw_sign, 20, n)  # warm-up: connections, credential resolution
                run_calls(keyplane_sign, 20, n)
                for impl, (seconds, lat) in compare({"boto3": raw_sign, "keyplane": keyplane_sign}, ops, n).items():
                    results.append(Result(label, mode, impl, len(lat), len(lat) / seconds, percentile(lat, 50), percentile(lat, 99)))
        store.close()
    return results


def table(results: list[Result]) -> str:
    lines = [f"{'message':8} {'mode':12} {'impl':9} {'ops':>5} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}"]
    for r, ratio in zip(results, p50_ratios(results, "boto3"), strict=True):
        lines.append(f"{r.case:8} {r.mode:12} {r.impl:9} {r.ops:5d} {r.per_second:8.0f} {r.p50_ms:8.2f} "
                     f"{r.p99_ms:8.2f} {ratio:>6}")
    lines.append("ratio = keyplane p50 / boto3 p50 (same moto server, same key, same run)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = comparison_options(__doc__, 400, argv, hidden=("--serve-moto",))
    if args.serve_moto:
        return serve_moto(args.serve_moto)
    results = run(args.ops, args.threads)
    print(table(results))
    save_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
