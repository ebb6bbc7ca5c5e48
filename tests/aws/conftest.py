"""Fixtures shared by the AWS KMS tests: a store on the session's moto server, unique key names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.aws_kms import AwsKmsKeyStore
from tests.fixtures.stores import opened, unique_name


@pytest.fixture(scope="module")
def store(moto_store_uri: str) -> Iterator[AwsKmsKeyStore]:
    yield from opened(AwsKmsKeyStore, moto_store_uri)


@pytest.fixture
def name() -> str:
    """A fresh alias name, so tests sharing the session's moto server never collide."""
    return unique_name()
