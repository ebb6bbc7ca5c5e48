"""The verification path (PublicKey.verify) against every Wycheproof vector we were given.

One loader, one test per vector file; a failure lists every vector that went the wrong
way by tcId and comment. 'acceptable' vectors may go either way: the outcome we chose is
recorded in ACCEPTABLE and checked, so a change of behaviour shows up here.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

from signers import ConfigError, InvalidSignature, KeySpec, PublicKey, SignatureAlgorithm

# (file, tcId) -> outcome we chose for an 'acceptable' vector, and why.
ACCEPTABLE: dict[tuple[str, int], tuple[bool, str]] = {
    # PKCS#1 v1.5 DigestInfo without the NULL parameter: OpenSSL (hence cryptography) rejects it;
    # strict DER is what X.509 requires, so we keep rejecting.
    ("rsa_signature_2048_sha256_test.json", 8): (False, "MissingNull: rejected (strict DigestInfo)"),
}


@dataclass(frozen=True)
class VerifyFile:
    name: str
    algorithm: SignatureAlgorithm | None  # None: ML-DSA, taken from the spec


VERIFY_FILES = [
    VerifyFile("ed25519_test.json", SignatureAlgorithm.ED25519),
    VerifyFile("ecdsa_secp256r1_sha256_test.json", SignatureAlgorithm.ES256),
    VerifyFile("ecdsa_secp384r1_sha384_test.json", SignatureAlgorithm.ES384),
    VerifyFile("ecdsa_secp256k1_sha256_test.json", SignatureAlgorithm.ES256K),
    VerifyFile("rsa_pss_2048_sha256_mgf1_32_test.json", SignatureAlgorithm.PS256),
    VerifyFile("rsa_signature_2048_sha256_test.json", SignatureAlgorithm.RS256),
    VerifyFile("mldsa_44_verify_test.json", None),
    VerifyFile("mldsa_65_verify_test.json", None),
    VerifyFile("mldsa_87_verify_test.json", None),
]
SEED_FILES = {
    "mldsa_44_sign_seed_test.json": KeySpec.ML_DSA_44,
    "mldsa_65_sign_seed_test.json": KeySpec.ML_DSA_65,
    "mldsa_87_sign_seed_test.json": KeySpec.ML_DSA_87,
}
MLDSA_SPECS = {"mldsa_44": KeySpec.ML_DSA_44, "mldsa_65": KeySpec.ML_DSA_65, "mldsa_87": KeySpec.ML_DSA_87}
_SEED_CLASSES: dict[KeySpec, Any] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}


def load(vectors_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress((vectors_dir / "wycheproof" / f"{name}.gz").read_bytes()))
    return data


def group_key(name: str, group: dict[str, Any]) -> PublicKey:
    """The group's public key, through the same constructors back ends use."""
    if name.startswith("mldsa"):
        return PublicKey.from_raw_mldsa(MLDSA_SPECS[name[:8]], bytes.fromhex(group["publicKey"]))
    return PublicKey.from_der(bytes.fromhex(group["publicKeyDer"]))


def verdict(key: PublicKey, test: dict[str, Any], algorithm: SignatureAlgorithm) -> bool:
    context = bytes.fromhex(test["ctx"]) if "ctx" in test else None
    try:
        key.verify(bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"]), algorithm, context=context)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("vf", VERIFY_FILES, ids=lambda vf: vf.name)
def test_wycheproof_verify(vf: VerifyFile, vectors_dir: Path, summary_lines: list[str]) -> None:
    data = load(vectors_dir, vf.name)
    wrong: list[str] = []
    counted = 0
    for group in data["testGroups"]:
        try:
            key: PublicKey | None = group_key(vf.name, group)
        except ConfigError:
            key = None  # a malformed public key: every signature under it must be refused
        for test in group["tests"]:
            counted += 1
            algorithm = vf.algorithm or (key.spec.default_algorithm if key else SignatureAlgorithm.ML_DSA_44)
            got = verdict(key, test, algorithm) if key is not None else False
            label = f"tcId {test['tcId']} ({test['comment']}, {test['flags']})"
            if test["result"] == "acceptable":
                chosen = ACCEPTABLE.get((vf.name, int(test["tcId"])))
                if chosen is None:
                    wrong.append(f"{label}: acceptable vector with no recorded decision (we {'accept' if got else 'reject'})")
                elif chosen[0] != got:
                    wrong.append(f"{label}: recorded {chosen[1]!r} but got {'accept' if got else 'reject'}")
            elif got != (test["result"] == "valid"):
                wrong.append(f"{label}: expected {test['result']}, got {'valid' if got else 'invalid'}")
    assert counted == data["numberOfTests"], "vector count does not match the file header"
    summary_lines.append(f"wycheproof {vf.name}: {counted} vectors checked, {counted - len(wrong)} as expected")
    assert not wrong, f"{len(wrong)} of {counted} vectors went the wrong way:\n" + "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(SEED_FILES))
def test_wycheproof_mldsa_sign_seed(name: str, vectors_dir: Path, summary_lines: list[str]) -> None:
    """Seed -> key pair matches the vector's public key and PKCS#8; valid signatures verify; mu matches."""
    spec = SEED_FILES[name]
    data = load(vectors_dir, name)
    wrong: list[str] = []
    counted = 0
    for group in data["testGroups"]:
        seed = bytes.fromhex(group["privateSeed"])
        for test in group["tests"]:
            counted += 1
            label = f"tcId {test['tcId']} ({test['comment']})"
            ctx = bytes.fromhex(test["ctx"]) if "ctx" in test else None
            try:
                private = _SEED_CLASSES[spec].from_seed_bytes(seed)
                if ctx is not None and len(ctx) > 255:
                    private.sign(b"", ctx)  # must raise: FIPS 204 caps the context at 255 bytes
                accepted = True
            except ValueError:
                accepted = False
            if not accepted:
                if test["result"] == "valid":
                    wrong.append(f"{label}: valid vector was refused")
                continue
            if test["result"] == "invalid":
                wrong.append(f"{label}: invalid vector ({test['flags']}) was accepted")
                continue
            public = PublicKey(private.public_key())
            if public.to_raw() != bytes.fromhex(group["publicKey"]):
                wrong.append(f"{label}: seed gives a different public key")
            pkcs8 = private.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            if "privateKeyPkcs8" in group and pkcs8 != bytes.fromhex(group["privateKeyPkcs8"]):
                wrong.append(f"{label}: PKCS#8 seed encoding differs")
            if "msg" not in test:  # an 'Internal' vector: only mu is given
                try:
                    public.verify_mu(bytes.fromhex(test["sig"]), bytes.fromhex(test["mu"]))
                except InvalidSignature:
                    wrong.append(f"{label}: the vector's signature over mu does not verify")
                continue
            message = bytes.fromhex(test["msg"])
            if "mu" in test:
                hasher = mldsa.MLDSAMuHasher(private.public_key(), ctx)
                hasher.update(message)
                if hasher.finalize() != bytes.fromhex(test["mu"]):
                    wrong.append(f"{label}: external mu differs")
            try:
                public.verify(bytes.fromhex(test["sig"]), message, spec.default_algorithm, context=ctx)
            except InvalidSignature:
                wrong.append(f"{label}: the vector's signature does not verify")
            ours = private.sign(message, ctx)
            try:
                public.verify(ours, message, spec.default_algorithm, context=ctx)
            except InvalidSignature:
                wrong.append(f"{label}: our own signature does not verify")
    summary_lines.append(f"wycheproof {name}: {counted} vectors checked, {counted - len(wrong)} as expected")
    assert not wrong, "\n".join(wrong)
