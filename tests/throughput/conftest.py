"""The `signer` fixture: a fresh P-256 key on each back end's real server, and a poisoning helper."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import signers
from signers.algorithms import KeySpec
from signers.errors import KeyNotFound
from signers.signer import Signer

BACKENDS = ["file", "pkcs11", "awskms", "azurekms", "gcpkms", "openbao"]
FIXTURE = {
    "file": "file_store_uri",
    "pkcs11": "softhsm_store_uri",
    "awskms": "moto_store_uri",
    "azurekms": "azure_store_uri",
    "gcpkms": "gcp_store_uri",
    "openbao": "openbao_store_uri",
}
POISON = b"this item fails"


@pytest.fixture(params=BACKENDS)
def signer(request: pytest.FixtureRequest) -> Iterator[Signer]:
    store_uri = request.getfixturevalue(FIXTURE[request.param])
    store = signers.open_store(store_uri)
    name = f"batch-{uuid.uuid4().hex[:10]}"
    try:
        yield store.create_key(name, KeySpec.P256)
    finally:
        try:
            store.delete_key(name)
        finally:
            store.close()


def poisoned(signer: Signer) -> Signer:
    """The same signer, whose `sign` refuses one particular message (as a service refusing one item would)."""
    real_sign = type(signer).sign

    def sign(self: Signer, message: bytes) -> bytes:
        if message == POISON:
            raise KeyNotFound("refused for this item")
        return real_sign(self, message)

    real_sign_async = type(signer).sign_async

    async def sign_async(self: Signer, message: bytes) -> bytes:  # native async clients bypass `sign`
        if message == POISON:
            raise KeyNotFound("refused for this item")
        return await real_sign_async(self, message)

    members = {"sign": sign, "sign_async": sign_async}
    signer.__class__ = type("Poisoned" + type(signer).__name__, (type(signer),), members)
    return signer


