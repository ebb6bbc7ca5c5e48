"""Test-only back ends for the round-2 rows: each has exactly one defect (or, for the
`*Good` ones, implements an optional Protocol correctly), so each row is shown to fail
for its defect and pass otherwise. Same shape as broken_backend.py: the file store under
another URI scheme, registered through Target.plugins.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from backends.file import _ALGORITHM_LINE, FileKeyStore, FileSigner, _write_new
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import BatchSignError, ConfigError, KeyDisabled, KeyExists, KeyNotFound, KeyplaneError
from signers.keys import PublicKey
from signers.signer import BaseSigner, KeyInfo
from tests.conformance.broken_backend import _FileLike, _Wrapped

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_FIXED_K = 0x1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF


class NonceReuseSigner(_Wrapped):
    """P-256 with a fixed nonce k: every signature verifies, every r is the same (key recoverable)."""

    def sign(self, message: bytes) -> bytes:
        if self.spec is not KeySpec.P256:
            return self.inner.sign(message)
        d = self.inner._key.private_numbers().private_value  # type: ignore[union-attr]
        r = ec.derive_private_key(_FIXED_K, ec.SECP256R1()).public_key().public_numbers().x % _P256_ORDER
        z = int.from_bytes(hashlib.sha256(message).digest(), "big")
        s = pow(_FIXED_K, -1, _P256_ORDER) * (z + r * d) % _P256_ORDER
        return encode_dss_signature(r, s)


class NonceReuseStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return NonceReuseSigner(signer)


class FalselyDeterministicStore(_FileLike):
    """Claims P-256 deterministic (RFC 6979) but signs with random nonces."""

    capabilities = replace(FileKeyStore.capabilities, deterministic=frozenset({KeySpec.ED25519, KeySpec.P256}))


class OverwritingStore(_FileLike):
    """A second create_key with a taken name silently replaces the key."""

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Any:
        try:
            return super().create_key(name, spec, **opts)
        except KeyExists:
            super().delete_key(name)
            return super().create_key(name, spec, **opts)


class SilentDuplicateStore(_FileLike):
    """A second create_key with a taken name returns the existing key instead of raising KeyExists."""

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Any:
        try:
            return super().create_key(name, spec, **opts)
        except KeyExists:
            return self.open(name)


class GreedyDeleteStore(_FileLike):
    """delete_key(name) removes every key whose name starts with `name` (a prefix match gone wrong)."""

    def delete_key(self, name: str) -> None:
        for info in list(self.list_keys()):
            if info.name != name and info.name.startswith(name):
                super().delete_key(info.name)
        super().delete_key(name)


class DisablingDeleteStore(_FileLike):
    """delete_key only disables (as some services do) and says so: Capabilities.deletion = "disabled"."""

    capabilities = replace(FileKeyStore.capabilities, deletion="disabled")

    def delete_key(self, name: str) -> None:
        path = self._key_path(name)
        if not path.exists():
            raise KeyNotFound(name)
        path.rename(path.with_suffix(".disabled"))

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        name = self._name_from(uri_or_name)
        if self._key_path(name).with_suffix(".disabled").exists() and not self._key_path(name).exists():
            raise KeyDisabled(f"key {name!r} is disabled")
        return super().open(uri_or_name, algorithm)

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Any:
        if self._key_path(name).with_suffix(".disabled").exists():
            raise KeyExists(f"key {name!r} is disabled, its name is taken")
        return super().create_key(name, spec, **opts)


class ClaimsImmediateButDisablesStore(DisablingDeleteStore):
    """The same, but claiming deletion is immediate: KeyDisabled after delete is then a fail."""

    capabilities = FileKeyStore.capabilities


class WrongHashSigner(_Wrapped):
    """Asked for PS384 / PS512, signs PS256 (the algorithm attribute still says PS384)."""

    def sign(self, message: bytes) -> bytes:
        if self.algorithm in (SignatureAlgorithm.PS384, SignatureAlgorithm.PS512):
            key = self.inner._key
            h = hashes.SHA256()
            return key.sign(message, padding.PSS(mgf=padding.MGF1(h), salt_length=32), h)  # type: ignore[call-arg,union-attr]
        return self.inner.sign(message)


class WrongHashStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return WrongHashSigner(signer)


class ForgetfulPagingStore(_FileLike):
    """list_keys returns only the first page of 20 (a forgotten next-page token)."""

    def list_keys(self) -> Any:
        return iter(list(super().list_keys())[:20])


class SecretInListingStore(_FileLike):
    """KeyInfo.uri carries the password inline."""

    def list_keys(self) -> Any:
        password = self._password.reveal() if self._password is not None else ""
        for info in super().list_keys():
            yield KeyInfo(name=info.name, uri=info.uri + f"&password={password}")


class BlockingAsyncSigner(_Wrapped):
    """A remote-like signer (10 ms a signature) whose sign_async signs on the event loop's thread."""

    def sign(self, message: bytes) -> bytes:
        time.sleep(0.01)
        return self.inner.sign(message)

    async def sign_async(self, message: bytes) -> bytes:
        return self.sign(message)  # the defect: no await, no thread


class BlockingAsyncStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return BlockingAsyncSigner(signer)


class YieldThenBlockSigner(BlockingAsyncSigner):
    """Yields to the loop once, then signs on the loop's thread: only the stall shows it."""

    async def sign_async(self, message: bytes) -> bytes:
        await asyncio.sleep(0)
        return self.sign(message)


class YieldThenBlockStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return YieldThenBlockSigner(signer)


class SlowDeviceSigner(_Wrapped):
    """An HSM that signs at 20 per second, one at a time: slow, but correct."""

    import threading as _threading

    _lock = _threading.Lock()

    def sign(self, message: bytes) -> bytes:
        with self._lock:
            time.sleep(0.05)
            return self.inner.sign(message)


class SlowDeviceStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return SlowDeviceSigner(signer)


class NoKeyIdSigner(BaseSigner):
    """A vendor signer that forgot key_id (and made algorithm a str)."""

    def __init__(self, inner: FileSigner) -> None:
        super().__init__(inner.uri, inner.algorithm, inner.public_key)
        del self.key_id
        self.inner = inner

    def sign(self, message: bytes) -> bytes:
        return self.inner.sign(message)


class NoKeyIdStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return NoKeyIdSigner(signer)


class AbortingStore(_FileLike):
    """The device library calls abort() inside create_key (for P-256)."""

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Any:
        if KeySpec.parse(spec) is KeySpec.P256:
            os.kill(os.getpid(), signal.SIGABRT)
        return super().create_key(name, spec, **opts)


class NameBoundSigner(_Wrapped):
    """Looks the key up by name at every signature (as a remote service does) and never re-checks it."""

    def __init__(self, inner: FileSigner, store: FileKeyStore, name: str) -> None:
        super().__init__(inner)
        self._store, self._name = store, name

    def sign(self, message: bytes) -> bytes:
        return FileKeyStore.open(self._store, self._name).sign(message)


class NameBoundStore(_FileLike):
    """A key deleted and re-created under the same name: old signers sign with the new key."""

    def wrap(self, signer: FileSigner) -> BaseSigner:
        return NameBoundSigner(signer, self, self._name_from(signer.uri))


# -- optional Protocols, implemented (correctly, or with one defect) -------------------------


class _Importing(_FileLike):
    def import_key(self, name: str, private_key: Any, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        path = self._key_path(name)
        password = self._check_password(creating=True)
        if path.exists():
            raise KeyExists(name)
        spec = PublicKey(private_key.public_key()).spec
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(password))
        _write_new(path, f"{_ALGORITHM_LINE}{spec.default_algorithm.value}\n".encode() + pem)
        return self.open(name, algorithm)


class _Disabling(_FileLike):
    def disable_key(self, name: str) -> None:
        self.open(name)
        self._key_path(name).with_suffix(".off").touch()

    def enable_key(self, name: str) -> None:
        self.open(name)
        self._key_path(name).with_suffix(".off").unlink(missing_ok=True)


class _Rotating(_FileLike):
    """rotate_key: the old version is kept as <name>.v<N>, the new one becomes <name>."""

    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        old = self.open(name)
        version = 1 + sum(1 for _ in self.directory.glob(f"{name}.v*.pem"))
        self._key_path(name).rename(self.directory / f"{name}.v{version}.pem")
        new = self.create_key(name, old.public_key.spec)
        new.version = str(version + 1)
        return new


class DigestBatchSigner(_Wrapped):
    """sign_digest, sign_many and a native-looking sign_async / aclose, all correct."""

    version = "1"
    store: Any = None

    def sign(self, message: bytes) -> bytes:
        if self.store is not None and self.store._key_path(self.store._name_from(self.uri)).with_suffix(".off").exists():
            raise KeyDisabled("disabled")
        return self.inner.sign(message)

    def sign_digest(self, digest: bytes) -> bytes:
        h = self.algorithm.hash_algorithm()
        if len(digest) != h.digest_size:
            raise ConfigError(f"digest must be {h.digest_size} bytes")
        key = self.inner._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(self._digest_input(digest), ec.ECDSA(Prehashed(h)))
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if self.algorithm.is_pss else padding.PKCS1v15()
        return key.sign(self._digest_input(digest), pad, Prehashed(h))  # type: ignore[union-attr,call-arg]

    def _digest_input(self, digest: bytes) -> bytes:
        return digest

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        results: list[bytes | KeyplaneError] = []
        for message in messages:
            if not isinstance(message, bytes):
                results.append(ConfigError("a message must be bytes"))
            else:
                results.append(self.sign(message))
        if any(isinstance(r, KeyplaneError) for r in results):
            raise BatchSignError("an item failed", results)
        return [r for r in results if isinstance(r, bytes)]

    async def sign_many_async(self, messages: Sequence[bytes]) -> list[bytes]:
        return self.sign_many(messages)

    async def aclose(self) -> None:
        return None


class AllProtocolsStore(_Importing, _Disabling, _Rotating):
    """Implements every optional Protocol correctly: each protocol row must pass."""

    signer_class = DigestBatchSigner

    def wrap(self, signer: FileSigner) -> BaseSigner:
        wrapped = DigestBatchSigner(signer)
        wrapped.store = self
        return wrapped

    def list_keys(self) -> Any:
        return (i for i in super().list_keys() if ".v" not in i.name)


class DoubleHashDigestSigner(DigestBatchSigner):
    def _digest_input(self, digest: bytes) -> bytes:
        return hashlib.sha256(digest).digest()  # the defect: hashes the digest again


class ReversedBatchSigner(DigestBatchSigner):
    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        return list(reversed(super().sign_many(messages)))  # the defect: order not preserved


class StaleRotationStore(AllProtocolsStore):
    def rotate_key(self, name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        signer = self.open(name)  # the defect: "rotates" without a new key
        signer.version = "2"
        return signer


class DoubleHashDigestStore(AllProtocolsStore):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        wrapped = DoubleHashDigestSigner(signer)
        wrapped.store = self
        return wrapped


class ReversedBatchStore(AllProtocolsStore):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        wrapped = ReversedBatchSigner(signer)
        wrapped.store = self
        return wrapped


class StillSignsWhenDisabledStore(AllProtocolsStore):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return DigestBatchSigner(signer)  # the defect: the signer never looks at the disabled mark


ROW_PLUGINS = {
    scheme: f"{__name__}:{cls}"
    for scheme, cls in {
        "noncereuse": "NonceReuseStore",
        "falsedet": "FalselyDeterministicStore",
        "overwriting": "OverwritingStore",
        "silentduplicate": "SilentDuplicateStore",
        "greedydelete": "GreedyDeleteStore",
        "disablingdelete": "DisablingDeleteStore",
        "claimsimmediate": "ClaimsImmediateButDisablesStore",
        "wronghash": "WrongHashStore",
        "forgetfulpaging": "ForgetfulPagingStore",
        "secretlisting": "SecretInListingStore",
        "blockingasync": "BlockingAsyncStore",
        "yieldthenblock": "YieldThenBlockStore",
        "slowdevice": "SlowDeviceStore",
        "nokeyid": "NoKeyIdStore",
        "aborting": "AbortingStore",
        "namebound": "NameBoundStore",
        "allprotocols": "AllProtocolsStore",
        "doublehashdigest": "DoubleHashDigestStore",
        "reversedbatch": "ReversedBatchStore",
        "stalerotation": "StaleRotationStore",
        "stillsigns": "StillSignsWhenDisabledStore",
    }.items()
}
