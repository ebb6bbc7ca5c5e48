"""`keyplane ca ...` with hostile or sloppy input: one line, exit 2, never a traceback or an ASN.1 dump.

Also: `ca verify --dir` checks the CA's own CRL, `ca revoke` warns about serials this CA never
issued and takes any spelling of a serial, `--san urn:...` is a URI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signers.cli import main
from signers.x509 import read_certificates

PASSWORD_ENV = "KEYPLANE_TEST_PASSWORD"


@pytest.fixture
def ca_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.setenv(PASSWORD_ENV, "cli password")
    store = f"file:{tmp_path / 'keys'}?password-source=env:{PASSWORD_ENV}"
    for name in ("root", "agent"):
        assert main(["keys", "create", name, "--spec", "P-256", "--store", store]) == 0
    directory = tmp_path / "root"
    assert main(["ca", "init", "--dir", str(directory), "--key", _key(tmp_path, "root"), "--subject", "CN=Input"]) == 0
    capsys.readouterr()
    return directory


def _key(tmp_path: Path, name: str) -> str:
    return f"file:{tmp_path / 'keys'}/{name}?password-source=env:{PASSWORD_ENV}"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(["--json", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _one_line_usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err and "ParseError" not in captured.err, captured.err
    return lines[0]


def test_damaged_and_binary_files_are_one_line(ca_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    good = (ca_dir / "ca.pem").read_bytes()
    der = read_certificates(ca_dir / "ca.pem")[0].public_bytes(Encoding.DER)
    damaged = {
        "binary.pem": bytes(range(256)) * 4,
        "truncated.der": der[: len(der) // 2],
        "bad-base64.pem": good.replace(b"M", b"!", 5),
        "empty.pem": b"",
    }
    for name, data in damaged.items():
        path = tmp_path / name
        path.write_bytes(data)
        line = _one_line_usage_error(capsys, "ca", "verify", str(path), "--dir", str(ca_dir), "--no-crl")
        assert name in line or "certificate" in line, line
        _one_line_usage_error(capsys, "ca", "verify", str(ca_dir / "ca.pem"), "--roots", str(path))
        _one_line_usage_error(capsys, "ca", "revoke", "--dir", str(ca_dir), "--certificate", str(path))
        _one_line_usage_error(capsys, "ca", "issue", "--dir", str(ca_dir), "--pubkey", str(path), "--subject", "x")
        _one_line_usage_error(capsys, "ca", "sign-csr", "--dir", str(ca_dir), str(path))
        _one_line_usage_error(capsys, "ca", "verify", str(ca_dir / "ca.pem"), "--dir", str(ca_dir),
                              "--crl", str(path))
    flipped = tmp_path / "flipped.der"  # still parses, but its signature algorithm fields disagree
    flipped.write_bytes(der[:40] + bytes([der[40] ^ 0xFF]) + der[41:])
    assert main(["ca", "verify", str(flipped), "--dir", str(ca_dir), "--no-crl"]) == 1
    assert capsys.readouterr().out.startswith("NOT verified: ")
    (ca_dir / "crl.pem").write_bytes(b"\x00\xff" * 50)
    original = (ca_dir / "ca.pem").read_bytes()
    (ca_dir / "ca.pem").write_bytes(der[: len(der) // 2])  # the CA's own certificate damaged
    assert "ca.pem" in _one_line_usage_error(capsys, "ca", "crl", "--dir", str(ca_dir))
    assert "ca.pem" in _one_line_usage_error(capsys, "ca", "issue", "--dir", str(ca_dir), "--for-key",
                                             _key(tmp_path, "agent"), "--subject", "x")
    assert "ca.pem" in _one_line_usage_error(capsys, "ca", "init", "--dir", str(tmp_path / "child"), "--key",
                                             _key(tmp_path, "agent"), "--subject", "C", "--parent", str(ca_dir))
    (ca_dir / "ca.pem").write_bytes(original)
    _one_line_usage_error(capsys, "ca", "verify", str(ca_dir / "ca.pem"), "--dir", str(ca_dir))
    (ca_dir / "ca.json").write_bytes(b"\xff\xfe\x00garbage")
    assert "ca.json" in _one_line_usage_error(capsys, "ca", "crl", "--dir", str(ca_dir))
    (ca_dir / "ca.json").write_text("[1, 2]")
    assert "ca.json" in _one_line_usage_error(capsys, "ca", "crl", "--dir", str(ca_dir))
    assert "no such" in _one_line_usage_error(capsys, "ca", "verify", str(tmp_path / "missing.pem"),
                                              "--roots", str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e300"])
def test_bad_durations_are_one_line(ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    value: str) -> None:
    _one_line_usage_error(capsys, "ca", "issue", "--dir", str(ca_dir), "--for-key", _key(tmp_path, "agent"),
                          "--subject", "x", f"--hours={value}")
    _one_line_usage_error(capsys, "ca", "crl", "--dir", str(ca_dir), f"--hours={value}")
    _one_line_usage_error(capsys, "ca", "init", "--dir", str(tmp_path / f"new-{value}"),
                          "--key", _key(tmp_path, "agent"), "--subject", "N", f"--days={value}")


def test_other_bad_arguments_are_one_line(ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issue = ["ca", "issue", "--dir", str(ca_dir), "--for-key", _key(tmp_path, "agent")]
    _one_line_usage_error(capsys, *issue, "--subject", "x" * 100_000)
    _one_line_usage_error(capsys, *issue, "--subject", "x", "--hours", "0.001")  # shorter than the backdating
    _one_line_usage_error(capsys, *issue, "--san", "host.test:8443")
    _one_line_usage_error(capsys, *issue, "--subject", "x", "--eku", "1..2")
    _one_line_usage_error(capsys, *issue, "--subject", "x", "--ca", "--path-length", "-1")
    _one_line_usage_error(capsys, "ca", "revoke", "--dir", str(ca_dir), "not-hex")
    _one_line_usage_error(capsys, "ca", "verify", str(ca_dir / "ca.pem"), "--dir", str(ca_dir), "--no-crl",
                          "--at", "yesterday")


def test_untagged_urn_san_is_a_uri(ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "urn.pem"
    code, _, _ = _json(capsys, "ca", "issue", "--dir", str(ca_dir), "--for-key", _key(tmp_path, "agent"),
                       "--san", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "--out", str(out))
    assert code == 0
    san = read_certificates(out)[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"]
    assert san.get_values_for_type(x509.DNSName) == []


def test_verify_dir_checks_the_cas_own_crl(ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = tmp_path / "agent.pem"
    assert _json(capsys, "ca", "issue", "--dir", str(ca_dir), "--for-key", _key(tmp_path, "agent"),
                 "--subject", "CN=agent", "--out", str(agent))[0] == 0
    line = _one_line_usage_error(capsys, "ca", "verify", str(agent), "--dir", str(ca_dir))
    assert "crl.pem does not exist" in line  # no silent "verified" without revocation
    assert _json(capsys, "ca", "crl", "--dir", str(ca_dir))[0] == 0
    code, out, _ = _json(capsys, "ca", "verify", str(agent), "--dir", str(ca_dir))
    assert code == 0 and out["crls_checked"] == 1
    serial = read_certificates(agent)[0].serial_number
    code, out, err = _json(capsys, "ca", "revoke", "--dir", str(ca_dir), f"0x00{serial:X}")
    assert code == 0 and out["serial"] == f"{serial:x}" and out["warning"] is None and not err
    assert out["crl"] == str(ca_dir / "crl.pem")  # revoking republished the CA's CRL
    code, out, _ = _json(capsys, "ca", "verify", str(agent), "--dir", str(ca_dir))  # no --crl, no --require-crl
    assert code == 1 and out["reason"] == "revoked"
    code, out, _ = _json(capsys, "ca", "verify", str(agent), "--dir", str(ca_dir), "--no-crl")
    assert code == 0


def test_revoking_what_this_ca_never_issued_warns(ca_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _json(capsys, "ca", "issue", "--dir", str(ca_dir), "--for-key", _key(tmp_path, "agent"),
                 "--subject", "CN=agent")[0] == 0
    code, out, err = _json(capsys, "ca", "revoke", "--dir", str(ca_dir), "c0ffee")
    assert code == 0 and "never issued" in out["warning"] and "warning" in err and "c0ffee" in err
    other = tmp_path / "other"
    assert main(["ca", "init", "--dir", str(other), "--key", _key(tmp_path, "agent"), "--subject", "CN=Other"]) == 0
    capsys.readouterr()
    code, out, err = _json(capsys, "ca", "revoke", "--dir", str(ca_dir), "--certificate", str(other / "ca.pem"))
    assert code == 0 and "not issued by this CA" in out["warning"]
