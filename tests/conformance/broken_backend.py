"""Deliberately broken back ends (test-only plugins) the harness must catch.

Each is the file back end with one defect, registered under its own URI scheme
through `Target.plugins`, so the harness's child process loads it too. The URI is a
file: store URI with the scheme swapped.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from backends.file import FileKeyStore, FileSigner
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported
from signers.signature_format import curve_size, ecdsa_der_to_raw
from signers.signer import BaseSigner, Capabilities

log = logging.getLogger(__name__)


class _Wrapped(BaseSigner):
    """A Signer delegating to a real FileSigner; subclasses break `sign`."""

    def __init__(self, inner: FileSigner) -> None:
        super().__init__(inner.uri, inner.algorithm, inner.public_key)
        self.inner = inner

    def sign(self, message: bytes) -> bytes:
        return self.inner.sign(message)


class _FileLike(FileKeyStore):
    """The file store under another scheme; `wrap` decides what the signers do."""

    @classmethod
    def from_uri(cls, uri: str) -> Any:
        return super().from_uri("file:" + uri.split(":", 1)[1])

    def wrap(self, signer: FileSigner) -> BaseSigner:
        return signer

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Any:
        return self.wrap(super().create_key(name, spec, **opts))

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        return self.wrap(super().open(uri_or_name, algorithm))


class RawEcdsaSigner(_Wrapped):
    def sign(self, message: bytes) -> bytes:
        signature = self.inner.sign(message)
        if self.spec in (KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1):
            return ecdsa_der_to_raw(signature, curve_size(self.spec))  # the bug: r||s where DER is due
        return signature


class RawEcdsaStore(_FileLike):
    """Returns ECDSA signatures as raw r||s (PKCS#11's form) instead of DER."""

    def wrap(self, signer: FileSigner) -> BaseSigner:
        return RawEcdsaSigner(signer)


class LeakyStore(_FileLike):
    """Logs its password at DEBUG level when opening a key."""

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        password = self._password.reveal() if self._password is not None else None
        log.debug("opening %s with password %s", uri_or_name, password)  # the bug
        return super().open(uri_or_name, algorithm)


class _OverlapSigner(_Wrapped):
    """A signer whose P-256 signatures misbehave when two overlap (a non-thread-safe module); others pass.

    Each subclass counts its own signatures in flight; `overlap` decides (under the lock)
    whether this call misbehaves, and `misbehave` is the defect.
    """

    _lock: threading.Lock
    _in_flight: int

    def __init_subclass__(cls) -> None:
        cls._lock, cls._in_flight = threading.Lock(), 0

    def overlap(self, overlapping: bool) -> bool:
        return overlapping

    def misbehave(self) -> None:
        raise NotImplementedError

    def sign(self, message: bytes) -> bytes:
        if self.spec is not KeySpec.P256:
            return self.inner.sign(message)
        cls = type(self)
        with cls._lock:
            cls._in_flight += 1
            bad = self.overlap(cls._in_flight > 1)
        try:
            if bad:
                self.misbehave()
            time.sleep(0.001)  # holds the "session" long enough for concurrent callers to collide
            return self.inner.sign(message)
        finally:
            with cls._lock:
                cls._in_flight -= 1


class CrashingSigner(_OverlapSigner):
    """Kills the interpreter with SIGSEGV when two P-256 signatures overlap, as a non-thread-safe HSM module does."""

    _crashed = False

    def overlap(self, overlapping: bool) -> bool:
        crash = overlapping and not CrashingSigner._crashed
        CrashingSigner._crashed |= crash  # one signal: a second one would cut faulthandler's report short
        return crash

    def misbehave(self) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)


class CrashingStore(_FileLike):
    def wrap(self, signer: FileSigner) -> BaseSigner:
        return CrashingSigner(signer)


class HangingSigner(_OverlapSigner):
    """Blocks forever (well, a minute) when two P-256 signatures overlap: a deadlocked driver."""

    def misbehave(self) -> None:
        threading.Event().wait(60)  # the defect under test: never returns in time


class HangingStore(_FileLike):
    """Hangs on opening a key that does not exist, and when P-256 signatures overlap."""

    def wrap(self, signer: FileSigner) -> BaseSigner:
        return HangingSigner(signer)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        if uri_or_name.endswith("-missing"):
            threading.Event().wait(30)
        return super().open(uri_or_name, algorithm)


class SizeLimitedSigner(_Wrapped):
    """Refuses messages longer than the store's `limit` with AlgorithmNotSupported, as Cloud KMS does."""

    limit = 65536

    def sign(self, message: bytes) -> bytes:
        if len(message) > self.limit:
            raise AlgorithmNotSupported(f"this service signs at most {self.limit} bytes, not {len(message)}")
        return self.inner.sign(message)


class SizeLimitedStore(_FileLike):
    """A documented 64 KiB limit: the 1 MiB message is refused (not-supported, not a failure)."""

    limit = 65536

    def wrap(self, signer: FileSigner) -> BaseSigner:
        wrapped = SizeLimitedSigner(signer)
        wrapped.limit = self.limit
        return wrapped


class TinyLimitStore(SizeLimitedStore):
    """Refuses even a 32-byte message: that is a failure."""

    limit = 16


class NarrowStore(_FileLike):
    """Claims Ed25519 only and refuses every other spec properly."""

    capabilities = Capabilities(key_specs=frozenset({KeySpec.ED25519}))

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> Any:
        if KeySpec.parse(spec) not in self.capabilities.key_specs:
            raise AlgorithmNotSupported(f"narrow store offers Ed25519 only, not {spec}")
        return super().create_key(name, spec, **opts)


class OverclaimingStore(_FileLike):
    """Claims Ed25519 only but quietly creates any spec asked for (must be a FAIL)."""

    capabilities = Capabilities(key_specs=frozenset({KeySpec.ED25519}))


class SlowUnreachableStore(_FileLike):
    """Answers "unavailable" correctly, but only after `delay` seconds (longer than the target's timeout)."""

    delay = 1.0

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> Any:
        from signers.errors import BackendUnavailable

        if "unreachable" in str(self.directory):
            time.sleep(self.delay)  # the defect under test: no timeout on the connect
            raise BackendUnavailable("no answer from the device", cause=TimeoutError("connect"))
        return super().open(uri_or_name, algorithm)


class FastUnreachableStore(SlowUnreachableStore):
    delay = 0.0


PLUGINS = {
    "brokenecdsa": f"{__name__}:RawEcdsaStore",
    "leaky": f"{__name__}:LeakyStore",
    "crashing": f"{__name__}:CrashingStore",
    "hanging": f"{__name__}:HangingStore",
    "narrow": f"{__name__}:NarrowStore",
    "sizelimited": f"{__name__}:SizeLimitedStore",
    "tinylimit": f"{__name__}:TinyLimitStore",
    "overclaiming": f"{__name__}:OverclaimingStore",
    "slowunreachable": f"{__name__}:SlowUnreachableStore",
    "fastunreachable": f"{__name__}:FastUnreachableStore",
}
