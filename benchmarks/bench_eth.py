"""EIP-712 signing through keyplane against eth-account's local signing, same key, same run.

    python benchmarks/bench_eth.py [--seconds 2]

Rows (p50 latency per signature, interleaved A B B A phases so drift hits both sides):

* file store: keyplane (`EthSigner.sign_typed_data`: encode, Prehashed ECDSA in the file
  back end, low-s, recovery id by trying candidates) vs eth-account `Account.sign_typed_data`
  with the same private key (its own RFC 6979 signing, recovery id known for free);
* the recovery-id step alone (what keyplane must add because no back end returns v);
* AWS KMS on moto (`bench_aws.moto_process`: moto in a child process, so server and client
  do not share a GIL), same secp256k1 key: keyplane's EIP-712 signature (encode, DIGEST sign,
  low-s, recovery id) and its bare `sign_digest` vs the raw boto3 ``sign`` of the same
  Keccak-256 digest (MessageType=DIGEST, ECDSA_SHA_256), which returns no recovery id.

``--no-kms`` skips the moto rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from latency import sample_for, summarize  # noqa: E402

import signers  # noqa: E402
from signers.eth import EthSigner  # noqa: E402
from signers.eth.recoverable import eth_keys  # noqa: E402
from tests.eth.support import MAIL  # noqa: E402


def _phases(a: object, b: object, seconds: float) -> tuple[list[float], list[float]]:
    left: list[float] = []
    right: list[float] = []
    for first, second in ((a, b), (b, a), (a, b), (b, a)):
        for fn in (first, second):
            (left if fn is a else right).extend(sample_for(fn, seconds / 4))  # type: ignore[arg-type]
    return left, right


def _row(name: str, ours: list[float], theirs: list[float]) -> str:
    _, p50_ours, _ = summarize(ours)
    _, p50_theirs, _ = summarize(theirs)
    return f"| {name} | {p50_ours:.3f} | {p50_theirs:.3f} | {p50_ours / p50_theirs:.2f} |"


def _kms_rows(seconds: float) -> None:
    """The AWS KMS rows, on a moto server of this run."""
    import boto3
    from bench_aws import moto_process

    from backends.aws_kms import AwsKmsKeyStore
    from signers.algorithms import KeySpec
    from tests.fixtures.moto import REGION, aws_environment

    with tempfile.TemporaryDirectory(prefix="keyplane-bench-eth-") as tmp, moto_process(Path(tmp)) as moto:
        os.environ.update(aws_environment(moto, Path(tmp)))
        store = AwsKmsKeyStore.from_uri(moto.store_uri)
        try:
            signer = store.create_key("bench-eth", KeySpec.SECP256K1)
            eth = EthSigner(signer)
            raw = boto3.client("kms", endpoint_url=moto.endpoint, region_name=REGION)
            digest = eth.typed_data_hash(MAIL)

            def boto3_sign() -> bytes:
                return bytes(raw.sign(KeyId=signer.key_arn, Message=digest, MessageType="DIGEST",
                                      SigningAlgorithm="ECDSA_SHA_256")["Signature"])

            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

            for sig in (boto3_sign(), signer.sign_digest(digest)):  # both sides sign with the key, correctly
                signer.public_key.key.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            assert eth.sign_typed_data(MAIL)  # warm both clients' connections
            ours, theirs = _phases(lambda: eth.sign_typed_data(MAIL), boto3_sign, seconds)
            print(_row("EIP-712 sign, AWS KMS on moto vs raw boto3 DIGEST sign", ours, theirs))
            ours, theirs = _phases(lambda: signer.sign_digest(digest), boto3_sign, seconds)
            print(_row("digest sign, AWS KMS on moto vs raw boto3 DIGEST sign", ours, theirs))
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--no-kms", action="store_true", help="skip the AWS KMS rows (no moto server)")
    args = parser.parse_args()
    from eth_account import Account

    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| row | keyplane p50 ms | peer p50 ms | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KEYPLANE_BENCH_PASSWORD"] = "bench-password"
        with signers.open_store(f"file:{tmp}/store?password-source=env:KEYPLANE_BENCH_PASSWORD") as store:
            from cryptography.hazmat.primitives.asymmetric import ec

            key = ec.generate_private_key(ec.SECP256K1())
            eth = EthSigner(store.import_key("bench", key))  # type: ignore[attr-defined]
            raw = key.private_numbers().private_value.to_bytes(32, "big")
            local = Account.from_key(raw)
            assert local.address == eth.address
            ours, theirs = _phases(lambda: eth.sign_typed_data(MAIL),
                                   lambda: local.sign_typed_data(full_message=MAIL), args.seconds)
            print(_row("EIP-712 sign, file store vs eth-account", ours, theirs))
            digest = eth.typed_data_hash(MAIL)
            sig = eth.sign_hash(digest)
            keys = eth_keys()
            recover, baseline = _phases(
                lambda: keys.Signature(vrs=sig.vrs).recover_public_key_from_msg_hash(digest),
                lambda: eth.signer.sign_digest(digest),  # type: ignore[attr-defined]
                args.seconds)
            print(_row("one recovery candidate vs one file-store digest signature", recover, baseline))
    if not args.no_kms:
        _kms_rows(args.seconds)
    print("(ratio > 1: keyplane slower; recovery tries at most two candidates per signature)")


if __name__ == "__main__":
    main()
