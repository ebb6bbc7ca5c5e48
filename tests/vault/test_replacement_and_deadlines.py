"""Attacks from the hardening run on Vault / OpenBao (issue 14 items 1, 12, 13).

* A server restarted (dev mode: every key gone) with a key re-created under the same name:
  the old Signer must raise KeyNotFound, never return a signature its public key rejects,
  even when no call happened while the server was down (urllib3 reconnects silently).
* A stopped (SIGSTOP) server: sign() and open() give up within about the configured
  timeout, a total deadline across retries, not one timeout per attempt.

Each test uses its own server: restarting or stopping the session one would break others.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from backends.vault_transit import VaultTransitKeyStore
from signers.algorithms import KeySpec
from signers.errors import BackendUnavailable, ConfigError, KeyNotFound
from tests.fixtures.openbao import OpenBaoServer, serving, store_uri

from .conftest import root_call

TOKEN_ENV = "KEYPLANE_TEST_REPLACEMENT_TOKEN"


@pytest.fixture
def server() -> Iterator[OpenBaoServer]:
    with serving(TOKEN_ENV) as own:
        yield own


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.ED25519, KeySpec.RSA2048, KeySpec.ML_DSA_44], ids=str)
def test_key_recreated_under_the_same_name_after_a_restart_is_key_not_found(
    server: OpenBaoServer, spec: KeySpec
) -> None:
    store = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV))
    signer = store.create_key("replaced", spec)
    signer.public_key.verify(signer.sign(b"before"), b"before", signer.algorithm)
    # No call while the server is down: the signer sees no outage at all.
    server.stop()
    server.start()
    kind = {KeySpec.P256: "ecdsa-p256", KeySpec.ED25519: "ed25519", KeySpec.RSA2048: "rsa-2048",
            KeySpec.ML_DSA_44: "mldsa-44"}[spec]
    root_call(server, "POST", "/v1/transit/keys/replaced", {"type": kind})  # same name, same version 1
    with pytest.raises(KeyNotFound, match="no longer the key"):
        signer.sign(b"after")
    reopened = store.open("replaced")
    assert reopened.version == signer.version == 1 and reopened.key_id != signer.key_id
    reopened.public_key.verify(reopened.sign(b"after"), b"after", reopened.algorithm)


def test_key_deleted_by_a_restart_is_key_not_found(server: OpenBaoServer) -> None:
    store = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV))
    signer = store.create_key("gone", KeySpec.P256)
    server.stop()
    server.start()
    with pytest.raises(KeyNotFound):
        signer.sign(b"after")


def test_a_stopped_server_costs_one_timeout_not_one_per_retry(server: OpenBaoServer) -> None:
    timeout = 1.5
    store = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV) + f"&timeout={timeout}")
    signer = store.create_key("stopped", KeySpec.P256)
    signer.sign(b"warm")  # a pooled keep-alive connection exists, as in a long-running service
    assert server._process is not None
    os.kill(server._process.pid, signal.SIGSTOP)
    try:
        for call in (lambda: signer.sign(b"m"), lambda: store.open("stopped"), lambda: list(store.list_keys())):
            started = time.monotonic()
            with pytest.raises(BackendUnavailable):
                call()
            elapsed = time.monotonic() - started
            # The old behaviour was 4 x timeout (each of 3 retries waited a whole read timeout).
            assert elapsed < timeout + 1.0, f"took {elapsed:.2f}s with timeout={timeout}"
    finally:
        os.kill(server._process.pid, signal.SIGCONT)
    signer.public_key.verify(signer.sign(b"resumed"), b"resumed")


def test_default_timeout_is_a_sane_total(server: OpenBaoServer) -> None:
    store = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV))
    # Signing and reading: 10 s in all; making the server generate a key (RSA-4096 on a busy CPU): 60 s.
    assert (store.connection.timeout, store.connection.keygen_timeout) == (10.0, 60.0)
    explicit = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV) + "&timeout=3")
    assert (explicit.connection.timeout, explicit.connection.keygen_timeout) == (3.0, 3.0)
    assert "timeout=3" in explicit.uri and "timeout" not in store.uri


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e9", "abc", ""])
def test_bad_timeouts_are_config_errors(server: OpenBaoServer, value: str) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV) + f"&timeout={value}")


@pytest.mark.parametrize("name", ["k\n", "k\r\n", "\nk", "k\t"])
def test_key_names_with_newlines_are_refused(server: OpenBaoServer, name: str) -> None:
    store = VaultTransitKeyStore.from_uri(store_uri(server, TOKEN_ENV))
    with pytest.raises(ConfigError, match="key names"):
        store.create_key(name, KeySpec.ED25519)
    with pytest.raises(ConfigError, match="key names"):
        store.open(name)
    assert list(store.list_keys()) == []
