"""X.509 test fixtures: a session-wide file store that makes (and caches) a key per role and spec."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from backends.file import FileKeyStore
from signers.algorithms import KeySpec
from signers.revocation import MemoryRevocationStore
from signers.secrets import Secret
from signers.signer import Signer

KeyFactory = Callable[..., Signer]


@pytest.fixture(scope="session")
def ca_key_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileKeyStore]:
    """One file store for the whole session: RSA-4096 keys are slow to make, so each is made once."""
    with FileKeyStore(tmp_path_factory.mktemp("x509-keys"), Secret("x509 test password")) as store:
        yield store


@pytest.fixture(scope="session")
def file_key(ca_key_store: FileKeyStore) -> KeyFactory:
    """`file_key(role, spec, algorithm=None)`: the same role + spec + algorithm gives the same key."""
    made: dict[tuple[str, KeySpec, str | None], Signer] = {}

    def make(role: str, spec: KeySpec | str, algorithm: str | None = None) -> Signer:
        spec = KeySpec.parse(spec)
        wanted = (role, spec, algorithm)
        if wanted not in made:
            name = f"{role}-{spec.value}-{algorithm or 'default'}".replace("_", "-")
            made[wanted] = ca_key_store.create_key(name, spec, algorithm=algorithm)
        return made[wanted]

    return make


@pytest.fixture
def revocations() -> MemoryRevocationStore:
    return MemoryRevocationStore()
