"""The file back end: round trips for every spec, persistence, and bad input that changes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

import signers
from backends.file import MARKER, FileKeyStore
from signers import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
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
    assert re.match(r"keyplane-algorithm: ML-DSA-65\nkeyplane-binding: [A-Za-z0-9_-]{43}\n"
                    r"-----BEGIN ENCRYPTED PRIVATE KEY-----", text)
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


# -- attacks from the hardening run (issue 14 items 1, 4, 10, 13) --------------------------


def _store(directory: Path, password: str, monkeypatch: pytest.MonkeyPatch) -> FileKeyStore:
    monkeypatch.setenv("KEYPLANE_TEST_PW2", password)
    return FileKeyStore.from_uri(f"file:{directory}?password-source=env:KEYPLANE_TEST_PW2")


def test_missing_check_file_and_wrong_password_never_locks_the_store(
    file_store: FileKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = file_store.create_key("k", KeySpec.P256)
    (file_store.directory / MARKER).unlink()
    before = snapshot(file_store.directory)
    wrong = _store(file_store.directory, "not the password", monkeypatch)
    with pytest.raises(AuthenticationFailed, match="refusing to write a new check"):
        wrong.create_key("new", KeySpec.P256)
    with pytest.raises(AuthenticationFailed, match="wrong password"):  # not KeyCorrupt
        _store(file_store.directory, "not the password", monkeypatch).open("k")
    assert snapshot(file_store.directory) == before  # no check written for the wrong password
    right = _store(file_store.directory, FILE_PASSWORD, monkeypatch)
    assert right.open("k").key_id == signer.key_id
    right.create_key("new", KeySpec.ED25519)  # the right password re-creates the check
    assert (file_store.directory / MARKER).exists()
    with pytest.raises(AuthenticationFailed, match="wrong password"):
        _store(file_store.directory, "not the password", monkeypatch).open("k")


@pytest.mark.parametrize("params", [
    {"n": 2**24, "r": 8, "p": 1},  # 16 GiB: MemoryError before the bound
    {"n": 2**16, "r": 8, "p": 16},  # ~40 s of CPU
    {"n": 3000, "r": 8, "p": 1},  # not a power of two
    {"n": "16384", "r": 8, "p": 1},
    {"n": 16384.0, "r": 8, "p": 1},
    {"n": True, "r": 8, "p": 1},
], ids=str)
def test_hostile_scrypt_parameters_are_refused_before_use(file_store: FileKeyStore, params: dict[str, object]) -> None:
    file_store.create_key("k", KeySpec.ED25519)
    marker = file_store.directory / MARKER
    record = json.loads(marker.read_text())
    record.update(params)
    marker.write_text(json.dumps(record))
    store = FileKeyStore.from_uri(file_store.uri)
    with pytest.raises(KeyCorrupt, match=r"scrypt|non-integer"):
        store.open("k")


def test_symlinked_key_file_and_check_file_are_refused(file_store: FileKeyStore, tmp_path: Path) -> None:
    file_store.create_key("real", KeySpec.ED25519)
    (file_store.directory / "link.pem").symlink_to(file_store.directory / "real.pem")
    with pytest.raises(PermissionDenied, match="symbolic link"):
        file_store.open("link")
    marker = file_store.directory / MARKER
    moved = tmp_path / "elsewhere.json"
    marker.rename(moved)
    marker.symlink_to(moved)
    with pytest.raises(PermissionDenied, match="symbolic link"):
        FileKeyStore.from_uri(file_store.uri).open("real")


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_group_or_world_writable_store_directory_is_refused(file_store: FileKeyStore, mode: int) -> None:
    file_store.create_key("k", KeySpec.ED25519)
    file_store.directory.chmod(mode)
    try:
        for action in (lambda: FileKeyStore.from_uri(file_store.uri).open("k"),
                       lambda: FileKeyStore.from_uri(file_store.uri).create_key("k2", KeySpec.ED25519),
                       lambda: list(FileKeyStore.from_uri(file_store.uri).list_keys())):
            with pytest.raises(PermissionDenied, match=f"chmod go-w {file_store.directory}"):
                action()
    finally:
        file_store.directory.chmod(0o700)


def test_swapped_key_files_are_detected(file_store: FileKeyStore) -> None:
    a = file_store.create_key("a", KeySpec.P256)
    file_store.create_key("b", KeySpec.P256)
    pa, pb, tmp = (file_store.directory / n for n in ("a.pem", "b.pem", "swap.tmp"))
    pa.rename(tmp)
    pb.rename(pa)
    tmp.rename(pb)
    store = FileKeyStore.from_uri(file_store.uri)
    for name in ("a", "b"):
        with pytest.raises(KeyCorrupt, match="swapped"):
            store.open(name)
    # A copy of a key under a new name is refused too (same attack, one file).
    pb.rename(file_store.directory / "c.pem")
    with pytest.raises(KeyCorrupt, match="swapped"):
        store.open("c")
    assert a.key_id  # the signer made before the swap is not what is under test here


def test_edited_algorithm_line_is_detected(file_store: FileKeyStore) -> None:
    file_store.create_key("r", KeySpec.RSA2048, algorithm="RS256")
    path = file_store.directory / "r.pem"
    path.write_bytes(path.read_bytes().replace(b"keyplane-algorithm: RS256", b"keyplane-algorithm: PS256", 1))
    with pytest.raises(KeyCorrupt, match="algorithm line was edited"):
        FileKeyStore.from_uri(file_store.uri).open("r")


def test_unbound_legacy_file_is_refused_with_a_migration_path(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("old", KeySpec.ED25519)
    path = file_store.directory / "old.pem"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(line for line in lines if not line.startswith(b"keyplane-binding:")))
    with pytest.raises(KeyCorrupt, match=r"bind_legacy_key\('old'\)"):
        FileKeyStore.from_uri(file_store.uri).open("old")
    migrated = FileKeyStore.from_uri(file_store.uri).bind_legacy_key("old")
    assert migrated.key_id == signer.key_id
    assert FileKeyStore.from_uri(file_store.uri).open("old").key_id == signer.key_id


@pytest.mark.parametrize("name", ["k\n", "k\r", "\nk", "k\x00", "k "])
def test_key_names_with_trailing_newline_or_controls_are_refused(file_store: FileKeyStore, name: str) -> None:
    with pytest.raises(ConfigError, match="key name"):
        file_store.create_key(name, KeySpec.ED25519)
    with pytest.raises(ConfigError, match="key name"):
        file_store.open(name)
    assert not any(p.name.endswith(".pem") for p in file_store.directory.iterdir()) if file_store.directory.exists() \
        else True


def test_temp_file_of_a_killed_create_key_is_cleaned(file_store: FileKeyStore, file_store_uri: str) -> None:
    file_store.create_key("first", KeySpec.ED25519)
    code = (
        "import os, signal, sys\n"
        "from backends.file import FileKeyStore\n"
        "store = FileKeyStore.from_uri(sys.argv[1])\n"
        "store.open('first')\n"  # verifies the password before the fault is armed
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"  # killed mid-write
        "store.create_key('victim', 'Ed25519')\n"
    )
    result = subprocess.run([sys.executable, "-c", code, file_store_uri], env=os.environ.copy(), check=False)
    assert result.returncode == -9
    leftovers = [p.name for p in file_store.directory.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the killed writer should have left its temp file"
    assert not (file_store.directory / "victim.pem").exists()
    file_store.create_key("second", KeySpec.ED25519)
    assert not [p.name for p in file_store.directory.iterdir() if p.name.startswith(".tmp-")]


def test_signer_notices_its_key_file_deleted_or_replaced(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("k", KeySpec.P256)
    signer.public_key.verify(signer.sign(b"m"), b"m")
    file_store.delete_key("k")
    with pytest.raises(KeyNotFound, match="deleted"):
        signer.sign(b"m")
    replacement = file_store.create_key("k", KeySpec.P256)  # same name, new key material
    with pytest.raises(KeyNotFound, match="replaced"):
        signer.sign(b"m")
    opened = file_store.open("k")
    assert opened.key_id == replacement.key_id != signer.key_id
    opened.public_key.verify(opened.sign(b"m"), b"m")


def test_over_long_paths_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for directory in (tmp_path / ("d" * 300), Path(str(tmp_path) + "/dir" * 1100)):
        for action in ("create", "open", "list"):
            with pytest.raises(ConfigError, match=r"(?i)name too long|bad path"):
                store = _store(directory, FILE_PASSWORD, monkeypatch)
                if action == "create":
                    store.create_key("k", KeySpec.ED25519)
                elif action == "open":
                    store.open("k")
                else:
                    list(store.list_keys())


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and mount(2); skipped with that reason otherwise)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir(mode=0o700)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"ENOSPC / EROFS tests need to mount a small tmpfs (root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_disk_full_and_read_only_file_systems_are_typed_errors(small_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(small_fs / "store", FILE_PASSWORD, monkeypatch)
    signer = store.create_key("k", KeySpec.P256)
    fd = os.open(small_fs / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # fill the file system to the last byte
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    before = snapshot(store.directory)
    with pytest.raises(BackendUnavailable, match="No space left"):
        store.create_key("full", KeySpec.RSA2048)
    assert snapshot(store.directory) == before  # no half key, no temp file
    (small_fs / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pytest.raises(PermissionDenied, match="Read-only"):
        store.create_key("ro", KeySpec.ED25519)
    with pytest.raises(PermissionDenied, match="Read-only"):
        store.delete_key("k")
    assert store.open("k").key_id == signer.key_id  # reading still works


def test_sign_digest_signs_the_digest_without_hashing_again(file_store: FileKeyStore) -> None:
    for spec, algorithm in ((KeySpec.P256, "ES256"), (KeySpec.P384, "ES384"), (KeySpec.RSA2048, "PS256"),
                            (KeySpec.RSA2048, "RS512")):
        signer = file_store.create_key(f"d-{algorithm.lower()}-{spec.value.lower()}", spec, algorithm=algorithm)
        h = hashes.Hash(signer.algorithm.hash_algorithm())
        h.update(b"message")
        signer.public_key.verify(signer.sign_digest(h.finalize()), b"message", signer.algorithm)
        with pytest.raises(ConfigError, match="digest"):
            signer.sign_digest(b"short")
    assert isinstance(signer, signers.DigestSigner)  # capabilities_of misses it on 3.11: reported to the lead
    for spec in (KeySpec.ED25519, KeySpec.ML_DSA_44):
        with pytest.raises(AlgorithmNotSupported):
            file_store.create_key(f"d-{spec.value.lower()}", spec).sign_digest(b"\0" * 32)
