"""The embedded back end: a directory of encrypted PKCS#8 PEM files, one per key.

``file:/var/lib/keyplane`` is a store; ``file:/var/lib/keyplane/ca`` is the key ``ca``
in it. The password comes from ``?password-source=env:NAME|file:PATH`` or, when the URI
names none, ``$KEYPLANE_PASSWORD``.

On disk:
  ``keyplane-store.json``  a scrypt verifier of the store password, so a wrong password
                           is told apart from a damaged key file (PKCS#8 PBES2 has no MAC)
  ``<name>.pem``           the key, encrypted PKCS#8 (ML-DSA in its 32-byte seed form), mode 0600,
                           after one plain-text line ``keyplane-algorithm: <alg>`` (PEM readers skip
                           text before ``-----BEGIN``), so a key made for RS256 reopens as RS256

Files are written to a temp file, fsynced and hard-linked into place, so a crash never
leaves half a key and creating never overwrites. A key file readable by group or others
is refused. Every failure leaves the directory as it was.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    ConfigError,
    KeyCorrupt,
    KeyExists,
    KeyNotFound,
    PermissionDenied,
)
from signers.keys import PublicKey
from signers.local_keys import PrivateKey, generate_private_key, sign_with_private_key
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri

__all__ = ["FileKeyStore", "FileSigner"]

MARKER = "keyplane-store.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_ALGORITHM_LINE = "keyplane-algorithm: "


class FileSigner(BaseSigner):
    """Signs with a decrypted in-memory key (decrypted once, at open)."""

    def __init__(self, store: FileKeyStore, uri: str, algorithm: SignatureAlgorithm, key: PrivateKey) -> None:
        super().__init__(uri, algorithm, PublicKey(key.public_key()))
        self._store = store  # keeps the store alive as long as the signer
        self._key = key

    def sign(self, message: bytes) -> bytes:
        return sign_with_private_key(self._key, self.algorithm, bytes(message))

    def sign_mu(self, mu: bytes) -> bytes:
        """ML-DSA over a caller-computed FIPS 204 mu (64 bytes), e.g. for a composite's labelled context.

        ConfigError unless 64 bytes; AlgorithmNotSupported for non-ML-DSA keys.
        """
        if self.public_key.family is not KeyFamily.MLDSA:
            raise AlgorithmNotSupported(f"external mu is ML-DSA only, not {self.public_key.spec.value}")
        if len(mu) != 64:
            raise ConfigError(f"an ML-DSA mu is 64 bytes, not {len(mu)}")
        return self._key.sign_mu(bytes(mu))  # type: ignore[union-attr]


class FileKeyStore(BaseKeyStore):
    capabilities = Capabilities(
        key_specs=frozenset(KeySpec),
        deterministic=frozenset({KeySpec.ED25519}),
    )

    def __init__(self, directory: str | os.PathLike[str], password: Secret | None, password_source: str | None = None):
        self.directory = Path(directory)
        self._password = password
        query = {"password-source": password_source} if password_source else {}
        self.uri = KeyURI("file", str(self.directory.absolute()), None, {}, query).format()
        self._verified = False

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str) -> FileKeyStore:
        """A store from a store URI (the directory) or a key URI (directory + key name)."""
        parsed = parse_uri(uri)
        if parsed.scheme != "file":
            raise ConfigError(f"not a file: URI (scheme {parsed.scheme!r})")
        if not parsed.path:
            raise ConfigError("file: URI needs a directory, e.g. file:/var/lib/keyplane")
        unknown = set(parsed.query) - {"password-source", "algorithm"}
        if unknown:
            raise ConfigError(f"file: URI has unknown attribute(s) {sorted(unknown)}")
        directory, _ = _split(Path(parsed.path))
        source = parsed.query.get("password-source")
        if source is not None:
            password: Secret | None = resolve_secret(source, "password-source")
        elif "KEYPLANE_PASSWORD" in os.environ:
            password, source = Secret(os.environ["KEYPLANE_PASSWORD"]), "env:KEYPLANE_PASSWORD"
        else:
            password = None
        return cls(directory, password, source)

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> FileSigner:
        spec = KeySpec.parse(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        if opts:
            raise ConfigError(f"file back end: unknown create option(s) {sorted(opts)}")
        path = self._key_path(name)
        password = self._check_password(creating=True)
        if path.exists():
            raise KeyExists(f"key {name!r} already exists in {self.directory}")
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"file store {self.directory} is not a directory")
        key = generate_private_key(spec)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
        _write_new(path, f"{_ALGORITHM_LINE}{algorithm.value}\n".encode() + pem)
        return FileSigner(self, self._key_uri(name), algorithm, key)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> FileSigner:
        name = self._name_from(uri_or_name)
        if algorithm is None and ":" in uri_or_name:
            algorithm = parse_uri(uri_or_name).query.get("algorithm")
        path = self._key_path(name)
        key = self._load(path, name)
        spec = PublicKey(key.public_key()).spec
        return FileSigner(self, self._key_uri(name), choose_algorithm(spec, algorithm or _stored_algorithm(path)), key)

    def list_keys(self) -> Iterator[KeyInfo]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.pem")):
            name = path.name[: -len(".pem")]
            if _NAME.match(name):
                yield KeyInfo(name=name, uri=self._key_uri(name))

    def delete_key(self, name: str) -> None:
        path = self._key_path(name)
        self._load(path, name)  # proves the key exists and the caller knows the password
        path.unlink()
        _fsync_dir(self.directory)

    # -- internals ---------------------------------------------------------------------

    def _key_uri(self, name: str) -> str:
        parsed = parse_uri(self.uri)
        return KeyURI("file", str(Path(parsed.path) / name), None, {}, dict(parsed.query)).format()

    def _name_from(self, uri_or_name: str) -> str:
        if ":" not in uri_or_name:
            return uri_or_name
        parsed = parse_uri(uri_or_name)
        directory, name = _split(Path(parsed.path))
        if name is None or directory.absolute() != self.directory.absolute():
            raise ConfigError(f"{parsed.public().format()} does not name a key in {self.directory}")
        return name

    def _key_path(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError("key name must be 1-128 of letters, digits, '.', '_' or '-', starting alphanumeric")
        return self.directory / f"{name}.pem"

    def _need_password(self) -> bytes:
        if self._password is None:
            raise ConfigError(
                f"file store {self.directory} needs a password: add ?password-source=env:NAME "
                "(or file:PATH) to the URI, or set KEYPLANE_PASSWORD"
            )
        value = self._password.reveal().encode("utf-8")
        if not value:
            raise ConfigError("the file store password is empty")
        return value

    def _check_password(self, *, creating: bool = False) -> bytes:
        """The password, checked against the store's verifier (written on first create)."""
        password = self._need_password()
        if self._verified:
            return password
        marker = self.directory / MARKER
        if marker.exists():
            try:
                record = json.loads(marker.read_text(encoding="utf-8"))
                salt = base64.b64decode(record["salt"])
                expected = base64.b64decode(record["check"])
                params = {k: int(record[k]) for k in ("n", "r", "p")}
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise KeyCorrupt(f"store verifier {marker} is damaged") from e
            actual = Scrypt(salt=salt, length=32, **params).derive(password)
            if not hmac.compare_digest(actual, expected):
                raise AuthenticationFailed(f"wrong password for file store {self.directory}")
        elif creating:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise ConfigError(f"file store {self.directory} is not a directory") from None
            except PermissionError as e:
                raise PermissionDenied(f"cannot create file store {self.directory}: {e.strerror}") from e
            salt = os.urandom(16)
            check = Scrypt(salt=salt, length=32, **_SCRYPT).derive(password)
            record = {"version": 1, "kdf": "scrypt", **_SCRYPT, "salt": base64.b64encode(salt).decode(),
                      "check": base64.b64encode(check).decode()}
            try:
                _write_new(marker, json.dumps(record, indent=2).encode())
            except KeyExists:
                self._verified = False
                return self._check_password()  # another process made it first: check against theirs
        self._verified = True
        return password

    def _load(self, path: Path, name: str) -> PrivateKey:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyNotFound(f"no key {name!r} in file store {self.directory}") from None
        except NotADirectoryError:
            raise ConfigError(f"file store {self.directory} is not a directory") from None
        if st.st_mode & 0o077:
            raise PermissionDenied(
                f"key file {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run: chmod 600 {path}"
            )
        password = self._check_password()
        try:
            data = path.read_bytes()
        except OSError as e:
            raise PermissionDenied(f"cannot read key file {path}: {e.strerror}") from e
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            # The password matched the store verifier, so the file itself is bad.
            raise KeyCorrupt(f"key file {path} is damaged or not an encrypted PKCS#8 key") from e
        try:
            PublicKey(key.public_key())  # type: ignore[arg-type]
        except AlgorithmNotSupported as e:
            raise KeyCorrupt(f"key file {path} holds an unsupported key type") from e
        return key  # type: ignore[return-value]


def _stored_algorithm(path: Path) -> str | None:
    """The algorithm recorded when the key was created (None for files without the line)."""
    with path.open("rb") as f:
        first = f.readline(64).decode("ascii", "replace").strip()
    return first[len(_ALGORITHM_LINE):] if first.startswith(_ALGORITHM_LINE) else None


def _split(path: Path) -> tuple[Path, str | None]:
    """(store directory, key name or None): a path is a key when its parent is a store and it is not one."""
    if (path / MARKER).exists() or path.is_dir():
        return path, None
    if (path.parent / MARKER).exists() or (path.parent / f"{path.name}.pem").exists():
        return path.parent, path.name
    return path, None


def _write_new(path: Path, data: bytes) -> None:
    """Write `data` to a new file at `path` (mode 0600) atomically; KeyExists if it is there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and never replaces an existing file
        except FileExistsError:
            raise KeyExists(f"{path} already exists") from None
    finally:
        os.unlink(tmp)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
