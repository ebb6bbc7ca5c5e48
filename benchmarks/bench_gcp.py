"""keyplane's gcpkms Signer vs the raw KeyManagementServiceClient, against the local KMS emulator.

    python benchmarks/bench_gcp.py [--seconds 3] [--specs P-256,Ed25519,ML-DSA-65,RSA-2048] [--in-process]

The emulator runs in a child process (so its signing does not share our GIL) on a free
loopback port; both sides use the same google-cloud-kms client and gRPC channel, so the
difference is what keyplane adds per signature: hashing (or mu), CRC32C of the request,
the integrity checks of the answer, error translation. Two raw baselines:

  raw        client.asymmetric_sign(request) with a request built once in advance
             (the floor: no hashing, no checks; the SDK's default retry wrapper)
  raw+checks what Google's samples do per signature: hash, CRC32C, call, check
             verified_*_crc32c and signature_crc32c

Rows are measured in interleaved rounds so drift hits every column alike. No assertion
is made on the numbers: this prints, it does not judge.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import secrets
import sys
from collections.abc import Callable
from typing import Any

from latency import sample_for, summarize

from signers.algorithms import KeySpec

TOKEN_ENV = "KEYPLANE_BENCH_GCP_TOKEN"


def _serve(conn: Any, token: str) -> None:
    from conformance.emulators import gcp_kms

    handle = gcp_kms.start("127.0.0.1", 0, token=token)
    conn.send(handle.address)
    conn.recv()  # blocks until the parent says stop
    handle.stop()






def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per column and spec")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds the time is split into")
    parser.add_argument("--specs", default="P-256,Ed25519,ML-DSA-65,RSA-2048")
    parser.add_argument("--message", type=int, default=256, help="message size in bytes")
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process")
    args = parser.parse_args(argv)

    from google.cloud import kms_v1

    from backends.gcp_kms import GcpKmsKeyStore, _crc32c

    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    child = None
    if args.in_process:
        from conformance.emulators import gcp_kms

        handle = gcp_kms.start("127.0.0.1", 0, token=token)
        address = handle.address
    else:
        parent_conn, child_conn = multiprocessing.Pipe()
        child = multiprocessing.get_context("spawn").Process(target=_serve, args=(child_conn, token), daemon=True)
        child.start()
        address = parent_conn.recv()
    uri = (f"gcpkms://projects/bench/locations/global/keyRings/bench?endpoint={address}"
           f"&insecure=true&token-source=env:{TOKEN_ENV}")
    message = os.urandom(args.message)
    print(f"emulator {address} ({'in-process' if args.in_process else 'child process'}), "
          f"message {args.message} B, {args.seconds:g} s per column, {args.rounds} rounds")
    header = f"{'spec':<10} {'column':<11} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs raw':>7} {'vs raw+checks':>14}"
    print(header)
    print("-" * len(header))
    with GcpKmsKeyStore.from_uri(uri) as store:
        client = store._client
        for name in args.specs.split(","):
            spec = KeySpec.parse(name)
            signer = store.create_key(f"bench-{spec.value.replace('.', '')}-{secrets.token_hex(3)}", spec)
            raw_request, checked = _raw_calls(kms_v1, client, signer, message, _crc32c)
            columns: dict[str, Callable[[], Any]] = {
                "raw": functools.partial(client.asymmetric_sign, request=raw_request),
                "raw+checks": checked,
                "keyplane": functools.partial(signer.sign, message),
            }
            for fn in columns.values():  # warm up the channel and caches
                for _ in range(20):
                    fn()
            samples: dict[str, list[float]] = {c: [] for c in columns}
            for _ in range(args.rounds):
                for column, fn in columns.items():
                    samples[column] += sample_for(fn, args.seconds / args.rounds)
            rows = {c: summarize(s) for c, s in samples.items()}
            for column, (ops, p50, p99) in rows.items():
                vs_raw = rows["raw"][1] and p50 / rows["raw"][1]
                vs_checked = rows["raw+checks"][1] and p50 / rows["raw+checks"][1]
                print(f"{spec.value:<10} {column:<11} {ops:>9.0f} {p50:>8.3f} {p99:>8.3f} {vs_raw:>7.2f} "
                      f"{vs_checked:>14.2f}")
    if child is not None:
        parent_conn.send("stop")
        child.join(timeout=10)
    print("ratio = keyplane p50 latency / baseline p50 latency (1.00 = no overhead)")
    return 0


def _raw_calls(kms_v1: Any, client: Any, signer: Any, message: bytes, crc32c: Callable[[bytes], int]) -> tuple[Any, Any]:
    """(a prebuilt AsymmetricSignRequest, a function doing what Google's sample does per signature)."""
    from cryptography.hazmat.primitives.asymmetric import mldsa

    from signers.signature_format import digest

    name = signer.version_name
    kind = signer._input

    def payload() -> tuple[dict[str, Any], str]:
        if kind == "digest":
            d = digest(signer.algorithm, message)
            return {"digest": {signer.algorithm.hash_name: d}, "digest_crc32c": crc32c(d)}, "digest"
        if kind == "mu":
            hasher = mldsa.MLDSAMuHasher(signer.public_key.key, b"")
            hasher.update(message)
            mu = hasher.finalize()
            return {"digest": {"external_mu": mu}, "digest_crc32c": crc32c(mu)}, "digest"
        return {"data": message, "data_crc32c": crc32c(message)}, "data"

    fields, _ = payload()
    prebuilt = kms_v1.AsymmetricSignRequest(name=name, **fields)

    def checked() -> bytes:
        body, field = payload()
        response = client.asymmetric_sign(request={"name": name, **body})
        if not getattr(response, f"verified_{field}_crc32c") or response.signature_crc32c != crc32c(response.signature):
            raise RuntimeError("corrupted in transit")
        return bytes(response.signature)

    return prebuilt, checked


if __name__ == "__main__":
    sys.exit(main())
