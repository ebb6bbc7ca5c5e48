"""The file store's on-disk format and the file-system rules it keeps (used by `backends.file`).

A key file is the encrypted PKCS#8 PEM after two plain-text lines::

    keyplane-algorithm: ES256
    keyplane-binding: <base64url HMAC-SHA256>
    -----BEGIN ENCRYPTED PRIVATE KEY-----

The binding is HMAC-SHA256 keyed with the key's own (decrypted) PKCS#8 DER over the file's
name and algorithm, so only someone who can decrypt the key could have written it: renaming
``a.pem`` to ``b.pem`` or editing the algorithm line is detected at open (PKCS#8 PBES2 has
no authenticated data, and its attribute set cannot be written with `cryptography`). Files
written before the binding existed are refused with a migration message rather than read
unbound: reading them would let anyone who can strip the binding line swap keys again.

What this module enforces on the file system: key and check files are opened with
``O_NOFOLLOW`` (a symlink is refused), must be regular files of bounded size, not readable
by group or others; the store directory must not be writable by group or others; the
scrypt parameters of the password check are bounded before use (a hostile check file
cannot burn minutes of CPU or exhaust memory); OS errors become typed errors.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from backends.translation import CodeTable, translated
from signers.errors import (
    BackendUnavailable,
    ConfigError,
    KeyCorrupt,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.local_keys import PrivateKey

__all__ = [
    "ALGORITHM_LINE",
    "BINDING_LINE",
    "MARKER",
    "SCRYPT_DEFAULTS",
    "check_directory",
    "clean_stale_temp_files",
    "file_identity",
    "key_binding",
    "os_errors",
    "parse_key_file",
    "read_private_file",
    "scrypt_parameters",
    "write_new",
]

MARKER = "keyplane-store.json"
ALGORITHM_LINE = "keyplane-algorithm: "
BINDING_LINE = "keyplane-binding: "
SCRYPT_DEFAULTS = {"n": 2**14, "r": 8, "p": 1}
MAX_KEY_FILE = 64 * 1024  # an encrypted RSA-4096 PEM is under 4 KiB
MAX_MARKER_FILE = 4096
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
STALE_TEMP_SECONDS = 3600.0
_BINDING_CONTEXT = b"keyplane file key binding v1\x00"

# scrypt cost bounds: memory is 128 * n * r bytes, work about n * r * p. The defaults use
# 16 MiB and 2**17; the bounds allow 4x that work and 64 MiB, never the 40 s / MemoryError
# a hostile check file asked for.
_SCRYPT_MAX_MEMORY = 64 * 1024 * 1024
_SCRYPT_MAX_WORK = 2**19

_OS_ERRORS = CodeTable(
    codes={
        errno.ENOSPC: BackendUnavailable,
        errno.EDQUOT: BackendUnavailable,
        errno.EROFS: PermissionDenied,
        errno.EACCES: PermissionDenied,
        errno.EPERM: PermissionDenied,
        errno.ENAMETOOLONG: ConfigError,
        errno.ENOTDIR: ConfigError,
        errno.ELOOP: PermissionDenied,
    },
    messages={
        BackendUnavailable: "the file system failed",
        PermissionDenied: "not allowed by the file system",
        ConfigError: "bad path",
    },
)


def _translate_os_error(error: BaseException, what: str) -> KeyplaneError | None:
    if not isinstance(error, OSError) or error.errno is None:
        return None
    return _OS_ERRORS.error(error.errno, what, error.strerror or "", error)


def os_errors(what: str) -> Any:
    """``with os_errors("writing key 'ca'"):`` OSError -> typed error (ENOSPC, EROFS, ENAMETOOLONG, ...)."""
    return translated(_translate_os_error, what)


# -- the store directory ------------------------------------------------------------------


def check_directory(directory: Path) -> bool:
    """True when the store directory exists; PermissionDenied when group or others may write to it.

    A writable directory lets another user swap, delete or plant key files and the check
    file, so it is refused before anything in it is trusted.
    """
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise ConfigError(f"file store {directory} is not a directory (a part of its path is a file)") from None
    except OSError as e:
        with os_errors(f"file store {directory}"):
            raise e
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"file store {directory} is not a directory")
    if st.st_mode & 0o022:
        raise PermissionDenied(
            f"file store {directory} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod go-w {directory}"
        )
    return True


# -- reading -----------------------------------------------------------------------------


def read_private_file(path: Path, limit: int, missing: str) -> tuple[bytes, os.stat_result]:
    """(bytes, stat) of a regular file that is not a symlink, readable only by its owner, at most `limit` bytes.

    Raises KeyNotFound(`missing`) if absent, PermissionDenied for a symlink or loose mode,
    KeyCorrupt for something that is not a regular file or is too large.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyNotFound(missing) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PermissionDenied(f"{path} is a symbolic link; keyplane opens only the file itself "
                                   f"(replace the link with the file it points to)") from None
        with os_errors(f"opening {path}"):
            raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyCorrupt(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            raise PermissionDenied(
                f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
            )
        if st.st_size > limit:
            raise KeyCorrupt(f"{path} is {st.st_size} bytes, more than any keyplane file ({limit})")
        with os_errors(f"reading {path}"):
            data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise KeyCorrupt(f"{path} is larger than any keyplane file ({limit} bytes)")
        return data, st
    finally:
        os.close(fd)


def file_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a key file is replaced (device, inode, size, mtime)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def parse_key_file(data: bytes, path: Path) -> tuple[str | None, bytes | None, bytes]:
    """(algorithm, binding, PEM) from a key file's bytes; KeyCorrupt for a malformed header."""
    algorithm: str | None = None
    binding: bytes | None = None
    rest = data
    for _ in range(2):
        line, sep, tail = rest.partition(b"\n")
        if not sep:
            break
        text = line.decode("ascii", "replace")
        if text.startswith(ALGORITHM_LINE) and algorithm is None:
            algorithm = text[len(ALGORITHM_LINE):].strip()
        elif text.startswith(BINDING_LINE) and binding is None:
            try:
                binding = base64.urlsafe_b64decode(text[len(BINDING_LINE):].strip() + "==")
            except ValueError:
                raise KeyCorrupt(f"key file {path} has a malformed binding line") from None
        else:
            break
        rest = tail
    return algorithm, binding, rest


def key_binding(key: PrivateKey, name: str, algorithm: str) -> bytes:
    """HMAC-SHA256 over (name, algorithm), keyed with the key's own unencrypted PKCS#8 DER."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    message = _BINDING_CONTEXT + name.encode("utf-8") + b"\x00" + algorithm.encode("ascii")
    return hmac.new(hashlib.sha256(der).digest(), message, hashlib.sha256).digest()


def key_file_bytes(key: PrivateKey, name: str, algorithm: str, password: bytes) -> bytes:
    """The complete bytes of a key file for `key` stored under `name` with `algorithm`."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(password))
    binding = base64.urlsafe_b64encode(key_binding(key, name, algorithm)).rstrip(b"=").decode("ascii")
    return f"{ALGORITHM_LINE}{algorithm}\n{BINDING_LINE}{binding}\n".encode() + pem


def scrypt_parameters(record: Mapping[str, Any], marker: Path) -> tuple[bytes, bytes, dict[str, int]]:
    """(salt, check, {n, r, p}) from a password-check record, bounded; KeyCorrupt when out of bounds."""
    try:
        salt = base64.b64decode(record["salt"], validate=True)
        check = base64.b64decode(record["check"], validate=True)
        params = {k: record[k] for k in ("n", "r", "p")}
    except (ValueError, KeyError, TypeError) as e:
        raise KeyCorrupt(f"store password check {marker} is damaged") from e
    if not all(type(v) is int for v in params.values()):
        raise KeyCorrupt(f"store password check {marker} has non-integer scrypt parameters")
    n, r, p = params["n"], params["r"], params["p"]
    if not (n >= 2**10 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
            and 128 * n * r <= _SCRYPT_MAX_MEMORY and n * r * p <= _SCRYPT_MAX_WORK):
        raise KeyCorrupt(f"store password check {marker} asks for scrypt n={n} r={r} p={p}, outside the "
                         f"bounds keyplane accepts (at most {_SCRYPT_MAX_MEMORY >> 20} MiB and n*r*p <= 2**19)")
    if not 16 <= len(salt) <= 64 or len(check) != 32:
        raise KeyCorrupt(f"store password check {marker} has a salt or check of the wrong size")
    return salt, check, params


def load_marker(marker: Path) -> dict[str, Any] | None:
    """The password-check record, or None if the file is absent; KeyCorrupt if it is not a JSON object."""
    try:
        data, _ = read_private_file(marker, MAX_MARKER_FILE, "absent")
    except KeyNotFound:
        return None
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise KeyCorrupt(f"store password check {marker} is damaged") from e
    if not isinstance(record, dict):
        raise KeyCorrupt(f"store password check {marker} is damaged")
    return record


# -- writing -----------------------------------------------------------------------------


def write_new(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write `data` to `path` (mode 0600) atomically: KeyExists if it is there (unless `replace`).

    The temp file's name carries this process's id, so `clean_stale_temp_files` can tell a
    write in progress from one a killed process left behind.
    """
    tmp = path.parent / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}{TEMP_SUFFIX}"
    with os_errors(f"writing {path}"):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os_errors(f"writing {path}"):
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # atomic, and never replaces an existing file
                except FileExistsError:
                    raise KeyExists(f"{path} already exists") from None
    finally:
        with os_errors(f"removing {tmp}"), contextlib.suppress(FileNotFoundError):  # gone when replaced
            os.unlink(tmp)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    with os_errors(f"syncing {directory}"):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def clean_stale_temp_files(directory: Path) -> list[str]:
    """Remove temp files a killed writer left (its process is gone, or the file is an hour old); their names."""
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        pid_text = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if age < STALE_TEMP_SECONDS and pid_text.isdigit() and _alive(int(pid_text)):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True
