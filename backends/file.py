"""The embedded back end: a directory of encrypted PKCS#8 PEM files, one per key.

``file:/var/lib/keyplane`` is a store; ``file:/var/lib/keyplane/ca`` is the key ``ca``
in it. The password comes from ``?password-source=env:NAME|file:PATH`` or, when the URI
names none, ``$KEYPLANE_PASSWORD``.

On disk (the format and its file-system rules are in `backends.file_format`):
  ``keyplane-store.json``  a scrypt verifier of the store password, so a wrong password
                           is told apart from a damaged key file (PKCS#8 PBES2 has no MAC)
  ``<name>.pem``           the key, encrypted PKCS#8 (ML-DSA in its 32-byte seed form), mode 0600,
                           after two plain-text lines: ``keyplane-algorithm: <alg>`` (so a key made
                           for RS256 reopens as RS256) and ``keyplane-binding: <mac>`` binding the
                           name and algorithm to the key (a swapped or edited file is refused)

Files are written to a temp file, fsynced and hard-linked into place, so a crash never
leaves half a key and creating never overwrites; temp files a killed writer left are
removed by the next create. Symlinked key files, key files readable by group or others
and a store directory writable by group or others are refused. When the password check
file is missing, a password that does not open the existing keys is refused
(AuthenticationFailed) and no new check is written for it. A Signer notices when its key
file is deleted or replaced under it (KeyNotFound): at once when this process's keyplane did
it, within `FileSigner.recheck_seconds` (50 ms) when another process or a person did.
Every failure leaves the directory as it was.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    ConfigError,
    KeyCorrupt,
    KeyExists,
    KeyNotFound,
)
from signers.keys import PublicKey
from signers.local_keys import PrivateKey, generate_private_key, sign_with_private_key
from signers.secrets import Secret, resolve_secret
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import check_create_options, checked_uri

from .file_format import (
    MARKER,
    MAX_KEY_FILE,
    SCRYPT_DEFAULTS,
    check_directory,
    clean_stale_temp_files,
    file_identity,
    fsync_dir,
    key_binding,
    key_file_bytes,
    load_marker,
    os_errors,
    parse_key_file,
    read_private_file,
    scrypt_parameters,
    write_new,
)

__all__ = ["MARKER", "FileKeyStore", "FileSigner"]

_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}"


class _StoreChanges:
    """A process-wide count of key files this process's file stores created, replaced or deleted.

    A signer compares it before each signature (one attribute read): a change made through
    keyplane in this process makes every file signer look at its key file again at once.
    """

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1


_CHANGES = _StoreChanges()


class FileSigner(BaseSigner):
    """Signs with a decrypted in-memory key (decrypted once, at open).

    It checks (one ``lstat``) that its key file is still the file it was opened from: a key
    deleted or replaced under the same name raises KeyNotFound, so a long-lived signer never
    keeps signing for a key the store no longer holds. The check runs before a signature
    whenever a file store of this process has changed a key file since the last check, and
    otherwise at most once per `recheck_seconds` (the ``lstat`` was a quarter of an ECDSA
    signature's time): a replacement by another process is noticed within that interval.
    Its private key is its own, so in that interval it signs with the old key, never the new.
    """

    recheck_seconds: float = 0.05
    key_in_memory = True  # `signers.signer.key_in_memory`: `sign` is CPU work only (and one lstat at most)
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, store: FileKeyStore, uri: str, algorithm: SignatureAlgorithm, key: PrivateKey,
                 path: Path, identity: tuple[int, int, int, int]) -> None:
        super().__init__(uri, algorithm, PublicKey(key.public_key()))
        self._store = store  # keeps the store alive as long as the signer
        self._key = key
        self._path = path
        self._identity = identity
        self._next_check = -1.0  # clock time after which the file is looked at again
        self._changes_seen = -1  # _CHANGES.value at the last look
        # ECDSA's signature-algorithm object is built once, not per signature (+5 us otherwise)
        self._ec: tuple[ec.EllipticCurvePrivateKey, ec.ECDSA] | None = (
            (key, ec.ECDSA(algorithm.hash_algorithm())) if isinstance(key, ec.EllipticCurvePrivateKey) else None)

    def sign(self, message: bytes) -> bytes:
        if self._changes_seen != _CHANGES.value or self.clock() >= self._next_check:
            self._check_file()
        if type(message) is not bytes:  # a bytearray or memoryview: signed as the bytes it holds now
            message = bytes(message)
        ecdsa = self._ec
        if ecdsa is not None:  # positional, no partial: the call is most of what is left above OpenSSL
            return ecdsa[0].sign(message, ecdsa[1])
        return sign_with_private_key(self._key, self.algorithm, message)

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed digest of the algorithm's hash (ECDSA, RSA); never hashed again.

        Raises ConfigError for a digest of the wrong length, AlgorithmNotSupported for
        Ed25519 and ML-DSA (they sign messages, not digests).
        """
        family = self.algorithm.family
        if family not in (KeyFamily.EC, KeyFamily.RSA):
            raise AlgorithmNotSupported(f"{self.algorithm.value} signs whole messages; it has no digest form")
        h = self.algorithm.hash_algorithm()
        digest = bytes(digest)
        if len(digest) != h.digest_size:
            raise ConfigError(f"{self.algorithm.value} signs a {h.digest_size}-byte digest, not {len(digest)} bytes")
        self._check_file()
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(digest, ec.ECDSA(Prehashed(h)))
        assert isinstance(key, rsa.RSAPrivateKey)
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if self.algorithm.is_pss
            else padding.PKCS1v15()
        )
        return key.sign(digest, pad, Prehashed(h))

    def _check_file(self) -> None:
        seen = _CHANGES.value  # read before looking: a change made while we look is looked at next time
        try:
            st = os.lstat(self._path)
        except FileNotFoundError:
            raise KeyNotFound(f"key file {self._path} was deleted after this signer opened it") from None
        except OSError as e:
            with os_errors(f"checking key file {self._path}"):
                raise e
        if file_identity(st) != self._identity:
            raise KeyNotFound(f"key file {self._path} was replaced after this signer opened it; open the key again")
        self._changes_seen = seen
        self._next_check = self.clock() + self.recheck_seconds

    def sign_mu(self, mu: bytes) -> bytes:
        """ML-DSA over a caller-computed FIPS 204 mu (64 bytes), e.g. for a composite's labelled context.

        ConfigError unless 64 bytes; AlgorithmNotSupported for non-ML-DSA keys.
        """
        if self.public_key.family is not KeyFamily.MLDSA:
            raise AlgorithmNotSupported(f"external mu is ML-DSA only, not {self.public_key.spec.value}")
        if len(mu) != 64:
            raise ConfigError(f"an ML-DSA mu is 64 bytes, not {len(mu)}")
        self._check_file()
        return self._key.sign_mu(bytes(mu))  # type: ignore[union-attr]


class FileKeyStore(BaseKeyStore):
    capabilities = Capabilities(
        key_specs=frozenset(KeySpec),
        deterministic=frozenset({KeySpec.ED25519}),
    )
    signer_class = FileSigner

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
        parsed, options = checked_uri(uri, schemes={"file"}, query={"password-source", "algorithm"})
        if not parsed.path:
            raise ConfigError("file: URI needs a directory, e.g. file:/var/lib/keyplane")
        directory, _ = _split(Path(parsed.path))
        source = options.text("password-source")
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
        check_create_options(opts, (), "file")
        path = self._key_path(name)
        password = self._check_password(creating=True)
        if _exists(path):
            raise KeyExists(f"key {name!r} already exists in {self.directory}")
        return self._store_new(name, path, generate_private_key(spec), algorithm, password)

    def import_key(self, name: str, private_key: Any, algorithm: SignatureAlgorithm | str | None = None) -> FileSigner:
        """Store an existing `cryptography` private key under `name` (BYOK); see `signers.key_import`.

        Raises KeyExists, AlgorithmNotSupported for a key type keyplane does not sign with,
        ConfigError for an object that is not a private key.
        """
        if not hasattr(private_key, "public_key") or not hasattr(private_key, "private_bytes"):
            raise ConfigError("import_key needs a cryptography private key object (see signers.key_import)")
        spec = PublicKey(private_key.public_key()).spec  # AlgorithmNotSupported for other key types
        chosen = choose_algorithm(spec, algorithm)
        path = self._key_path(name)
        password = self._check_password(creating=True)
        if _exists(path):
            raise KeyExists(f"key {name!r} already exists in {self.directory}")
        return self._store_new(name, path, private_key, chosen, password)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> FileSigner:
        name = self._name_from(uri_or_name)
        if algorithm is None and ":" in uri_or_name:
            algorithm = parse_uri(uri_or_name).query.get("algorithm")
        path = self._key_path(name)
        key, stored, identity = self._load(path, name)
        spec = PublicKey(key.public_key()).spec
        return FileSigner(self, self._key_uri(name), choose_algorithm(spec, algorithm or stored), key, path, identity)

    def list_keys(self) -> Iterator[KeyInfo]:
        if not check_directory(self.directory):
            return
        for path in sorted(self.directory.glob("*.pem")):
            name = path.name[: -len(".pem")]
            if _valid_name(name):
                yield KeyInfo(name=name, uri=self._key_uri(name))

    def delete_key(self, name: str) -> None:
        path = self._key_path(name)
        self._load(path, name)  # proves the key exists and the caller knows the password
        try:
            with os_errors(f"deleting key {name!r}"):
                path.unlink()
        finally:
            _CHANGES.bump()
        fsync_dir(self.directory)

    def bind_legacy_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> FileSigner:
        """Migrate one key file written before name/algorithm binding: rewrite it with its binding.

        Call it only for a file you know is the key `name` (the binding is what detects a
        swapped file, so it cannot tell for an unbound one). Raises what `open` raises.
        """
        path = self._key_path(name)
        password = self._check_password()
        key, stored, _ = self._load(path, name, allow_unbound=True)
        spec = PublicKey(key.public_key()).spec
        chosen = choose_algorithm(spec, algorithm or stored)
        try:
            write_new(path, key_file_bytes(key, name, chosen.value, password), replace=True)
        finally:
            _CHANGES.bump()
        return self.open(name, chosen)

    # -- internals ---------------------------------------------------------------------

    def _store_new(self, name: str, path: Path, key: PrivateKey, algorithm: SignatureAlgorithm,
                   password: bytes) -> FileSigner:
        clean_stale_temp_files(self.directory)
        try:
            write_new(path, key_file_bytes(key, name, algorithm.value, password))
        finally:
            _CHANGES.bump()
        with os_errors(f"reading back key {name!r}"):
            identity = file_identity(os.lstat(path))
        return FileSigner(self, self._key_uri(name), algorithm, key, path, identity)

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
        if not _valid_name(name):
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
        """The password, checked against the store's verifier (written on first create).

        With the verifier missing, a create first proves the password opens every existing
        key: writing a check for a wrong password would lock the right one out of the store.
        """
        password = self._need_password()
        if self._verified:
            return password
        exists = check_directory(self.directory)
        marker = self.directory / MARKER
        record = load_marker(marker) if exists else None
        if record is not None:
            salt, expected, params = scrypt_parameters(record, marker)
            actual = Scrypt(salt=salt, length=32, **params).derive(password)
            if not hmac.compare_digest(actual, expected):
                raise AuthenticationFailed(f"wrong password for file store {self.directory}")
        elif not creating:
            return password  # no verifier: _load reports a key it cannot decrypt as a wrong password
        else:
            self._prove_password_opens_existing_keys(password)
            if not exists:
                with os_errors(f"creating file store {self.directory}"):
                    try:
                        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    except (FileExistsError, NotADirectoryError):
                        raise ConfigError(f"file store {self.directory} is not a directory") from None
                check_directory(self.directory)
            salt = os.urandom(16)
            check = Scrypt(salt=salt, length=32, **SCRYPT_DEFAULTS).derive(password)
            new = {"version": 1, "kdf": "scrypt", **SCRYPT_DEFAULTS,
                   "salt": _b64(salt), "check": _b64(check)}
            try:
                write_new(marker, json.dumps(new, indent=2).encode())
            except KeyExists:
                return self._check_password()  # another process made it first: check against theirs
        self._verified = True
        return password

    def _prove_password_opens_existing_keys(self, password: bytes) -> None:
        for info in self.list_keys():
            path = self.directory / f"{info.name}.pem"
            data, _ = read_private_file(path, MAX_KEY_FILE, f"no key {info.name!r}")
            if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" not in data:
                continue  # a certificate or other PEM beside the keys: nothing this password must open
            try:
                serialization.load_pem_private_key(parse_key_file(data, path)[2], password=password)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise AuthenticationFailed(
                    f"the password check {MARKER} of file store {self.directory} is missing and this password "
                    f"does not open the existing key {info.name!r}: refusing to write a new check for it "
                    f"(restore {MARKER}, or use the store's password)"
                ) from None

    def _load(self, path: Path, name: str, *, allow_unbound: bool = False
              ) -> tuple[PrivateKey, str | None, tuple[int, int, int, int]]:
        """(key, stored algorithm, file identity) of the key file for `name`, checked and bound."""
        if not check_directory(self.directory):
            raise KeyNotFound(f"no key {name!r}: file store {self.directory} does not exist")
        data, st = read_private_file(path, MAX_KEY_FILE, f"no key {name!r} in file store {self.directory}")
        password = self._check_password()
        algorithm, binding, pem = parse_key_file(data, path)
        try:
            key = serialization.load_pem_private_key(pem, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            if not self._verified:
                raise AuthenticationFailed(
                    f"cannot decrypt key file {path}: wrong password (or a damaged file; the store's password "
                    f"check {MARKER} is missing, so the two cannot be told apart)") from e
            # The password matched the store verifier, so the file itself is bad.
            raise KeyCorrupt(f"key file {path} is damaged or not an encrypted PKCS#8 key") from e
        try:
            PublicKey(key.public_key())  # type: ignore[arg-type]
        except AlgorithmNotSupported as e:
            raise KeyCorrupt(f"key file {path} holds an unsupported key type") from e
        if binding is None or algorithm is None:
            if not allow_unbound:
                raise KeyCorrupt(
                    f"key file {path} carries no name/algorithm binding (written by keyplane before bindings, "
                    f"or its binding line was removed); if it is the key {name!r}, migrate it once with "
                    f"FileKeyStore.bind_legacy_key({name!r})")
        elif not hmac.compare_digest(binding, key_binding(key, name, algorithm)):  # type: ignore[arg-type]
            raise KeyCorrupt(f"key file {path} was not written as key {name!r} with algorithm {algorithm}: "
                             "it was renamed, swapped with another key file, or its algorithm line was edited")
        return key, algorithm, file_identity(st)  # type: ignore[return-value]


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and re.fullmatch(_NAME_PATTERN, name) is not None


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _split(path: Path) -> tuple[Path, str | None]:
    """(store directory, key name or None): a path is a key when its parent is a store and it is not one."""
    with os_errors(f"file store path {str(path)[:200]}"):
        if (path / MARKER).exists() or path.is_dir():
            return path, None
        if (path.parent / MARKER).exists() or (path.parent / f"{path.name}.pem").exists():
            return path.parent, path.name
    return path, None
