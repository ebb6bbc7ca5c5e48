"""`keyplane emulator aws` + `keyplane conformance run awskms://127.0.0.1:PORT/`: 0 FAIL, every spec real;
and a plain moto server is diagnosed (double-hashed DIGEST, PSS salt, ML-DSA refused) instead of bare FAILs.

Both servers run as their own processes (the CLI command, and moto's own ThreadedMotoServer),
so nothing here depends on the in-process patch of the session's moto fixture.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance import Target, run_conformance
from signers.algorithms import KeySpec

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test-secret-4711",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_SESSION_TOKEN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    (tmp_path / "aws-config").touch()
    return {**env, **CREDENTIALS, "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-config")}


@contextmanager
def _serve(command: list[str], port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the port, not a fixed sleep
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"{command} exited: {proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.1)
        else:
            pytest.fail(f"{command} did not listen on {port} within 60 s")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    command = [sys.executable, "-m", "signers.cli", "emulator", "aws", "--port", str(port)]
    with _serve(command, port, _env(tmp_path)):
        yield port


@pytest.fixture
def plain_moto(tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    serve = ("import threading; from moto.server import ThreadedMotoServer; "
             f"ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False).start(); "
             "threading.Event().wait()")  # moto as published (threaded, like its Docker image), unpatched
    command = [sys.executable, "-c", serve]
    with _serve(command, port, _env(tmp_path)):
        yield port


def test_keyplane_emulator_aws_gives_zero_fail_with_every_spec_served(emulator: int, tmp_path: Path) -> None:
    out = tmp_path / "aws.json"
    result = subprocess.run(
        [sys.executable, "-m", "signers.cli", "conformance", "run", f"awskms://127.0.0.1:{emulator}/",
         "--secret-env", "AWS_SECRET_ACCESS_KEY", "--page", "5", "--json", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=1200, env=_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["counts"]["fail"] == 0 and data["counts"]["stubbed"] == 0
    rows = {(r["spec"], r["check"]): r for r in data["rows"]}
    for spec in KeySpec:  # Ed25519 and ML-DSA are real keys now, not stubbed
        for check in ("create", "open", "key-id", "threads", "async", "delete"):
            assert rows[(spec.value, check)]["status"] == "pass", rows[(spec.value, check)]
    ed = rows[("Ed25519", "sign-verify")]
    assert ed["status"] == "not-supported" and "1 to 4096 bytes" in ed["detail"] and "verified: 1 B, 32 B" in ed["detail"]
    assert "--secret-env AWS_SECRET_ACCESS_KEY" in rows[("store", "secrets")]["detail"]


def test_a_plain_moto_server_is_diagnosed_not_just_failed(plain_moto: int, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    target = Target(f"awskms://127.0.0.1:{plain_moto}/?read-timeout=5&max-attempts=2",
                    specs=[KeySpec.P256, KeySpec.RSA2048, KeySpec.ML_DSA_44], page=2)
    report = run_conformance(target)
    sign = report.row("P-256", "sign-verify")
    assert sign is not None and sign.status == "fail"
    assert "this endpoint double-hashes DIGEST messages: moto <= 5.2.5 does this; use `keyplane emulator aws`" \
        in sign.detail, sign.detail
    assert "32 B" not in sign.detail  # RAW messages verify: only the DIGEST ones are wrong
    pss = report.row("RSA-2048", "sign-verify")
    assert pss is not None and "RSASSA-PSS with a salt other than the 32-byte hash length" in pss.detail, pss
    create = report.row("ML-DSA-44", "create")
    assert create is not None and create.status == "fail"
    assert "claims ML-DSA-44" in create.detail and "refused" in create.detail and "keyplane emulator aws" in create.detail
    others = [r for r in report.rows if r.spec == "ML-DSA-44" and r.check != "create"]
    assert {r.status for r in others} == {"not-supported"}  # one FAIL says it, not fifteen
