"""One contract suite, run against every state engine: SQLite, PostgreSQL and Redis.

The revocation contract of signers.revocation (idempotent revoke returning the first record,
durable once returned, never removed), the replay cache (an id is consumed exactly once
until it expires) and the audit log (one linear chain that verifies).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from signers.audit import verify_chain
from signers.errors import ConfigError
from signers.stores import StateBackend, open_state


def _id() -> str:
    return f"jti-{uuid.uuid4().hex}"


def test_revoke_is_idempotent_and_returns_the_first_record(state: StateBackend) -> None:
    store = state.revocations()
    jti = _id()
    first = store.revoke(jti, reason="key compromise", at=datetime(2026, 1, 2, tzinfo=UTC))
    again = store.revoke(jti, reason="superseded")
    assert again == first and again.reason == "key compromise"
    assert store.is_revoked(jti) and store.get(jti) == first
    assert not store.is_revoked(jti, kind="sub") and store.get(_id()) is None


def test_kinds_are_separate_and_listed(state: StateBackend) -> None:
    store = state.revocations()
    name = _id()
    store.revoke(name, kind="sub")
    store.revoke(name, kind="grp", reason="group retired")
    kinds = {r.kind for r in store.list() if r.id == name}
    assert kinds == {"sub", "grp"}
    assert all(r.kind == "grp" for r in store.list(kind="grp"))


def test_a_returned_revocation_is_visible_to_a_second_connection(state: StateBackend) -> None:
    jti = _id()
    state.revocations().revoke(jti)
    with open_state(state.uri if "prefix" not in state.uri else _with_secret_free_uri(state)) as other:
        assert other.revocations().is_revoked(jti)


def _with_secret_free_uri(state: StateBackend) -> str:
    return state.uri  # URIs keep the prefix; secrets never appear in them


def test_concurrent_revokes_of_one_id_keep_one_record(state: StateBackend) -> None:
    store = state.revocations()
    jti = _id()
    with ThreadPoolExecutor(8) as pool:
        records = list(pool.map(lambda i: store.revoke(jti, reason=f"r{i}"), range(32)))
    assert len(set(records)) == 1


@pytest.mark.parametrize("bad", ["", "x" * 1025])
def test_bad_ids_are_typed_errors(state: StateBackend, bad: str) -> None:
    with pytest.raises(ConfigError):
        state.revocations().revoke(bad)


def test_a_nul_byte_is_a_typed_error_not_a_driver_crash(shared_state: StateBackend) -> None:
    with pytest.raises(ConfigError):
        shared_state.revocations().revoke("nul\x00byte")


def test_naive_revocation_time_is_refused(state: StateBackend) -> None:
    with pytest.raises(ConfigError, match="timezone"):
        state.revocations().revoke(_id(), at=datetime(2026, 1, 1))


def test_changes_arrive_in_order(shared_state: StateBackend) -> None:
    store = shared_state.revocations()
    cursor = store.head()
    ids = [_id() for _ in range(5)]
    for jti in ids:
        store.revoke(jti)
    assert [r.id for _, r in store.changes_since(cursor)] == ids


def test_replay_cache_consumes_once(shared_state: StateBackend) -> None:
    cache = shared_state.replay_cache()
    nonce = _id()
    later = time.time() + 60
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: cache.consume(nonce, expires_at=later), range(16)))
    assert outcomes.count(True) == 1
    assert cache.consume(_id(), expires_at=later)


def test_an_expired_id_may_be_used_again(shared_state: StateBackend) -> None:
    cache = shared_state.replay_cache()
    nonce = _id()
    assert cache.consume(nonce, expires_at=time.time() - 1)  # already expired when stored
    assert cache.consume(nonce, expires_at=time.time() + 60)
    assert not cache.consume(nonce, expires_at=time.time() + 60)


def test_sqlite_has_no_shared_replay_cache(tmp_path: object) -> None:
    with open_state(f"sqlite://{tmp_path}/s.db") as state, pytest.raises(ConfigError):
        state.replay_cache()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_audit_log_is_one_chain(request: pytest.FixtureRequest, tmp_path: object, engine: str) -> None:
    from .conftest import state_uri

    with open_state(state_uri(request, engine, tmp_path)) as state:  # type: ignore[arg-type]
        log = state.audit_log(f"chain-{uuid.uuid4().hex[:8]}")
        for i in range(20):
            log.append({"ts": "2026-12-01T00:00:00Z", "kind": "signature", "key_id": "k", "alg": "Ed25519",
                        "message_sha256": f"{i:064x}", "context": {"i": i}})
        records = list(log.records())
        assert [r.seq for r in records] == list(range(1, 21))
        assert verify_chain(log).ok


def test_redis_holds_no_audit_log(redis_uri: str) -> None:
    with open_state(redis_uri) as state, pytest.raises(ConfigError, match="postgresql"):
        state.audit_log()


def test_features_say_what_durable_means(state: StateBackend) -> None:
    features = state.features
    assert features.engine in ("sqlite", "postgresql", "redis") and features.durability
    if features.engine == "redis":
        assert "AOF" in features.durability or "unknown" in features.durability


def test_revocation_entries_expire_nothing(shared_state: StateBackend) -> None:
    store = shared_state.revocations()
    jti = _id()
    store.revoke(jti, at=datetime.now(UTC) - timedelta(days=400))
    assert store.is_revoked(jti)  # never removed, however old
