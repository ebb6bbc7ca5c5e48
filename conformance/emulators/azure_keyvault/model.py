"""The emulated vault's state and the Key Vault wire conventions (base64url, error answers, names)."""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # any GUID: the SDK passes it to the credential only
SERVICE_VERSION = "1.9.2770.1"
ALL_PERMISSIONS = frozenset({"get", "list", "create", "import", "update", "delete", "sign", "verify", "purge",
                             "recover", "rotate"})
PAGE_SIZE = 25  # Key Vault's default and maximum `maxresults`
RECOVERABLE_DAYS = 90

NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")

# Key Vault's curve names -> `cryptography` curves, and the one ECDSA algorithm each allows.
CURVES: dict[str, tuple[ec.EllipticCurve, str, int]] = {
    "P-256": (ec.SECP256R1(), "ES256", 32),
    "P-384": (ec.SECP384R1(), "ES384", 48),
    "P-521": (ec.SECP521R1(), "ES512", 66),
    "P-256K": (ec.SECP256K1(), "ES256K", 32),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512, "256K": hashes.SHA256,
}
RSA_SIZES = frozenset({2048, 3072, 4096})
EC_OPS = ["sign", "verify"]
RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
KNOWN_OPS = frozenset({*RSA_OPS, "import", "export"})


def b64url(data: bytes) -> str:
    """Unpadded base64url: the encoding of every binary field in the Key Vault REST API."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: Any) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise Fail(400, "BadParameter", "Property value is not valid base64url.")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_bytes(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big")


class Fail(Exception):
    """An error answer: status, Key Vault error code, message (and optional extra headers)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class KeyVersion:
    name: str
    version: str
    kty: str  # EC, EC-HSM, RSA, RSA-HSM: as created
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    key_ops: list[str]
    enabled: bool = True
    not_before: int | None = None
    expires: int | None = None
    tags: dict[str, str] | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def curve(self) -> str | None:
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return next(n for n, (c, _, _) in CURVES.items() if c.name == self.private_key.curve.name)
        return None


@dataclass
class Deleted:
    versions: list[KeyVersion]
    deleted_date: int


class Vault:
    """The state of one vault: keys by name (versions in creation order) and soft-deleted keys."""

    def __init__(self, managed_hsm: bool) -> None:
        self.managed_hsm = managed_hsm
        self.lock = threading.Lock()
        self.keys: dict[str, list[KeyVersion]] = {}
        self.deleted: dict[str, Deleted] = {}
