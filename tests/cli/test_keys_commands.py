"""``keyplane keys ...`` and the top-level flags, as a new user meets them (issue 13 item 4)."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import signers
from signers.cli import main

from .conftest import ROOT, Run, one_line_error


def test_version_prints_the_package_version(keyplane: Run) -> None:
    result = keyplane("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"keyplane {signers.__version__}"


def test_create_help_shows_the_default_spec(keyplane: Run) -> None:
    result = keyplane("keys", "create", "--help")
    assert result.returncode == 0
    assert "(default: Ed25519)" in " ".join(result.stdout.split())


def test_create_labels_its_output(keyplane: Run, file_store_uri: str) -> None:
    result = keyplane("keys", "create", "k1", "--spec", "P-256", "--store", file_store_uri)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "created key k1"
    labelled = dict(line.split(None, 1) for line in lines[1:])
    assert labelled["spec"] == "P-256" and labelled["algorithm"] == "ES256"
    assert labelled["uri"].startswith("file:") and len(labelled["key_id"]) == 43


def test_list_shows_spec_and_key_id_on_the_file_store(keyplane: Run, file_store_uri: str) -> None:
    made = {}
    for name, spec in (("a", "Ed25519"), ("b", "ML-DSA-44")):
        created = keyplane("--json", "keys", "create", name, "--spec", spec, "--store", file_store_uri)
        made[name] = json.loads(created.stdout)
    listing = keyplane("keys", "list", "--store", file_store_uri)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "SPEC", "KEY", "ID"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name["a"][1:3] == ["Ed25519", made["a"]["key_id"]]
    assert by_name["b"][1:3] == ["ML-DSA-44", made["b"]["key_id"]]
    as_json = json.loads(keyplane("keys", "list", "--store", file_store_uri, "--json").stdout)
    assert {k["name"]: (k["spec"], k["key_id"]) for k in as_json["keys"]} == {
        n: (m["spec"], m["key_id"]) for n, m in made.items()}


def test_a_store_directory_that_does_not_exist_is_an_error(keyplane: Run, tmp_path: Path) -> None:
    result = keyplane("keys", "list", "--store", f"file:{tmp_path / 'no-such-dir'}")
    assert result.returncode == 2
    assert "does not exist" in one_line_error(result)
    assert "(no keys)" not in result.stdout


def test_an_empty_store_lists_no_keys(keyplane: Run, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = keyplane("keys", "list", "--store", f"file:{tmp_path / 'empty'}")
    assert result.returncode == 0 and result.stdout.strip() == "(no keys)"


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_is_accepted_before_and_after_the_command(keyplane: Run, file_store_uri: str, where: str) -> None:
    args = ["keys", "create", "j", "--store", file_store_uri]
    result = keyplane(*(["--json", *args] if where == "before" else [*args, "--json"]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spec"] == "Ed25519"


def test_json_errors_after_the_command_are_json_too(keyplane: Run, tmp_path: Path) -> None:
    result = keyplane("keys", "list", "--store", f"file:{tmp_path / 'missing'}", "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {"ok": False, "error": "ConfigError",
                                         "message": f"store directory {tmp_path / 'missing'} does not exist"}


def make_key(store_uri: str, name: str, spec: str = "Ed25519") -> None:
    with signers.open_store(store_uri) as store:
        store.create_key(name, spec)


def test_delete_with_yes_deletes(keyplane: Run, file_store_uri: str) -> None:
    make_key(file_store_uri, "gone")
    result = keyplane("keys", "delete", "gone", "--store", file_store_uri, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted: gone (Ed25519, key id ")
    assert keyplane("keys", "pubkey", file_store_uri.replace("?", "/gone?")).returncode == 4  # KeyNotFound


def test_delete_without_yes_and_without_a_terminal_refuses(keyplane: Run, file_store_uri: str) -> None:
    make_key(file_store_uri, "kept")
    result = keyplane("keys", "delete", "kept", "--store", file_store_uri, stdin="y\n")
    assert result.returncode == 2
    assert "pass --yes" in one_line_error(result)
    assert keyplane("keys", "pubkey", file_store_uri.replace("?", "/kept?")).returncode == 0


def test_delete_of_a_missing_key_fails_before_asking(keyplane: Run, file_store_uri: str) -> None:
    make_key(file_store_uri, "other")
    result = keyplane("keys", "delete", "never-made", "--store", file_store_uri, "--yes")
    assert result.returncode == 4
    assert one_line_error(result).startswith("keyplane: KeyNotFound:")


def _delete_on_a_terminal(file_store_uri: str, cwd: Path, answer: bytes) -> tuple[int, str]:
    """Run `keys delete` with a pseudo-terminal as standard input and type `answer`."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "signers.cli", "keys", "delete", "k", "--store",
                                    file_store_uri], stdin=terminal, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
        os.write(controller, answer)
        _, stderr = process.communicate(timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, stderr.decode()


@pytest.mark.parametrize(("answer", "deleted"), [(b"y\n", True), (b"n\n", False), (b"\n", False)])
def test_delete_asks_on_a_terminal(keyplane: Run, file_store_uri: str, tmp_path: Path, answer: bytes,
                                   deleted: bool) -> None:
    make_key(file_store_uri, "k")
    code, stderr = _delete_on_a_terminal(file_store_uri, tmp_path, answer)
    assert "delete key k (Ed25519" in stderr and "[y/N]" in stderr
    assert code == (0 if deleted else 2)
    still_there = keyplane("keys", "pubkey", file_store_uri.replace("?", "/k?")).returncode == 0
    assert still_there is not deleted


@pytest.fixture
def signed(file_store_uri: str, tmp_path: Path) -> dict[str, Path]:
    """A P-256 key, a message, its signature, and the public key in every format (made with the library)."""
    with signers.open_store(file_store_uri) as store:
        signer = store.create_key("s", signers.KeySpec.P256)
        files = {"message": tmp_path / "msg", "signature": tmp_path / "msg.sig"}
        files["message"].write_bytes(b"release 1.0")
        files["signature"].write_bytes(signer.sign(b"release 1.0"))
        pk = signer.public_key
    for fmt, text in (("pem", pk.to_pem()), ("jwk", json.dumps(pk.to_jwk())),
                      ("der", base64.b64encode(pk.to_der()).decode())):
        files[fmt] = tmp_path / f"pub.{fmt}"
        files[fmt].write_text(text)
    files["raw-der"] = tmp_path / "pub.raw-der"
    files["raw-der"].write_bytes(pk.to_der())
    return files


@pytest.mark.parametrize("fmt", ["pem", "jwk", "der", "raw-der"])
def test_verify_pubkey_takes_pem_jwk_and_der(keyplane: Run, signed: dict[str, Path], fmt: str) -> None:
    result = keyplane("keys", "verify", "--pubkey", str(signed[fmt]), "--signature", "msg.sig", "--in", "msg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verified: ES256 signature by ")
    signed["message"].write_bytes(b"release 1.1")
    assert keyplane("keys", "verify", "--pubkey", str(signed[fmt]), "--signature", "msg.sig",
                    "--in", "msg").returncode == 1


def test_a_base64_signature_inline_still_works(keyplane: Run, signed: dict[str, Path]) -> None:
    inline = base64.b64encode(signed["signature"].read_bytes()).decode()
    result = keyplane("keys", "verify", "--pubkey", "pub.pem", "--signature", inline, "--in", "msg")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("flag", "what"), [("--pubkey", "public key file"), ("--signature", "signature file"),
                                            ("--in", "input file")])
def test_missing_input_files_are_reported_as_missing(keyplane: Run, signed: dict[str, Path], flag: str,
                                                     what: str) -> None:
    args = {"--pubkey": "pub.pem", "--signature": "msg.sig", "--in": "msg"}
    args[flag] = "no-such-file"
    result = keyplane("keys", "verify", *[x for pair in args.items() for x in pair])
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"{what} no-such-file does not exist" in line


def test_a_binary_file_as_a_public_key_is_one_line_exit_2(keyplane: Run, signed: dict[str, Path],
                                                          tmp_path: Path) -> None:
    (tmp_path / "garbage").write_bytes(bytes(range(256)) * 4)
    result = keyplane("keys", "verify", "--pubkey", "garbage", "--signature", "msg.sig", "--in", "msg")
    assert result.returncode == 2
    one_line_error(result)


def test_config_flag_error_names_the_flag(keyplane: Run, tmp_path: Path) -> None:
    result = keyplane("--config", "nowhere.toml", "keys", "pubkey", "ca")
    assert result.returncode == 2
    assert one_line_error(result) == "keyplane: ConfigError: --config nowhere.toml: no such file"
    from_env = keyplane("keys", "pubkey", "ca", env={"KEYPLANE_CONFIG": "nowhere.toml"})
    assert "KEYPLANE_CONFIG" in one_line_error(from_env)


def test_config_is_passed_explicitly_not_through_the_environment(tmp_path: Path, file_store_uri: str,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KEYPLANE_CONFIG", raising=False)
    store = signers.open_store(file_store_uri)
    store.create_key("named", signers.KeySpec.ED25519)
    config = tmp_path / "elsewhere.toml"
    config.write_text(f'[keys.ca]\nuri = "{file_store_uri.replace("?", "/named?")}"\n')
    assert main(["--config", str(config), "keys", "pubkey", "ca", "--format", "jwk"]) == 0
    assert json.loads(capsys.readouterr().out)["crv"] == "Ed25519"
    assert "KEYPLANE_CONFIG" not in os.environ


def test_a_closed_pipe_exits_quietly(keyplane: Run, file_store_uri: str, tmp_path: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first write, as after `| head -1` has read its line
    try:
        result = subprocess.run([sys.executable, "-m", "signers.cli", "completion", "bash"], stdout=writer,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(writer)
    assert result.stderr == ""
    assert result.returncode == 141


def test_a_closed_pipe_through_head_says_nothing(tmp_path: Path) -> None:
    result = subprocess.run(f"'{sys.executable}' -m signers.cli completion bash | head -c 10", shell=True,
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout) == 10


def test_demo_removes_its_temporary_directory(keyplane: Run, tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = keyplane("--json", "demo", env={"TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kept"] is False and report["directory"].startswith(str(scratch))
    assert list(scratch.iterdir()) == []


def test_demo_keeps_a_directory_it_was_given(keyplane: Run, tmp_path: Path) -> None:
    result = keyplane("demo", "--dir", "kept")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kept" / "keys").is_dir() and (tmp_path / "kept" / "issuer-jwks.json").is_file()


def test_demo_cleans_up_when_it_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr("signers.commands.demo.DEMO_PARTS", ("tests.cli.failing_demo_part",))
    assert main(["demo"]) == 2
    assert "made to fail" in capsys.readouterr().err
    assert list(scratch.iterdir()) == []
