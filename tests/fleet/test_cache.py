"""The verifier cache: follows pushes, falls back to polling, fails closed past its bound, recovers.

Waiting here is for a condition with a deadline (`eventually`), never a fixed sleep.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from signers.errors import BackendUnavailable
from signers.stores import StateBackend, open_state
from signers.stores.cache import RevocationCache

from ..fixtures.state_servers import PrivateRedis


def eventually(condition: Callable[[], bool], within: float = 10.0) -> float:
    """Seconds until `condition()` holds; AssertionError if it does not within `within` s."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if condition():
                return time.monotonic() - started
        except BackendUnavailable:
            pass
        time.sleep(0.005)
    raise AssertionError(f"condition not met within {within} s")


def test_a_revocation_reaches_the_cache_by_push(shared_state: StateBackend) -> None:
    store = shared_state.revocations()
    jti = f"jti-{uuid.uuid4().hex}"
    with RevocationCache(store, staleness_bound=5.0) as cache:
        assert not cache.is_revoked(jti)  # cached as "not revoked"
        assert cache.stats.misses == 1
        assert not cache.is_revoked(jti) and cache.stats.hits == 1
        store.revoke(jti)
        took = eventually(lambda: cache.is_revoked(jti))
        assert took < 5.0
        assert cache.stats.mode == "push"


def test_warm_lookups_do_not_touch_the_store(shared_state: StateBackend) -> None:
    store = shared_state.revocations()
    with RevocationCache(store) as cache:
        cache.is_revoked("warm")
        misses = cache.stats.misses
        for _ in range(1000):
            cache.is_revoked("warm")
        assert cache.stats.misses == misses


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.destroy()


def test_lost_redis_fails_closed_past_the_bound_then_recovers(private_redis: PrivateRedis) -> None:
    state = open_state(f"{private_redis.uri}?timeout=0.5&connect-timeout=0.5")
    store = state.revocations()
    revoked_during_outage = f"jti-{uuid.uuid4().hex}"
    with RevocationCache(store, staleness_bound=2.0, push_timeout=0.3, poll_interval=0.1) as cache:
        assert not cache.is_revoked("before")
        private_redis.stop()
        eventually(lambda: cache.stats.mode == "poll", within=10)
        with pytest.raises(BackendUnavailable, match="bound"):
            eventually_raises(lambda: cache.is_revoked("before"), within=10)
        assert cache.stats.stale_refusals >= 1
        private_redis.start()
        store.revoke(revoked_during_outage)  # after the restart, via the same store object: it reconnects
        eventually(lambda: cache.age < 2.0, within=15)
        assert cache.is_revoked(revoked_during_outage)
        assert not cache.is_revoked("before")
    state.close()


def eventually_raises(call: Callable[[], object], within: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < within:
        call()
        time.sleep(0.01)
    raise AssertionError("never refused")
