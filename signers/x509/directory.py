"""A CA on disk: the directory `keyplane ca` works in.

    ca.json          the key (URI or keyplane.toml name; never a secret) and file names
    ca.pem           the CA certificate
    chain.pem        the CA certificate and its issuers up to the root
    revocations.db   revoked serials (SQLite, shared format with token revocation)
    crl.pem          the last CRL `keyplane ca crl` wrote (what `ca verify --dir` checks)
    issued/          one PEM per certificate this CA issued, named by serial (lower-case hex)

Explicit paths (key, certificate, revocations) override the directory's entries or replace
the directory. `issued/` lets `revoke` warn about a serial this CA never issued.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from signers.errors import ConfigError
from signers.registry import open as open_signer
from signers.revocation import SQLiteRevocationStore

from .authority import CertificateAuthority
from .files import read_certificates, write_pem
from .serials import serial_id

__all__ = ["STATE_FILE", "CaDirectory", "open_ca"]

STATE_FILE = "ca.json"
_STATE_KEYS = ("key", "certificate", "chain", "revocations")


@dataclass(frozen=True)
class CaDirectory:
    """Where one CA's files are; `directory` is None when only explicit paths were given."""

    directory: Path | None
    key: str
    cert: Path
    chain: Path
    revocations: Path

    @classmethod
    def locate(cls, directory: str | os.PathLike[str] | None, *, key: str | None = None, cert: str | None = None,
               revocations: str | None = None, creating: bool = False) -> CaDirectory:
        """The CA at `directory` (its ca.json) with any explicit overrides.

        Raises ConfigError when neither a CA directory nor both `key` and `cert` are given,
        or when ca.json is missing, unreadable or malformed.
        """
        base = Path(directory) if directory is not None else None
        state: dict[str, str] = {}
        if base is not None and not creating:
            state = _read_state(base, explicit=bool(key and cert))
        if base is None and not (key and cert):
            raise ConfigError("give --dir (or $KEYPLANE_CA_DIR), or both --key and --cert")
        here = base or Path(".")
        chosen_key = key or state.get("key")
        if not chosen_key:
            raise ConfigError("no CA key: give --key URI or name")
        return cls(
            directory=base,
            key=chosen_key,
            cert=Path(cert) if cert else here / state.get("certificate", "ca.pem"),
            chain=here / state.get("chain", "chain.pem"),
            revocations=Path(revocations) if revocations else here / state.get("revocations", "revocations.db"),
        )

    @property
    def crl(self) -> Path | None:
        """Where this CA's published CRL lives (None without a directory)."""
        return self.directory / "crl.pem" if self.directory is not None else None

    @property
    def issued(self) -> Path | None:
        return self.directory / "issued" if self.directory is not None else None

    def write_state(self, key_reference: str) -> dict[str, str]:
        """Write ca.json for a new CA; ConfigError if the directory already holds one (never overwritten)."""
        if self.directory is None:
            raise ConfigError("ca init needs --dir (or $KEYPLANE_CA_DIR)")
        state = {"key": key_reference, "certificate": "ca.pem", "chain": "chain.pem", "revocations": "revocations.db"}
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            with (self.directory / STATE_FILE).open("x", encoding="utf-8") as handle:
                handle.write(json.dumps(state, indent=2) + "\n")
        except FileExistsError:
            raise ConfigError(f"{self.directory} already holds a CA ({STATE_FILE}); init never overwrites") from None
        return state

    def record_issued(self, certificate: x509.Certificate) -> None:
        """Keep a copy of an issued certificate under issued/ (nothing without a directory)."""
        if self.issued is None:
            return
        self.issued.mkdir(exist_ok=True)
        write_pem(self.issued / f"{serial_id(certificate)}.pem", certificate)

    def issued_certificate(self, serial: int | str | x509.Certificate) -> x509.Certificate | None:
        """The certificate this CA issued with that serial, if issued/ holds it. Raises ConfigError for a bad serial."""
        if self.issued is None:
            return None
        path = self.issued / f"{serial_id(serial)}.pem"
        return read_certificates(path)[0] if path.is_file() else None


def _read_state(base: Path, *, explicit: bool) -> dict[str, str]:
    path = base / STATE_FILE
    try:
        state: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            return {}
        raise ConfigError(f"{base} is not a CA directory (no {STATE_FILE}); run `keyplane ca init`") from None
    except (ValueError, OSError) as e:  # UnicodeDecodeError is a ValueError: a binary file
        raise ConfigError(f"{path} is not a readable JSON file") from e
    if not isinstance(state, dict) or not all(isinstance(state.get(k, ""), str) for k in _STATE_KEYS):
        raise ConfigError(f"{path} is not a keyplane CA state file (expected an object of file names)")
    return {k: state[k] for k in _STATE_KEYS if k in state}


@contextlib.contextmanager
def open_ca(location: CaDirectory) -> Iterator[CertificateAuthority]:
    """The CA at `location`, with its revocation database open for the duration.

    Raises ConfigError for missing or damaged files, and whatever opening the key raises.
    """
    signer = open_signer(location.key)
    certificates = read_certificates(location.cert)
    parents: list[x509.Certificate] = []
    if location.chain.is_file():
        parents = [c for c in read_certificates(location.chain) if c != certificates[0]]
    with SQLiteRevocationStore(location.revocations) as revocations:
        yield CertificateAuthority(signer, certificates[0], chain=parents, revocations=revocations)
