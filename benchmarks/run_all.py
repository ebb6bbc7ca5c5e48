"""Every back end this machine can start, against its raw SDK, in one interleaved run: one table.

Rows (each keyplane's time per operation / the raw baseline's, so 1.00 = no overhead):
- file: Ed25519 / P-256 `sign` vs raw `cryptography` signing the same 32-byte message (the file
  store's P-256 within 1.05x).
- issuance: issue_passport and sign_jwt vs the raw signature a JWS carries (issue 21 item 4:
  within 1.3x): raw `cryptography` signing the *same signing input bytes* the token signs
  (``<header>.<payload>``, about 710 bytes for a passport; Ed25519's cost grows with the
  length, so a 32-byte baseline would charge the hashing of the longer input to keyplane),
  producing the signature in the form the JWS carries: Ed25519 as signed, ES256 as r||s
  (RFC 7518 3.4), i.e. `sign` then DER -> r||s with `cryptography`'s decode_dss_signature, a
  conversion every JOSE library makes. The overhead measured is then what keyplane adds:
  claims checks, JSON, base64url, header and the Signer call.
- PKCS#11 (SoftHSM2): `sign` vs raw python-pkcs11; `sign_many` over the session pool vs one by one.
- OpenBao: `sign` vs raw hvac; `sign_many` of 1000 vs one by one (target >= 8x); 64 concurrent
  `sign_async` vs sequential signing (target >= 2x).
- AWS KMS (moto): `sign` vs raw boto3; `sign_many` (pipelined over the pool) vs one by one.

Each row alternates keyplane and baseline in short slices, `rounds` times, interleaved across
every row, so load changes hit all rows alike; which side goes first alternates from round to
round (a disk whose fsync latency drifts within a round would otherwise favour one side); the table shows the median ratio with its
min-max over rounds and the load average before and after. Run: python benchmarks/run_all.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from backends.file import FileKeyStore  # noqa: E402
from signers.algorithms import KeySpec  # noqa: E402
from signers.keys import PublicKey  # noqa: E402
from signers.local_keys import generate_private_key  # noqa: E402
from signers.tokens.jws_sign import sign_jwt  # noqa: E402
from signers.tokens.passport import code_hash_of, issue_passport  # noqa: E402

MESSAGE = b"keyplane bench message: 32 bytes"
GROUPS = ("file", "pkcs11", "openbao", "awskms")  # "file" includes the issuance rows
Op = Callable[[], Any]


@dataclass
class Row:
    """One comparison: `ours` and `base` each do `per_call` operations per call."""

    group: str
    name: str
    ours: Op
    base: Op
    target: str = ""
    higher_is_better: bool = False  # ratios that are speed-ups (base time / our time), not overheads
    ratios: list[float] = field(default_factory=list)
    times: list[tuple[float, float]] = field(default_factory=list)  # (ours, base) seconds per call, per round

    def best(self) -> float:
        """The ratio of the fastest slices: on a loaded machine the least disturbed run of each side."""
        ours, base = min(t[0] for t in self.times), min(t[1] for t in self.times)
        return base / ours if self.higher_is_better else ours / base


def _time(fn: Op, seconds: float) -> float:
    """Seconds per call of `fn`, over about `seconds` (at least 3 calls)."""
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - started
        if calls >= 3 and elapsed >= seconds:
            return elapsed / calls


def measure(rows: list[Row], rounds: int, seconds: float) -> None:
    for row in rows:  # warm-up: connections, caches, imports
        row.ours()
        row.base()
    for round_number in range(rounds):
        for row in rows:
            if round_number % 2:  # ABBA: the side timed first alternates, so a drift (fsync latency) favours neither
                base = _time(row.base, seconds)
                ours = _time(row.ours, seconds)
            else:
                ours = _time(row.ours, seconds)
                base = _time(row.base, seconds)
            row.ratios.append(base / ours if row.higher_is_better else ours / base)
            row.times.append((ours, base))


# -- file back end and issuance ------------------------------------------------------------------------


def file_rows(directory: Path) -> list[Row]:
    os.environ["KEYPLANE_BENCH_FILE_PASSWORD"] = "bench"
    store = FileKeyStore.from_uri(f"file:{directory / 'file'}?password-source=env:KEYPLANE_BENCH_FILE_PASSWORD")
    agent = PublicKey(generate_private_key(KeySpec.ED25519).public_key())
    rows: list[Row] = []
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    passport_arguments: dict[str, Any] = {
        "sub": "agent-1", "name": "Agent", "agent_key": agent, "code_hash": code_hash_of(b"x"), "stage": "ACTIVE",
        "trust_score": 80, "scopes": ["read", "write"], "iss": "https://issuer"}
    claims = {"iss": "https://issuer", "sub": "agent-1", "iat": 1, "exp": 2, "jti": "x" * 22}
    for spec, label in ((KeySpec.ED25519, "Ed25519"), (KeySpec.P256, "ES256")):
        signer = store.create_key(f"bench-{label.lower()}", spec)
        raw: Any = generate_private_key(spec)
        raw_sign: Op = (partial(raw.sign, MESSAGE, ec.ECDSA(hashes.SHA256())) if spec is KeySpec.P256
                        else partial(raw.sign, MESSAGE))
        target = "<= 1.05" if spec is KeySpec.P256 else ""
        rows.append(Row("file", f"{label} sign vs cryptography", partial(signer.sign, MESSAGE), raw_sign, target))
        rows.append(Row("issuance", f"{label} sign_jwt vs raw JWS signature of its input",
                        partial(sign_jwt, signer, claims), _raw_jws_signature(raw, sign_jwt(signer, claims)), "<= 1.3"))
        passport = issue_passport(signer, **passport_arguments)
        rows.append(Row("issuance", f"{label} issue_passport vs raw JWS signature of its input",
                        partial(issue_passport, signer, **passport_arguments), _raw_jws_signature(raw, passport),
                        "<= 1.3"))
    rows += audit_rows(directory)
    return rows


def _raw_jws_signature(raw: Any, token: str) -> Op:
    """Raw `cryptography` producing `token`'s signature field: the same signing input, the JWS form.

    Ed25519: `sign` of the signing input. ES256: `sign` (DER) then r||s, 32 bytes each
    (RFC 7518 3.4), with `cryptography`'s own DER decoder, as JOSE libraries do it.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    if not isinstance(raw, ec.EllipticCurvePrivateKey):
        return partial(raw.sign, signing_input)
    algorithm = ec.ECDSA(hashes.SHA256())

    def es256() -> bytes:
        r, s = decode_dss_signature(raw.sign(signing_input, algorithm))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return es256


def audit_rows(directory: Path) -> list[Row]:
    """benchmarks/bench_audit.py's rows: JSONL and SQLite appends vs the raw durable write; group commit."""
    from bench_audit import comparisons

    return [Row("audit", name, ours, base, target, higher) for name, ours, base, target, higher in comparisons(directory)]


# -- PKCS#11 ------------------------------------------------------------------------------------------


def pkcs11_rows(directory: Path, stack: ExitStack) -> list[Row]:
    from bench_pkcs11 import raw_signers

    from backends.pkcs11 import Pkcs11KeyStore
    from tests.fixtures.softhsm import make_softhsm_token

    token = make_softhsm_token(directory / "softhsm")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    os.environ["KEYPLANE_BENCH_PKCS11_PIN"] = token.pin
    store = Pkcs11KeyStore.from_uri(f"pkcs11:token={token.label}?module-path={token.module}"
                                    "&pin-source=env:KEYPLANE_BENCH_PKCS11_PIN&max-sessions=4")
    stack.callback(store.close)
    signer = store.create_key("bench-p256", KeySpec.P256)
    (raw,) = raw_signers(store, "bench-p256", KeySpec.P256, 1)
    batch = [MESSAGE + i.to_bytes(2, "big") for i in range(64)]
    return [
        Row("pkcs11", "P-256 sign vs python-pkcs11", lambda: signer.sign(MESSAGE), raw),
        Row("pkcs11", "sign_many(64) over 4 sessions vs one by one (speed-up)", lambda: signer.sign_many(batch),
            lambda: [signer.sign(m) for m in batch], higher_is_better=True),
    ]


# -- OpenBao ------------------------------------------------------------------------------------------


def openbao_rows(stack: ExitStack) -> list[Row]:
    import hvac
    from bench_vault import hvac_signer

    from backends.vault_transit import VaultTransitKeyStore
    from tests.fixtures.openbao import OpenBaoServer, find_bao

    server = OpenBaoServer(find_bao())
    server.start()
    stack.callback(server.cleanup)
    os.environ["KEYPLANE_BENCH_VAULT_TOKEN"] = server.token
    store = VaultTransitKeyStore.from_uri(f"openbao://?addr={server.addr}&token-source=env:KEYPLANE_BENCH_VAULT_TOKEN")
    stack.callback(store.close)
    signer = store.create_key("bench-ed25519", KeySpec.ED25519)
    raw = hvac_signer(hvac.Client(url=server.addr, token=server.token), "bench-ed25519", KeySpec.ED25519)
    thousand = [MESSAGE + i.to_bytes(2, "big") for i in range(1000)]
    sixty_four = thousand[:64]

    async def concurrent() -> list[bytes]:
        return list(await asyncio.gather(*(signer.sign_async(m) for m in sixty_four)))

    return [
        Row("openbao", "Ed25519 sign vs hvac", lambda: signer.sign(MESSAGE), raw),
        Row("openbao", "sign_many(1000) vs one by one (speed-up)", lambda: signer.sign_many(thousand),
            lambda: [signer.sign(m) for m in thousand], ">= 8", higher_is_better=True),
        Row("openbao", "64 concurrent sign_async vs sequential (speed-up)", lambda: asyncio.run(concurrent()),
            lambda: [signer.sign(m) for m in sixty_four], ">= 2", higher_is_better=True),
    ]


# -- AWS KMS on moto ----------------------------------------------------------------------------------


def aws_rows(directory: Path, stack: ExitStack) -> list[Row]:
    import boto3
    from bench_aws import REGION, moto_process
    from botocore.config import Config

    from backends.aws_kms import AwsKmsKeyStore
    from tests.fixtures.moto import aws_environment

    moto = stack.enter_context(moto_process(directory))
    os.environ.update(aws_environment(moto, directory))
    store = AwsKmsKeyStore.from_uri(moto.store_uri)
    stack.callback(store.close)
    signer = store.create_key("bench-p256", KeySpec.P256)
    client = boto3.client("kms", endpoint_url=moto.endpoint, region_name=REGION,
                          config=Config(retries={"mode": "standard"}, max_pool_connections=32))

    def raw() -> bytes:
        return bytes(client.sign(KeyId=signer.key_arn, Message=MESSAGE, MessageType="RAW",
                                 SigningAlgorithm="ECDSA_SHA_256")["Signature"])

    batch = [MESSAGE + i.to_bytes(2, "big") for i in range(32)]
    return [
        Row("awskms", "P-256 sign vs boto3", lambda: signer.sign(MESSAGE), raw),
        Row("awskms", "sign_many(32) pipelined vs one by one (speed-up)", lambda: signer.sign_many(batch),
            lambda: [signer.sign(m) for m in batch], higher_is_better=True),
    ]


@contextmanager
def _optional(name: str, skipped: list[str]) -> Iterator[None]:
    try:
        yield
    except Exception as e:  # a back end that cannot start here is reported, the others still run
        skipped.append(f"{name}: {type(e).__name__}: {str(e)[:100]}")


def print_table(rows: list[Row], rounds: int, seconds: float, before: tuple[float, float, float],
                after: tuple[float, float, float], skipped: list[str]) -> None:
    """The one table: each row's median ratio with its min-max over rounds, its best-slice ratio, the load average."""
    print(f"{'back end':9} {'comparison':56} {'ratio':>6} {'min-max':>12} {'best':>6} {'target':>7}")
    for row in rows:
        median = statistics.median(row.ratios)
        span = f"{min(row.ratios):.2f}-{max(row.ratios):.2f}"
        print(f"{row.group:9} {row.name:56} {median:6.2f} {span:>12} {row.best():6.2f} {row.target:>7}")
    print(f"ratio = keyplane time / baseline time (speed-up rows: baseline time / keyplane time), the median of "
          f"{rounds} interleaved rounds of {seconds}s slices; best = fastest keyplane slice / fastest baseline "
          f"slice; load average {before[0]:.2f} before, {after[0]:.2f} after, on {os.cpu_count()} CPUs")
    for line in skipped:
        print(f"not run: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="time per slice")
    parser.add_argument("--only", action="append", choices=GROUPS, help="run only these back ends (repeatable)")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="keyplane-run-all-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        wanted = set(args.only or GROUPS)
        if "file" in wanted:
            rows += file_rows(directory)
        if "pkcs11" in wanted:
            with _optional("pkcs11", skipped):
                rows += pkcs11_rows(directory, stack)
        if "openbao" in wanted:
            with _optional("openbao", skipped):
                rows += openbao_rows(stack)
        if "awskms" in wanted:
            with _optional("awskms", skipped):
                rows += aws_rows(directory, stack)
        before = os.getloadavg()
        measure(rows, args.rounds, args.seconds)
        after = os.getloadavg()
    print_table(rows, args.rounds, args.seconds, before, after, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
