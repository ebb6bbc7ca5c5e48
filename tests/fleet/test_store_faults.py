"""Bad input and faults for the state engines: typed errors, nothing written, bounded time."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from signers.errors import AuthenticationFailed, BackendUnavailable, ConfigError
from signers.stores import open_state
from signers.stores.postgres.schema import LATEST

from ..fixtures.state_servers import PrivateRedis


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("uri", [
    "postgresql://user:secret@127.0.0.1/db",                         # inline password
    "postgresql://127.0.0.1:99999/db",                               # port out of range
    "postgresql://127.0.0.1/",                                       # no database
    "postgresql://127.0.0.1/db?timeout=nan",                         # non-finite number
    "postgresql://127.0.0.1/db?pool-size=1000000",                   # unbounded pool
    "postgresql://127.0.0.1/db?sslmod=require",                      # typo
    "redis://user:secret@127.0.0.1:6379/0",
    "redis://127.0.0.1:6379/x",
    "redis://127.0.0.1:6379/0?timeout=-1",
    "sqlite://host/path.db",
    "sqlite:///",
    "nosuchengine://x",
])
def test_malformed_store_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_state(uri)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("scheme", ["postgresql", "redis"])
def test_unreachable_host_is_backend_unavailable_within_the_timeout(scheme: str) -> None:
    uri = f"{scheme}://127.0.0.1:{_closed_port()}/{'db' if scheme == 'postgresql' else '0'}?connect-timeout=1&timeout=1"
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        open_state(uri)
    assert time.monotonic() - started < 15
    assert caught.value.cause is not None


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[PrivateRedis]:
    server = PrivateRedis(password="the-right-password")
    yield server
    server.destroy()


def test_wrong_redis_password_is_authentication_failed(redis_with_password: PrivateRedis,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYPLANE_TEST_REDIS_PW", "a-wrong-password")
    with pytest.raises(AuthenticationFailed) as caught:
        open_state(f"{redis_with_password.uri}?password-source=env:KEYPLANE_TEST_REDIS_PW")
    assert "a-wrong-password" not in str(caught.value)
    monkeypatch.setenv("KEYPLANE_TEST_REDIS_PW", "the-right-password")
    with open_state(f"{redis_with_password.uri}?password-source=env:KEYPLANE_TEST_REDIS_PW") as state:
        assert "the-right-password" not in repr(state) and "the-right-password" not in state.uri
        state.revocations().revoke("after-auth")


def test_missing_redis_password_is_authentication_failed(redis_with_password: PrivateRedis) -> None:
    with pytest.raises(AuthenticationFailed):
        open_state(redis_with_password.uri)


@contextmanager
def empty_database(postgres_uri: str, label: str) -> Iterator[str]:
    """The URI of a new, empty database on the test server, dropped afterwards."""
    base, _, _ = postgres_uri.rpartition("/")
    name = f"keyplane_{label}_{os.getpid()}"
    with psycopg.connect(postgres_uri, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_uri, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_schema_from_a_newer_keyplane_is_refused_and_untouched(postgres_uri: str) -> None:
    with empty_database(postgres_uri, "newer") as uri:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute("CREATE TABLE keyplane_schema (id int PRIMARY KEY, version int NOT NULL)")
            conn.execute("INSERT INTO keyplane_schema VALUES (1, %s)", (LATEST + 1,))
        with pytest.raises(ConfigError, match="newer than this keyplane"):
            open_state(uri)
        with psycopg.connect(uri, autocommit=True) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'keyplane%'").fetchall()}
        assert tables == {"keyplane_schema"}  # nothing created


def test_migrate_false_refuses_an_unmigrated_database(postgres_uri: str) -> None:
    with empty_database(postgres_uri, "fresh") as uri:
        with pytest.raises(ConfigError, match="keyplane store migrate"):
            open_state(f"{uri}?migrate=false")
        with open_state(uri) as state:  # the default migrates
            state.revocations().revoke("first")
