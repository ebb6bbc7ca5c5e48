"""The server goes away mid-run and comes back: BackendUnavailable while down, no stale state after.

Uses its own server (not the session one): a dev server keeps keys in memory, so a
restart forgets them, and other tests' keys must not vanish under them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from backends.vault_transit import VaultTransitKeyStore
from signers.algorithms import KeySpec
from signers.errors import BackendUnavailable, ConfigError, KeyNotFound
from tests.fixtures.openbao import OpenBaoServer, serving, store_uri

TOKEN_ENV = "KEYPLANE_TEST_RESTART_TOKEN"


@pytest.fixture
def server() -> Iterator[OpenBaoServer]:
    with serving(TOKEN_ENV) as own:
        yield own


def test_stop_and_restart(server: OpenBaoServer) -> None:
    store = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV) + "&timeout=5")
    signer = store.create_key("survivor", KeySpec.P256)
    signer.public_key.verify(signer.sign(b"before"), b"before")

    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def keep_signing() -> None:  # a client that never stops while the server goes down and up
        while not stop.is_set():
            try:
                signer.public_key.verify(signer.sign(b"during"), b"during")
            except (BackendUnavailable, KeyNotFound) as e:
                outcomes[type(e).__name__] += 1
            except ConfigError as e:  # the dev server listens a moment before Transit is mounted again
                outcomes["not mounted yet" if "mount" in str(e) else f"unexpected: {e!r}"] += 1
            except Exception as e:  # recorded and asserted on in the main thread
                outcomes[f"unexpected: {e!r}"] += 1
            else:
                outcomes["signed"] += 1

    worker = threading.Thread(target=keep_signing)
    worker.start()
    try:
        server.stop()
        with pytest.raises(BackendUnavailable) as caught:
            signer.sign(b"while down")
        assert caught.value.cause is not None
        for call in (lambda: store.open("survivor"), lambda: list(store.list_keys()),
                     lambda: store.create_key("other", KeySpec.ED25519)):
            with pytest.raises(BackendUnavailable):
                call()

        server.start()  # same port, fresh in-memory state, Transit mounted again
        # The key is gone with the old process: the signer says so instead of signing with stale state.
        with pytest.raises(KeyNotFound):
            signer.sign(b"after")
        # A new key under the same name and version is a different key: the old signer refuses it.
        replacement = store.create_key("survivor", KeySpec.P256)
        assert replacement.key_id != signer.key_id and replacement.version == signer.version == 1
        with pytest.raises(KeyNotFound, match="no longer the key"):
            signer.sign(b"after")
        # The same store (same pool) works again.
        replacement.public_key.verify(replacement.sign(b"after"), b"after")
        assert [k.name for k in store.list_keys()] == ["survivor"]
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert set(outcomes) <= {"signed", "BackendUnavailable", "KeyNotFound", "not mounted yet"}, outcomes
    assert outcomes["BackendUnavailable"] >= 1, outcomes
