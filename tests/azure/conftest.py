"""Fixtures shared by the Azure tests: SDK clients and a keyplane store on the session's emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from backends.azure_keyvault import AzureKeyVaultKeyStore
from conformance.emulators.azure_keyvault import Handle
from tests.fixtures.stores import opened, unique_name


class StaticCredential:
    """The smallest azure-core TokenCredential: one fixed bearer token (what the emulator accepts)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def sdk_options(handle: Handle) -> dict[str, Any]:
    """What the real SDK needs to talk to the emulator: its CA, and no vault.azure.net resource check."""
    return {"verify_challenge_resource": False, "connection_verify": handle.ca_pem_path}


@pytest.fixture(scope="module")
def key_client(azure_emulator: Handle) -> Iterator[Any]:
    from azure.keyvault.keys import KeyClient

    with KeyClient(azure_emulator.url, StaticCredential(azure_emulator.token), **sdk_options(azure_emulator)) as c:
        yield c


@pytest.fixture(scope="module")
def store(azure_store_uri: str) -> Iterator[AzureKeyVaultKeyStore]:
    yield from opened(AzureKeyVaultKeyStore, azure_store_uri)


@pytest.fixture
def name() -> str:
    """A fresh key name, so tests sharing the session's vault never collide."""
    return unique_name()


@pytest.fixture
def faults(azure_emulator: Handle) -> Iterator[Handle]:
    """The emulator, with any injected failure cleared when the test ends."""
    try:
        yield azure_emulator
    finally:
        azure_emulator.clear_faults()
