"""Every file a command reads: missing is reported as missing (exit 2), binary as not text, never a raw exception.

The commands share `signers.commands.io`; this runs one of each kind of input through the
command that takes it: token, revocation list, claims, JWK / JWKS, code file, CSR, CRL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import signers
from signers.cli import main
from signers.jose import JWKS
from signers.x509 import CertificateAuthority, write_pem

Case = tuple[str, list[str], str]


@pytest.fixture
def material(tmp_path: Path, file_store_uri: str) -> dict[str, str]:
    with signers.open_store(file_store_uri) as store:
        key = store.create_key("issuer", signers.KeySpec.ED25519)
        JWKS.of(key).write(tmp_path / "jwks.json")
        write_pem(tmp_path / "root.pem", CertificateAuthority.create_root(key, "Input Test Root").certificate)
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x80" * 100)
    return {"key": key.uri, "jwks": str(tmp_path / "jwks.json"), "binary": str(tmp_path / "binary.bin"),
            "missing": str(tmp_path / "missing.jwt"), "dir": str(tmp_path), "root": str(tmp_path / "root.pem")}


def cases(m: dict[str, str]) -> list[Case]:
    missing, jwks = m["missing"], m["jwks"]
    return [
        ("token file", ["token", "verify", missing, "--jwks", jwks], f"token file {missing} does not exist"),
        ("token file, relative", ["token", "verify", "nowhere/t", "--jwks", jwks], "token file nowhere/t does not exist"),
        ("passport file", ["passport", "verify", missing, "--jwks", jwks], "does not exist"),
        # --list-iss: a signed list's issuer must be pinned (else that refusal comes first)
        ("revocation list", ["token", "verify", "a.b.c", "--jwks", jwks, "--revocation-list", missing,
                             "--list-iss", "issuer"],
         f"revocation list file {missing} does not exist"),
        ("claims file", ["token", "sign", m["key"], "--claims", "@" + missing], f"claims file {missing} does not exist"),
        ("JWK file", ["token", "verify", "a.b.c", "--jwks", missing], f"key file {missing} does not exist"),
        ("agent key file", ["passport", "issue", m["key"], "--sub", "a", "--name", "n", "--agent-key", missing,
                            "--code-hash", "00" * 32, "--stage", "dev", "--trust-score", "5"], "does not exist"),
        ("code file", ["passport", "issue", m["key"], "--sub", "a", "--name", "n", "--agent-key", jwks,
                       "--code-file", missing, "--stage", "dev", "--trust-score", "5"],
         f"code file {missing} does not exist"),
        # signers.x509 words it its own way ("PATH: no such CSR file"): still reported as missing
        ("CSR file", ["ca", "sign-csr", missing, "--key", m["key"], "--cert", missing], "no such CSR file"),
        ("CRL file", ["ca", "verify", m["root"], "--roots", m["root"], "--crl", missing], "no such CRL file"),
        ("public key file", ["keys", "verify", "--pubkey", missing, "--signature", "AAAA", "--in", jwks],
         f"public key file {missing} does not exist"),
        ("signature file", ["keys", "verify", "--pubkey", jwks, "--signature", missing, "--in", jwks],
         f"signature file {missing} does not exist"),
        ("message file", ["keys", "sign", m["key"], "--in", missing], f"input file {missing} does not exist"),
    ]


def binary_cases(m: dict[str, str]) -> list[Case]:
    binary, jwks = m["binary"], m["jwks"]
    return [
        ("binary token", ["token", "verify", binary, "--jwks", jwks], "not UTF-8 text"),
        ("binary JWKS", ["token", "verify", "a.b.c", "--jwks", binary], "not UTF-8 text"),
        ("binary claims", ["token", "sign", m["key"], "--claims", "@" + binary], "not UTF-8 text"),
        ("binary revocation list", ["token", "verify", "a.b.c", "--jwks", jwks, "--revocation-list", binary,
                                    "--list-iss", "issuer"], "not UTF-8 text"),
        ("binary public key", ["keys", "verify", "--pubkey", binary, "--signature", "AAAA", "--in", jwks], ""),
        ("binary config", ["--config", binary, "keys", "pubkey", "x"], "not UTF-8 text"),
    ]


def check(capsys: pytest.CaptureFixture[str], case: Case) -> None:
    what, argv, expected = case
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (what, code, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (what, err)
    assert expected in err, (what, err)
    assert "malformed" not in err and "FileNotFoundError" not in err, (what, err)


def test_missing_files_are_reported_as_missing(capsys: pytest.CaptureFixture[str], material: dict[str, str]) -> None:
    for case in cases(material):
        check(capsys, case)


def test_binary_files_are_one_line_usage_errors(capsys: pytest.CaptureFixture[str], material: dict[str, str]) -> None:
    for case in binary_cases(material):
        check(capsys, case)


def test_a_directory_where_a_file_belongs(capsys: pytest.CaptureFixture[str], material: dict[str, str]) -> None:
    check(capsys, ("directory", ["keys", "sign", material["key"], "--in", material["dir"]], "is a directory"))


def test_a_word_that_is_not_a_file_is_still_judged_as_a_token(capsys: pytest.CaptureFixture[str],
                                                              material: dict[str, str]) -> None:
    assert main(["token", "verify", "garbage", "--jwks", material["jwks"]]) == 1  # malformed token: refused
    assert "TokenInvalid" in capsys.readouterr().err


def test_an_unwritable_output_is_one_line(capsys: pytest.CaptureFixture[str], material: dict[str, str],
                                          tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"m")
    code = main(["keys", "sign", material["key"], "--in", str(tmp_path / "m"), "--out", str(tmp_path / "no" / "sig")])
    err = capsys.readouterr().err
    assert code == 2 and "its directory does not exist" in err and len(err.strip().splitlines()) == 1


def test_config_flag_reaches_token_and_ca_commands(capsys: pytest.CaptureFixture[str], material: dict[str, str],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYPLANE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./keyplane.toml here: only the flag can name the file
    config = tmp_path / "elsewhere.toml"
    config.write_text(f'[keys.issuer]\nuri = "{material["key"]}"\n')
    assert main(["--config", str(config), "token", "sign", "issuer", "--sub", "s"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["--config", str(config), "token", "verify", token, "--key", "issuer"]) == 0
    assert main(["--config", str(config), "jwks", "issuer"]) == 0
    assert main(["--config", str(config), "ca", "csr", "--key", "issuer", "--subject", "CN=x"]) == 0
    capsys.readouterr()
    assert main(["token", "sign", "issuer"]) == 2  # without the flag the name is unknown
    assert "no key named 'issuer'" in capsys.readouterr().err
