"""Fixtures shared by the Cloud KMS tests: a store on the session's gRPC emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.stores import opened


@pytest.fixture(scope="module")
def store(gcp_store_uri: str) -> Iterator[Any]:
    """A store on key ring ``tests`` (one per test module, closed after it)."""
    gcp_kms = pytest.importorskip("backends.gcp_kms", reason="backends.gcp_kms failed to import (keyplane[gcp])")
    yield from opened(gcp_kms.GcpKmsKeyStore, gcp_store_uri)
