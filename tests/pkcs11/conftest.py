"""Fixtures shared by the PKCS#11 tests: a store on the session's SoftHSM2 token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.pkcs11 import Pkcs11KeyStore
from tests.fixtures.stores import opened


@pytest.fixture(scope="module")
def store(softhsm_store_uri: str) -> Iterator[Pkcs11KeyStore]:
    """A store on the session's token (one per test module, closed after it)."""
    yield from opened(Pkcs11KeyStore, softhsm_store_uri)
