"""``keyplane keys import``: through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import signers


def keyplane(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signers.cli", *args], capture_output=True, text=True, env=env,
                          check=False)


def test_keys_import_pem_and_seed_then_sign(tmp_path: Path) -> None:
    env = {**os.environ, "KEYPLANE_PASSWORD": "store-pw", "KEY_PW": "file-pw"}
    store = f"file:{tmp_path / 'store'}"
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "k.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"file-pw")))
    done = keyplane("--json", "keys", "import", "ca", "--from", str(pem), "--store", store,
                    "--password-source", "env:KEY_PW", env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["key_id"] == signers.PublicKey(key.public_key()).key_id and out["spec"] == "P-256"
    seed = tmp_path / "seed.bin"
    seed.write_bytes(bytes(range(32)))
    done = keyplane("keys", "import", "pq", "--from", str(seed), "--format", "seed", "--spec", "ML-DSA-65",
                    "--store", store, env=env)
    assert done.returncode == 0 and "imported pq: ML-DSA-65" in done.stdout, done.stderr
    os.environ["KEYPLANE_PASSWORD"] = "store-pw"
    try:
        signer = signers.open(f"{store}/pq")
        signer.public_key.verify(signer.sign(b"m"), b"m")
    finally:
        del os.environ["KEYPLANE_PASSWORD"]


def test_keys_import_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "KEYPLANE_PASSWORD": "store-pw"}
    store = f"file:{tmp_path / 'store'}"
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff\xfe not a key")
    for args in (("--from", str(tmp_path / "missing")), ("--from", str(garbage)),
                 ("--from", str(garbage), "--format", "jwk")):
        done = keyplane("keys", "import", "k", *args, "--store", store, env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "store" / "k.pem").exists()
