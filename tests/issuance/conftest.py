"""Issuer and agent keys for the issuance tests.

Keys come from a real file back end store made once per session (RSA key generation
is slow); tests that need a fresh store use `file_store` from tests/fixtures/files.py.
Other back ends' session fixtures (`softhsm_store_uri`, `openbao_store_uri`) are
requested by name through `backend_store`, which skips, saying why, when one is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import signers
from signers import KeySpec
from tests.fixtures.files import password_file_store_uri

# Every key spec the issuance layer signs with, by a short test id.
SPECS = {
    "ed25519": KeySpec.ED25519,
    "p256": KeySpec.P256,
    "p384": KeySpec.P384,
    "secp256k1": KeySpec.SECP256K1,
    "rsa2048": KeySpec.RSA2048,
    "mldsa44": KeySpec.ML_DSA_44,
    "mldsa65": KeySpec.ML_DSA_65,
    "mldsa87": KeySpec.ML_DSA_87,
}


@pytest.fixture(scope="session")
def issuance_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A file store holding one key per spec (named by the SPECS ids) plus two agent keys."""
    uri = password_file_store_uri(tmp_path_factory.mktemp("issuance"), "issuance test password")
    with signers.open_store(uri) as store:
        for name, spec in SPECS.items():
            store.create_key(name, spec)
        store.create_key("rsa2048-rs256", KeySpec.RSA2048, algorithm="RS256")
        store.create_key("agent", KeySpec.ED25519)
        store.create_key("other-agent", KeySpec.P256)
        yield store


@pytest.fixture(scope="session")
def keys(issuance_store: Any) -> dict[str, Any]:
    """Signers by name, opened once."""
    names = [*SPECS, "agent", "other-agent"]
    opened = {name: issuance_store.open(name) for name in names}
    opened["rsa2048-rs256"] = issuance_store.open("rsa2048-rs256", "RS256")  # the store keeps no algorithm
    return opened


@pytest.fixture(params=["jsonl", "sqlite"])
def log_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a fresh audit log goes, once per storage format."""
    return tmp_path / ("audit.jsonl" if request.param == "jsonl" else "audit.db")


@pytest.fixture(params=sorted(SPECS))
def any_signer(request: pytest.FixtureRequest, keys: dict[str, Any]) -> Any:
    """Each spec's signer in turn."""
    return keys[request.param]


def backend_store(request: pytest.FixtureRequest, fixture: str) -> Any:
    """Open the store behind a back end's session fixture (tests/fixtures/)."""
    return signers.open_store(request.getfixturevalue(fixture))


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    return tmp_path / "issuer-jwks.json"


@pytest.fixture(autouse=True)
def replay_cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default replay cache (proofs of possession, single-use tokens) lives in the test's temp dir."""
    path = tmp_path / "replay.sqlite"
    monkeypatch.setenv("KEYPLANE_REPLAY_CACHE", str(path))
    return path
