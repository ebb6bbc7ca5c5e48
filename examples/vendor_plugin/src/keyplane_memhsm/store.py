"""The KeyStore: ``memhsm:SLOT?pin-source=env:NAME``.

A slot is a dict of keys in this process. The first store to open a slot sets its PIN;
a later store with another PIN gets AuthenticationFailed (the harness's bad-credentials
check). Everything a caller can get wrong is a typed `signers.errors` exception.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, AuthenticationFailed, ConfigError, KeyExists, KeyNotFound
from signers.secrets import resolve_secret
from signers.signer import Capabilities, KeyInfo
from signers.uri import parse_uri

from .signer import MemHsmSigner, PrivateKey

SPECS = frozenset({KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.RSA2048})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SLOTS: dict[str, dict[str, Any]] = {}  # slot -> {"pin": bytes, "keys": {name: (spec, key, alive)}}
_LOCK = threading.Lock()


def _generate(spec: KeySpec) -> PrivateKey:
    if spec is KeySpec.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if spec is KeySpec.P256:
        return ec.generate_private_key(ec.SECP256R1())
    if spec is KeySpec.P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class MemHsmKeyStore:
    """Keys in one process's memory; declared process-local so the harness knows."""

    capabilities = Capabilities(key_specs=SPECS, deterministic=frozenset({KeySpec.ED25519}), process_local=True)

    def __init__(self, slot: str, pin: bytes, pin_source: str) -> None:
        self.uri = f"memhsm:{slot}?pin-source={pin_source}"  # names where the PIN lives, never the PIN
        self._slot = slot
        with _LOCK:
            state = _SLOTS.setdefault(slot, {"pin": pin, "keys": {}})
        if not hmac.compare_digest(state["pin"], pin):
            raise AuthenticationFailed(f"wrong PIN for memhsm slot {slot!r}")
        self._keys: dict[str, tuple[KeySpec, PrivateKey, threading.Event]] = state["keys"]

    @classmethod
    def from_uri(cls, uri: str) -> MemHsmKeyStore:
        """Raises ConfigError for a malformed URI or a missing PIN source, AuthenticationFailed for a wrong PIN."""
        parsed = parse_uri(uri)
        if parsed.scheme != "memhsm" or not parsed.path:
            raise ConfigError("a memhsm URI is memhsm:SLOT?pin-source=env:NAME")
        unknown = set(parsed.query) - {"pin-source", "algorithm"}
        if unknown:
            raise ConfigError(f"memhsm: unknown attribute(s) {sorted(unknown)}")
        source = parsed.query.get("pin-source")
        if source is None:
            raise ConfigError("memhsm: pin-source is required (env:NAME or file:PATH)")
        slot = parsed.path.split("/")[0]
        return cls(slot, resolve_secret(source, "pin-source").reveal().encode(), source)

    # -- the KeyStore contract -------------------------------------------------------------

    def create_key(self, name: str, spec: KeySpec | str, **opts: Any) -> MemHsmSigner:
        spec = KeySpec.parse(spec)
        if spec not in SPECS:
            raise AlgorithmNotSupported(f"memhsm offers {', '.join(sorted(s.value for s in SPECS))}, not {spec.value}")
        if opts:
            raise ConfigError(f"memhsm: unknown create option(s) {sorted(opts)}")
        self._check_name(name)
        with _LOCK:
            if name in self._keys:
                raise KeyExists(f"key {name!r} already exists in slot {self._slot!r}")
            alive = threading.Event()
            alive.set()
            self._keys[name] = (spec, _generate(spec), alive)
        return self.open(name)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> MemHsmSigner:
        name = uri_or_name
        if ":" in uri_or_name:  # a key URI: memhsm:SLOT/NAME?...
            parsed = parse_uri(uri_or_name)
            name = parsed.path.split("/", 1)[-1]
            algorithm = algorithm or parsed.query.get("algorithm")
        with _LOCK:
            entry = self._keys.get(name)
        if entry is None:
            raise KeyNotFound(f"no key {name!r} in memhsm slot {self._slot!r}")
        spec, key, alive = entry
        chosen = SignatureAlgorithm.parse(algorithm) if algorithm else spec.default_algorithm
        return MemHsmSigner(self._key_uri(name), chosen, key, alive)

    def list_keys(self) -> Iterator[KeyInfo]:
        with _LOCK:
            entries = sorted(self._keys.items())
        for name, (spec, _, _) in entries:
            yield KeyInfo(name=name, uri=self._key_uri(name), spec=spec)

    def delete_key(self, name: str) -> None:
        with _LOCK:
            entry = self._keys.pop(name, None)
        if entry is None:
            raise KeyNotFound(f"no key {name!r} in memhsm slot {self._slot!r}")
        entry[2].clear()  # signers of the deleted key refuse from now on

    def close(self) -> None:
        """Nothing to release: the slot outlives the store, as a device's keys outlive a session."""

    def __enter__(self) -> MemHsmKeyStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemHsmKeyStore(uri={self.uri!r})"

    # -- helpers ---------------------------------------------------------------------------

    def _key_uri(self, name: str) -> str:
        return f"memhsm:{self._slot}/{name}?{self.uri.split('?', 1)[1]}"

    def _check_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise ConfigError(f"memhsm: key name must match {_NAME.pattern}")
