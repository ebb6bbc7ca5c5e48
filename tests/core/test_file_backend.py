"""The file back end: round trips for every spec, persistence, and bad input that changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import signers
from backends.file import MARKER, FileKeyStore
from signers import (
    AuthenticationFailed,
    ConfigError,
    InvalidSignature,
    KeyCorrupt,
    KeyExists,
    KeyNotFound,
    KeySpec,
    PermissionDenied,
    SignatureAlgorithm,
)
from tests.fixtures.files import FILE_PASSWORD


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mode: what 'changes nothing on disk' is checked against."""
    return {p.name: (p.read_bytes(), p.stat().st_mode) for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("spec", list(KeySpec), ids=str)
def test_every_spec_signs_and_verifies_for_every_algorithm(file_store: FileKeyStore, spec: KeySpec) -> None:
    signer = file_store.create_key(f"k-{spec.value.lower()}", spec)
    assert signer.algorithm is spec.default_algorithm
    for algorithm in spec.algorithms:
        s = file_store.open(signer.uri, algorithm)
        for message in (b"", b"x", os.urandom(5000)):
            signature = s.sign(message)
            s.public_key.verify(signature, message, algorithm)
            with pytest.raises(InvalidSignature):
                s.public_key.verify(signature, message + b"!", algorithm)
    size = spec.info.signature_size
    if size is not None:
        assert len(signer.sign(b"m")) == size


def test_key_file_is_0600_encrypted_pkcs8(file_store: FileKeyStore) -> None:
    file_store.create_key("ca", KeySpec.ML_DSA_65)
    path = file_store.directory / "ca.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert text.startswith("keyplane-algorithm: ML-DSA-65\n-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert FILE_PASSWORD not in text
    assert (file_store.directory / MARKER).stat().st_mode & 0o777 == 0o600


def test_persists_across_processes(file_store: FileKeyStore, file_store_uri: str) -> None:
    signer = file_store.create_key("persist", KeySpec.P256)
    code = (
        "import signers, sys; s = signers.open(sys.argv[1]); "
        "sig = s.sign(b'hello'); print(s.key_id); print(sig.hex())"
    )
    out = subprocess.run([sys.executable, "-c", code, signer.uri], capture_output=True, text=True, check=True,
                         env=os.environ.copy()).stdout.split()
    assert out[0] == signer.key_id
    signer.public_key.verify(bytes.fromhex(out[1]), b"hello")


def test_open_by_uri_name_and_registry(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("named", KeySpec.ED25519)
    assert file_store.open("named").key_id == signer.key_id
    assert signers.open(signer.uri).key_id == signer.key_id
    assert [k.name for k in file_store.list_keys()] == ["named"]
    rsa = file_store.create_key("rsa", KeySpec.RSA2048, algorithm="RS256")
    assert rsa.algorithm is SignatureAlgorithm.RS256
    assert file_store.open("rsa").algorithm is SignatureAlgorithm.RS256  # remembered from creation
    assert signers.open(signer.uri.replace("/named?", "/rsa?") + "&algorithm=RS384").algorithm is SignatureAlgorithm.RS384


def test_create_never_overwrites(file_store: FileKeyStore) -> None:
    file_store.create_key("dup", KeySpec.P256)
    before = snapshot(file_store.directory)
    with pytest.raises(KeyExists):
        file_store.create_key("dup", KeySpec.ED25519)
    assert snapshot(file_store.directory) == before


def test_wrong_password_is_authentication_failed_and_changes_nothing(
    file_store: FileKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = file_store.create_key("k", KeySpec.P256)
    before = snapshot(file_store.directory)
    monkeypatch.setenv("KEYPLANE_TEST_PASSWORD", "Tr0ub4dor-not-it")
    with pytest.raises(AuthenticationFailed) as info:
        signers.open(signer.uri)
    assert "Tr0ub4dor" not in str(info.value) and "wrong password" in str(info.value)
    store = FileKeyStore.from_uri(signer.uri)
    for action in (lambda: store.create_key("new", KeySpec.P256), lambda: store.delete_key("k")):
        with pytest.raises(AuthenticationFailed):
            action()
    assert snapshot(file_store.directory) == before


def test_corrupt_key_file_is_key_corrupt(file_store: FileKeyStore) -> None:
    file_store.create_key("k", KeySpec.P384)
    path = file_store.directory / "k.pem"
    lines = path.read_text().splitlines()
    lines[4] = lines[4][:10] + ("A" if lines[4][10] != "A" else "B") + lines[4][11:]
    path.write_text("\n".join(lines) + "\n")
    before = snapshot(file_store.directory)
    with pytest.raises(KeyCorrupt):
        file_store.open("k")
    path.write_text("not a key at all")
    with pytest.raises(KeyCorrupt):
        file_store.open("k")
    assert snapshot(file_store.directory)["k.pem"][0] == b"not a key at all"
    assert set(snapshot(file_store.directory)) == set(before)


def test_group_readable_key_file_is_refused(file_store: FileKeyStore) -> None:
    file_store.create_key("k", KeySpec.ED25519)
    (file_store.directory / "k.pem").chmod(0o640)
    with pytest.raises(PermissionDenied, match="chmod 600"):
        file_store.open("k")


def test_unknown_key_and_bad_names(file_store: FileKeyStore) -> None:
    with pytest.raises(KeyNotFound):
        file_store.open("absent")
    with pytest.raises(KeyNotFound):
        file_store.delete_key("absent")
    for bad in ("../etc/passwd", "", ".hidden", "a/b", "x" * 200):
        with pytest.raises(ConfigError):
            file_store.open(bad)


def test_delete_then_open_is_key_not_found(file_store: FileKeyStore) -> None:
    file_store.create_key("gone", KeySpec.SECP256K1)
    file_store.delete_key("gone")
    with pytest.raises(KeyNotFound):
        file_store.open("gone")
    assert list(file_store.list_keys()) == []


def test_missing_password_is_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYPLANE_PASSWORD", raising=False)
    store = FileKeyStore.from_uri(f"file:{tmp_path}")
    with pytest.raises(ConfigError, match="password"):
        store.create_key("k", KeySpec.ED25519)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="NOPE"):
        FileKeyStore.from_uri(f"file:{tmp_path}?password-source=env:NOPE")


def test_password_from_file_source(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    store = FileKeyStore.from_uri(f"file:{tmp_path / 'ks'}?password-source=file:{secret}")
    signer = store.create_key("k", KeySpec.P256)
    assert "s3cret" not in repr(signer) + repr(store) + signer.uri
    secret.write_text("s3cret")  # trailing newline or not: the same password
    assert signers.open(signer.uri).key_id == signer.key_id


def test_unknown_uri_attribute_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        FileKeyStore.from_uri(f"file:{tmp_path}?pasword-source=env:X")


def test_store_path_under_a_regular_file_is_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYPLANE_PASSWORD", FILE_PASSWORD)
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    store = FileKeyStore.from_uri(f"file:{blocker}/store")
    with pytest.raises(ConfigError, match="not a directory"):
        store.open("k")
    with pytest.raises(ConfigError, match="not a directory"):
        store.create_key("k", KeySpec.ED25519)
    assert blocker.read_text() == "x"
