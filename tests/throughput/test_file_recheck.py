"""The file signer's replaced-key check, made cheap (issue 21 item 4) without being weakened.

The ``lstat`` of the key file used to run before every signature (a quarter of an ECDSA
signature's time). Now it runs at once after any change a file store of this process made,
and otherwise at most once per `FileSigner.recheck_seconds`: a key another process deletes
or replaces is refused within that interval, and until then the signer signs with its own
(old) key, never the new one. The signer's clock is its own attribute, so these tests move
time by hand instead of sleeping.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backends.file import FileKeyStore, FileSigner
from signers.algorithms import KeySpec
from signers.errors import KeyNotFound

ROOT = Path(__file__).resolve().parents[2]


def _frozen(signer: FileSigner) -> list[float]:
    """Give `signer` a clock that moves only when the test adds to the returned cell."""
    now = [1000.0]
    signer.clock = lambda: now[0]
    return now


def _in_another_process(store_uri: str, code: str) -> None:
    script = f"import signers\nstore = signers.open_store({store_uri!r})\n{code}\n"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)


def test_a_key_replaced_by_another_process_is_refused_once_the_interval_has_passed(
    file_store: FileKeyStore, file_store_uri: str
) -> None:
    signer = file_store.create_key("k", KeySpec.P256)
    clock = _frozen(signer)
    signer.public_key.verify(signer.sign(b"m"), b"m")  # looked at the file: it is the one opened
    _in_another_process(file_store_uri, "store.delete_key('k'); store.create_key('k', 'P-256')")
    replacement = file_store.open("k")
    # Inside the interval: still its own key, never the new one.
    signature = signer.sign(b"within")
    assert signer.public_key.is_valid(signature, b"within", signer.algorithm)
    assert not replacement.public_key.is_valid(signature, b"within", signer.algorithm)
    clock[0] += signer.recheck_seconds
    with pytest.raises(KeyNotFound, match="replaced"):
        signer.sign(b"m")
    with pytest.raises(KeyNotFound, match="replaced"):  # and it stays refused
        signer.sign(b"m")


def test_a_key_deleted_by_another_process_is_refused_once_the_interval_has_passed(
    file_store: FileKeyStore, file_store_uri: str
) -> None:
    signer = file_store.create_key("gone", KeySpec.ED25519)
    clock = _frozen(signer)
    signer.sign(b"m")
    _in_another_process(file_store_uri, "store.delete_key('gone')")
    clock[0] += signer.recheck_seconds
    with pytest.raises(KeyNotFound, match="deleted"):
        signer.sign(b"m")


def test_a_change_made_in_this_process_is_noticed_at_once_even_with_time_frozen(
    file_store: FileKeyStore, file_store_uri: str
) -> None:
    signer = file_store.create_key("here", KeySpec.P256)
    _frozen(signer)
    signer.sign(b"m")
    other = FileKeyStore.from_uri(file_store_uri)  # another store object on the same directory
    other.delete_key("here")
    with pytest.raises(KeyNotFound, match="deleted"):
        signer.sign(b"m")
    other.create_key("here", KeySpec.P256)
    with pytest.raises(KeyNotFound, match="replaced"):
        signer.sign(b"m")


def test_with_no_interval_every_signature_looks_at_the_file(file_store: FileKeyStore, file_store_uri: str) -> None:
    signer = file_store.create_key("strict", KeySpec.P256)
    _frozen(signer)
    signer.recheck_seconds = 0.0
    signer.sign(b"m")
    _in_another_process(file_store_uri, "store.delete_key('strict')")
    with pytest.raises(KeyNotFound, match="deleted"):
        signer.sign(b"m")
