"""``keyplane ca ...`` end to end, in process: init, intermediate, csr, sign-csr, issue, revoke, crl, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from signers.cli import main
from signers.x509 import read_certificates

from .support import assert_openssl_accepts, openssl_verify


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["--json", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setenv("KEYPLANE_TEST_PASSWORD", "cli password")
    uri = f"file:{tmp_path / 'keys'}?password-source=env:KEYPLANE_TEST_PASSWORD"
    for name, spec in (("root", "P-384"), ("issuing", "P-256"), ("agent", "Ed25519"), ("other", "Ed25519")):
        assert main(["keys", "create", name, "--spec", spec, "--store", uri]) == 0
    capsys.readouterr()
    return f"file:{tmp_path / 'keys'}"


def _key(store: str, name: str) -> str:
    return f"{store}/{name}?password-source=env:KEYPLANE_TEST_PASSWORD"


def test_ca_lifecycle(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root_dir, issuing_dir = tmp_path / "root", tmp_path / "issuing"
    code, out = _run(capsys, "ca", "init", "--dir", str(root_dir), "--key", _key(store, "root"),
                     "--subject", "CN=CLI Root,O=keyplane", "--path-length", "1")
    assert code == 0 and out["subject"] == "CN=CLI Root,O=keyplane"
    state = json.loads((root_dir / "ca.json").read_text())
    assert state["key"].endswith("root?password-source=env:KEYPLANE_TEST_PASSWORD")
    code, out = _run(capsys, "ca", "init", "--dir", str(issuing_dir), "--key", _key(store, "issuing"),
                     "--subject", "CN=CLI Issuing", "--parent", str(root_dir))
    assert code == 0 and out["issuer"] == "CN=CLI Root,O=keyplane"
    assert len(read_certificates(issuing_dir / "chain.pem")) == 2

    code, out = _run(capsys, "ca", "init", "--dir", str(root_dir), "--key", _key(store, "root"), "--subject", "x")
    assert code == 2 and out["error"] == "ConfigError"  # never overwrites

    csr = tmp_path / "agent.csr"
    code, _ = _run(capsys, "ca", "csr", "--key", _key(store, "agent"), "--subject", "CN=cli-agent",
                   "--san", "uri:spiffe://keyplane.test/agent/cli", "--out", str(csr))
    assert code == 0
    agent = tmp_path / "agent.pem"
    code, out = _run(capsys, "ca", "sign-csr", "--dir", str(issuing_dir), str(csr), "--out", str(agent))
    assert code == 0 and out["subject"] == "CN=cli-agent"

    other = tmp_path / "other.pem"
    code, out = _run(capsys, "ca", "issue", "--dir", str(issuing_dir), "--for-key", _key(store, "other"),
                     "--san", "dns:other.test", "--hours", "2", "--eku", "server_auth", "--out", str(other))
    assert code == 0 and out["subject"] == ""

    code, out = _run(capsys, "ca", "crl", "--dir", str(issuing_dir))
    assert code == 0 and out["revoked"] == 0
    code, out = _run(capsys, "ca", "verify", str(agent), "--dir", str(issuing_dir),
                     "--crl", str(issuing_dir / "crl.pem"), "--eku", "client_auth")
    assert code == 0 and out["path"] == ["CN=cli-agent", "CN=CLI Issuing", "CN=CLI Root,O=keyplane"]

    chain = read_certificates(issuing_dir / "chain.pem")
    (leaf,) = read_certificates(agent)
    assert_openssl_accepts(tmp_path / "openssl", leaf, chain[:1], chain[1])

    code, out = _run(capsys, "ca", "revoke", "--dir", str(issuing_dir), "--certificate", str(agent),
                     "--reason", "key-compromise")
    assert code == 0 and out["reason"] == "keyCompromise" and out["serial"] == f"{leaf.serial_number:x}"
    code, out = _run(capsys, "ca", "crl", "--dir", str(issuing_dir))
    assert code == 0 and out["revoked"] == 1
    code, out = _run(capsys, "ca", "verify", str(agent), "--dir", str(issuing_dir),
                     "--crl", str(issuing_dir / "crl.pem"))
    assert code == 1 and out["reason"] == "revoked" and out["certificate"] == "CN=cli-agent"
    from signers.x509 import load_crl

    crl = load_crl((issuing_dir / "crl.pem").read_bytes())
    result = openssl_verify(tmp_path / "openssl", leaf, chain[:1], chain[1], crls=[crl])
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr

    # The other certificate is still good, and is refused when its serial is revoked by hex.
    code, _ = _run(capsys, "ca", "verify", str(other), "--roots", str(root_dir / "ca.pem"),
                   "--untrusted", str(issuing_dir / "ca.pem"), "--crl", str(issuing_dir / "crl.pem"))
    assert code == 0
    (other_certificate,) = read_certificates(other)
    code, _ = _run(capsys, "ca", "revoke", "--dir", str(issuing_dir), f"{other_certificate.serial_number:x}")
    assert code == 0
    _run(capsys, "ca", "crl", "--dir", str(issuing_dir))
    code, out = _run(capsys, "ca", "verify", str(other), "--dir", str(issuing_dir),
                     "--crl", str(issuing_dir / "crl.pem"))
    assert code == 1 and out["reason"] == "revoked"


def test_explicit_paths_instead_of_a_directory(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root_dir = tmp_path / "root"
    assert _run(capsys, "ca", "init", "--dir", str(root_dir), "--key", _key(store, "root"), "--subject", "R")[0] == 0
    code, out = _run(capsys, "ca", "issue", "--key", _key(store, "root"), "--cert", str(root_dir / "ca.pem"),
                     "--revocations", str(tmp_path / "elsewhere.db"), "--for-key", _key(store, "agent"),
                     "--subject", "CN=explicit")
    assert code == 0 and out["issuer"] == "CN=R"
    assert (tmp_path / "elsewhere.db").exists()


def test_usage_errors(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "ca", "crl", "--dir", str(tmp_path / "nothing-here"))
    assert code == 2 and "not a CA directory" in out["message"]
    assert main(["ca", "verify", str(tmp_path / "missing.pem"), "--roots", str(tmp_path / "missing.pem")]) == 2
    assert "missing.pem" in capsys.readouterr().err
