"""keyplane's azurekms Signer vs the raw azure-keyvault-keys CryptographyClient, against the local emulator.

    python benchmarks/bench_azure.py [--seconds 0.25] [--rounds 20] [--specs P-256,P-384,secp256k1,RSA-2048]

The emulator runs in a child process (so its signing does not share our GIL) on a free
loopback port, over HTTPS with the challenge-auth flow done once per client. Both sides use
the real SDK over the same kind of pooled HTTPS session; the difference is what keyplane
adds per signature: hashing, the raw r||s -> DER conversion, the error guard. Rows:

  raw        CryptographyClient.sign(alg, digest) with the digest computed in advance (the floor)
  raw+hash   what a user of the SDK writes: hash the message, then CryptographyClient.sign
  keyplane   Signer.sign(message): hash, sign, DER (the signature X.509 and `cryptography` expect)

Rows are measured in many short interleaved rounds so drift hits every column alike; the
`local` row times keyplane's own per-signature work without the network (not noisy). No
assertion is made on the numbers: this prints, it does not judge.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import multiprocessing
import os
import pstats
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from latency import sample_for, summarize

from signers.algorithms import KeySpec

TOKEN_ENV = "KEYPLANE_BENCH_AZURE_TOKEN"
MESSAGE = b"benchmark message " * 8


def _serve(conn: Any, token: str) -> None:
    from conformance.emulators import azure_keyvault

    handle = azure_keyvault.start("127.0.0.1", 0, token=token)
    conn.send((handle.url, handle.ca_pem_path))
    conn.recv()  # blocks until the parent says stop
    handle.stop()






class _Credential:
    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def _rows(raw: Any, alg: Any, hasher: Any, digest: bytes, signer: Any) -> dict[str, Callable[[], Any]]:
    def raw_sign() -> Any:
        return raw.sign(alg, digest)

    def raw_hash_sign() -> Any:
        return raw.sign(alg, hasher(MESSAGE).digest())

    def keyplane_sign() -> bytes:
        return bytes(signer.sign(MESSAGE))

    return {"raw": raw_sign, "raw+hash": raw_hash_sign, "keyplane": keyplane_sign}


def _calls(fn: Callable[[], Any], runs: int = 100) -> float:
    """Python function calls per signature (cProfile): a load-independent measure of work done."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(runs):
        fn()
    profile.disable()
    return float(pstats.Stats(profile).total_calls) / runs  # type: ignore[attr-defined]


def _local_work(signer: Any, raw_signature: bytes) -> float:
    """Microseconds of keyplane's per-signature work outside the SDK call (network-free, so not noisy)."""
    from signers.algorithms import KeyFamily
    from signers.signature_format import digest, ecdsa_raw_to_der

    ec_family = signer.algorithm.family is KeyFamily.EC
    runs = 20000
    start = time.perf_counter()
    for _ in range(runs):
        digest(signer.algorithm, MESSAGE)
        if ec_family:
            ecdsa_raw_to_der(raw_signature)
    return (time.perf_counter() - start) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.25, help="seconds per row per round")
    parser.add_argument("--rounds", type=int, default=20, help="short interleaved rounds spread load drift evenly")
    parser.add_argument("--specs", default="P-256,P-384,secp256k1,RSA-2048")
    args = parser.parse_args()

    from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm

    from backends.azure_keyvault import AzureKeyVaultKeyStore

    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, token), daemon=True)
    server.start()
    url, ca = parent.recv()
    try:
        store = AzureKeyVaultKeyStore.from_uri(
            f"azurekms://{url.removeprefix('https://')}?ca-bundle={ca}&token-source=env:{TOKEN_ENV}"
        )
        print(f"emulator {url} (child process); {args.rounds} rounds x {args.seconds:g} s per row")
        print(f"{'spec':<10} {'row':<9} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x raw':>7} {'x raw+hash':>10} "
              f"{'calls/sig':>9}")
        for name in args.specs.split(","):
            spec = KeySpec.parse(name.strip())
            signer = store.create_key(f"bench-{secrets.token_hex(4)}", spec)
            key = store._client.get_key(signer.uri.split("/")[3], signer.version)
            raw_client = CryptographyClient(key, _Credential(token), verify_challenge_resource=False,
                                            connection_verify=ca)
            alg = SignatureAlgorithm(signer.algorithm.value)  # the SDK's enum; same wire names as ours
            hasher = getattr(hashlib, signer.algorithm.hash_name or "sha256")
            digest = hasher(MESSAGE).digest()
            rows = _rows(raw_client, alg, hasher, digest, signer)
            for fn in rows.values():  # warm up: challenge, connection pool, TLS sessions
                for _ in range(20):
                    fn()
            samples: dict[str, list[float]] = {row: [] for row in rows}
            for _ in range(args.rounds):
                for row, fn in rows.items():
                    samples[row].extend(sample_for(fn, args.seconds))
            stats = {row: summarize(s) for row, s in samples.items()}
            raw_p50, hashed_p50 = stats["raw"][1], stats["raw+hash"][1]
            for row, (ops, p50, p99) in stats.items():
                print(f"{spec.value:<10} {row:<9} {ops:>8.0f} {p50:>8.3f} {p99:>8.3f} "
                      f"{p50 / raw_p50:>7.3f} {p50 / hashed_p50:>10.3f} {_calls(rows[row]):>9.0f}")
            local_us = _local_work(signer, raw_client.sign(alg, digest).signature)
            print(f"{spec.value:<10} {'local':<9} {'':>8} {local_us / 1e3:>8.3f} {'':>8} "
                  f"{local_us / 1e3 / raw_p50:>7.3f}   (keyplane's own work per signature: hash + r||s->DER)")
            signer.public_key.verify(signer.sign(MESSAGE), MESSAGE, signer.algorithm)
            raw_client.close()
        store.close()
        print("x raw / x raw+hash: p50 latency over the raw SDK call's (1.000 = no overhead); "
              "calls/sig: Python function calls per signature")
    finally:
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
