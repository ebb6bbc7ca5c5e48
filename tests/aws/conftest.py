"""Fixtures shared by the AWS KMS tests: a store on the session's moto server, unique key names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from backends.aws_kms import AwsKmsKeyStore


@pytest.fixture(scope="module")
def store(moto_store_uri: str) -> Iterator[AwsKmsKeyStore]:
    with AwsKmsKeyStore.from_uri(moto_store_uri) as s:
        yield s


@pytest.fixture
def name() -> str:
    """A fresh alias name, so tests sharing the session's moto server never collide."""
    return f"t-{uuid.uuid4().hex[:12]}"
