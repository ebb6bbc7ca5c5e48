"""Named keys from keyplane.toml, back-end discovery, the CLI's contract, and import hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import signers
from signers import Config, ConfigError, KeySpec
from signers.cli import main

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, store_uri: str) -> Path:
    path = tmp_path / "keyplane.toml"
    path.write_text(
        f'[stores.local]\nuri = "{store_uri}"\n\n'
        '[keys.ca]\nstore = "local"\nname = "ca-key"\nalgorithm = "RS256"\n\n'
        f'[keys.direct]\nuri = "{store_uri.replace("?", "/direct?")}"\n'
    )
    return path


def test_named_keys_open_through_config(tmp_path: Path, file_store_uri: str) -> None:
    store = signers.open_store(file_store_uri)
    store.create_key("ca-key", KeySpec.RSA2048)
    store.create_key("direct", KeySpec.ED25519)
    config = Config.load(write_config(tmp_path, file_store_uri), environ={})
    ca = signers.open("ca", config=config)
    assert ca.algorithm.value == "RS256"
    assert signers.open("direct", config=config).public_key.spec is KeySpec.ED25519
    assert signers.open_store("local", config=config).uri.startswith("file:")


def test_environment_overrides(tmp_path: Path, file_store_uri: str) -> None:
    path = write_config(tmp_path, file_store_uri)
    env = {"KEYPLANE_CONFIG": str(path), "KEYPLANE_KEY_CA_ALGORITHM": "PS384", "KEYPLANE_KEY_NEW_ONE_URI": "file:/x/y"}
    config = Config.load(environ=env)
    assert config.key("ca").algorithm is not None and config.key("ca").algorithm.value == "PS384"
    assert config.key("new-one").uri == "file:/x/y"


@pytest.mark.parametrize(
    "text",
    ["[keys.a]\n", '[keys.a]\nuri = "file:/x"\nstore = "s"\n', '[keys.a]\nstore = "nope"\n', "[other]\n",
     '[keys.a]\nuri = "file:/x"\ncolour = "red"\n', "not toml ["],
)
def test_bad_config_is_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        Config.load(path, environ={})


def test_unknown_scheme_and_unknown_name() -> None:
    with pytest.raises(ConfigError, match="no back end for URI scheme 'nosuch:'"):
        signers.open("nosuch:thing")
    with pytest.raises(ConfigError, match="no key named"):
        signers.open("absent-name", config=Config())


def test_our_back_ends_register_through_entry_points() -> None:
    assert {"file", "pkcs11", "awskms", "azurekms", "gcpkms", "hashivault"} <= set(signers.available_schemes())


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signers.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def test_cli_keys_round_trip_and_exit_codes(tmp_path: Path, file_store_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    message = tmp_path / "msg"
    message.write_bytes(b"hello")
    assert main(["--json", "keys", "create", "k1", "--spec", "P-256", "--store", file_store_uri]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["spec"] == "P-256"
    assert main(["keys", "sign", created["uri"], "--in", str(message), "--out", str(tmp_path / "sig")]) == 0
    assert main(["keys", "pubkey", created["uri"], "--format", "jwk"]) == 0
    jwk = capsys.readouterr().out.split("\n", 1)[1]
    (tmp_path / "pub.jwk").write_text(jwk)
    assert main(["keys", "verify", "--pubkey", str(tmp_path / "pub.jwk"), "--signature", str(tmp_path / "sig"),
                 "--in", str(message)]) == 0
    message.write_bytes(b"tampered")
    assert main(["keys", "verify", created["uri"], "--signature", str(tmp_path / "sig"), "--in", str(message)]) == 1
    assert main(["keys", "create", "k1", "--spec", "P-256", "--store", file_store_uri]) == 4  # KeyExists
    assert main(["keys", "create", "k2", "--spec", "RSA-1024", "--store", file_store_uri]) == 2
    capsys.readouterr()
    assert main(["--json", "keys", "list", "--store", file_store_uri]) == 0
    assert [k["name"] for k in json.loads(capsys.readouterr().out)["keys"]] == ["k1"]


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = run_cli("keys", "pubkey", f"file:{tmp_path}/nope?password-source=env:UNSET_VAR_X")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert run_cli("keys", "create").returncode == 2  # usage error


def test_demo_runs_and_says_verified(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout
    for name in ("demo-ed25519", "demo-p256", "demo-mldsa65"):
        assert name in result.stdout
    as_json = run_cli("--json", "demo", "--dir", str(tmp_path / "demo2"))
    assert json.loads(as_json.stdout)["ok"] is True


def test_import_and_help_load_no_cloud_sdk() -> None:
    code = (
        "import sys, signers, backends, conformance\n"
        "from signers.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('boto3', 'botocore', 'azure', 'google', 'grpc', 'hvac', 'pkcs11', 'requests', 'rich', 'jwt')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]", result.stdout
