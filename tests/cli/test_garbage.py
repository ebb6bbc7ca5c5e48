"""Garbage invocations: every one ends with a documented exit code and at most one line, never a traceback.

A table of known-bad inputs runs in real processes (what a user sees, interpreter included);
hypothesis then throws random command lines built from the real vocabulary at `main()`.
Exit codes: 0 ok, 1 refused, 2 usage / input, 3 unavailable, 4 other (crashes included).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import signers
from signers.cli import _run as run_handler
from signers.cli import main

from .conftest import Run, one_line_error

DOCUMENTED = {0, 1, 2, 3, 4}
PIN = "9931-SECRET-PIN"


@pytest.fixture
def garbage_files(tmp_path: Path) -> dict[str, Path]:
    files = {"binary": tmp_path / "binary.bin", "empty": tmp_path / "empty", "dir": tmp_path / "a-dir",
             "text": tmp_path / "text.txt"}
    files["binary"].write_bytes(b"\xff\xfe\x00\x81" * 64 + bytes(range(256)))
    files["empty"].write_bytes(b"")
    files["dir"].mkdir()
    files["text"].write_text("not a key, not a token\n")
    return files


@contextlib.contextmanager
def captured(stdin: bytes) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        sys.stdin = saved


def table(files: dict[str, Path], store: str) -> list[list[str]]:
    binary, empty, directory, text = (str(files[k]) for k in ("binary", "empty", "dir", "text"))
    missing = str(files["dir"] / "no-such-file")
    return [
        [], ["--nope"], ["keys"], ["keys", "frobnicate"], ["keys", "create"], ["keys", "create", "x", "--spec"],
        ["keys", "create", "x", "--spec", "RSA-1024", "--store", store],
        ["keys", "create", "bad\nname", "--store", store], ["keys", "create", "../x", "--store", store],
        ["keys", "list", "--store", "file:" + missing], ["keys", "list", "--store", "nosuch:thing"],
        ["keys", "list", "--store", "no-such-store-name"], ["keys", "list", "--store", "file:" + binary],
        ["keys", "list", "--store", f"pkcs11:token=t?module-path={missing}&pin-value={PIN}"],
        ["keys", "list", "--store", f"pkcs11:token=t;pin-value:{PIN}"],
        ["keys", "list", "--store", f"pkcs11:token=\udcff?pin-value={PIN}"],
        ["keys", "pubkey", "file:" + directory + "/k?password-source=env:UNSET_VAR_FOR_TEST"],
        ["keys", "sign", "file:" + directory + "/k", "--in", binary],
        ["keys", "verify", "--pubkey", binary, "--signature", binary, "--in", binary],
        ["keys", "verify", "--pubkey", empty, "--signature", empty, "--in", empty],
        ["keys", "verify", "--pubkey", directory, "--signature", "AAAA", "--in", text],
        ["keys", "verify", "--pubkey", text, "--signature", missing, "--in", missing],
        ["keys", "verify", "--pubkey", missing, "--signature", "x" * 5000],
        ["keys", "delete", "k", "--store", store], ["keys", "pubkey", "x", "--format", "xml"],
        ["--config", binary, "keys", "pubkey", "ca"], ["--config", directory, "keys", "pubkey", "ca"],
        ["--config", missing, "demo"], ["demo", "--dir", binary],
        ["token", "verify", binary, "--jwks", binary], ["token", "verify", missing, "--jwks", missing],
        ["token", "verify", "a.b.c", "--jwks", text], ["token", "sign", "k", "--claims", "@" + binary],
        ["token", "sign", "k", "--claims", "@" + missing], ["token", "sign", "k", "--claims", "[1]"],
        ["passport", "verify", empty, "--jwks", empty], ["revoke", "--db", binary, "--list"],
        ["jwks", f"pkcs11:object=x?pin-value={PIN}"], ["audit", "verify", binary],
        ["ca", "verify", binary, "--roots", binary], ["ca", "issue", "--dir", binary, "--pubkey", binary],
        ["completion", "fish"], ["completion"], ["x" * 100_000],
    ]


def test_known_garbage(garbage_files: dict[str, Path], file_store_uri: str) -> None:
    signers.open_store(file_store_uri).create_key("k", signers.KeySpec.ED25519)
    for argv in table(garbage_files, file_store_uri):
        shown = [a[:60] for a in argv]
        with captured(b"") as (out, err):
            code = main(argv)
        assert code in DOCUMENTED - {0, 1}, (shown, code, err.getvalue())
        lines = err.getvalue().strip().splitlines() or out.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("keyplane"), (shown, err.getvalue())
        assert "Traceback" not in err.getvalue()
        assert PIN not in err.getvalue() + out.getvalue(), shown


# A sample of the table in real processes: what a user sees, the interpreter's exit included.
IN_PROCESSES = (0, 6, 12, 14, 15, 20, 26, 29, 33, 43)


def test_known_garbage_in_real_processes(keyplane: Run, garbage_files: dict[str, Path], file_store_uri: str) -> None:
    cases = table(garbage_files, file_store_uri)
    for index in IN_PROCESSES:
        argv = cases[index]
        result = keyplane(*argv)
        shown = [a[:60] for a in argv]
        assert result.returncode in DOCUMENTED - {0, 1}, (shown, result.returncode, result.stderr)
        assert one_line_error(result).startswith("keyplane"), shown
        assert PIN not in result.stderr + result.stdout, shown


COMMANDS = ["keys", "create", "list", "delete", "pubkey", "sign", "verify", "demo", "token", "passport", "issue",
            "revoke", "jwks", "audit", "ca", "init", "csr", "sign-csr", "crl", "completion", "bash", "zsh"]
OPTIONS = ["--store", "--spec", "--in", "--out", "--json", "--config", "--pubkey", "--signature", "--algorithm",
           "--format", "--yes", "--ttl", "--leeway", "--hours", "--days", "--jwks", "--key", "--claims", "--dir",
           "--db", "--revocation-list", "--revocations", "--list", "--typ", "--sub", "--iss", "--aud", "--name",
           "--subject", "--san", "--at", "--roots", "--crl", "--help", "--version", "-h", "--"]
VALUES = ["nan", "inf", "-inf", "-1", "0", "1e309", "", "-", "P-256", "ML-DSA-65", "RS256", "jwk", "der", "pem",
          "nosuch:x", "file:", "a.b.c", "@", "\udcff", "\x00", "é", "x" * 3000, f"pkcs11:object=o?pin-value={PIN}",
          f"pkcs11:pin-value:{PIN}"]


@pytest.mark.timeout(900)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_random_command_lines_never_crash(data: st.DataObject, garbage_files: dict[str, Path],
                                          file_store_uri: str, tmp_path: Path) -> None:
    paths = [str(p) for p in garbage_files.values()] + [file_store_uri, str(tmp_path / "new-file"),
                                                       "file:" + str(garbage_files["binary"])]
    word = st.one_of(st.sampled_from(COMMANDS), st.sampled_from(OPTIONS), st.sampled_from(VALUES),
                     st.sampled_from(paths), st.text(max_size=20))
    argv = data.draw(st.lists(word, max_size=8), label="argv")
    if any(a in ("demo", "init", "issue") for a in argv):  # slow, and covered by their own tests
        argv = [a for a in argv if a not in ("demo", "init", "issue")]
    stdin = data.draw(st.binary(max_size=64), label="stdin")
    with captured(stdin) as (out, err):
        code = main(argv)
    assert code in DOCUMENTED, (argv, code, err.getvalue())
    assert "Traceback" not in err.getvalue(), argv
    if code != 0:
        assert len(err.getvalue().strip().splitlines()) <= 1, (argv, err.getvalue())
    assert PIN not in out.getvalue() + err.getvalue(), argv


@pytest.mark.parametrize("error", [ValueError(f"a message with a secret: {PIN}"), TypeError(PIN),
                                   OverflowError(PIN), AssertionError(PIN), LookupError(PIN)])
def test_an_unexpected_exception_is_exit_4_one_line_without_its_message(capsys: pytest.CaptureFixture[str],
                                                                       error: Exception) -> None:
    def explode(args: argparse.Namespace) -> int:
        raise error

    assert run_handler(argparse.Namespace(func=explode, json=False)) == 4
    err = capsys.readouterr().err
    assert err.startswith(f"keyplane: internal error: unexpected {type(error).__name__} at signers/cli.py:")
    assert len(err.strip().splitlines()) == 1 and PIN not in err


def test_a_usage_error_is_one_line_on_stderr(keyplane: Run) -> None:
    result = keyplane("keys", "create", "--spec")
    assert result.returncode == 2
    assert one_line_error(result) == ("keyplane keys create: error: argument --spec: expected one argument "
                                      "(see keyplane keys create --help)")
    assert result.stdout == ""


def test_interpreter_shutdown_adds_nothing(keyplane: Run) -> None:
    # The console script and `python -m` both end through sys.exit(main()): nothing after it may print.
    result = subprocess.run([sys.executable, "-c", "import sys; from signers.cli import main; sys.exit(main(['x']))"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
