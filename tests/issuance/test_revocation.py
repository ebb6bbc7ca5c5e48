"""signers.revocation: the store contract (memory and SQLite), concurrency, and signed lists."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signers import TokenExpired, TokenInvalid, TokenRevoked
from signers.errors import ConfigError
from signers.jose import JWKS, sign_jwt, verify_jwt
from signers.keys import b64url_decode, b64url_encode
from signers.revocation import (
    REVOCATION_LIST_TYP,
    MemoryRevocationStore,
    Revocation,
    RevocationCheck,
    RevocationList,
    RevocationStore,
    SQLiteRevocationStore,
    issue_revocation_list,
)
from tests.fixtures.revocations import STORE_KINDS, revocation_store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from revocation_store(request.param, tmp_path)


def test_stores_satisfy_the_protocols(store: Any) -> None:
    assert isinstance(store, RevocationStore) and isinstance(store, RevocationCheck)


def test_revoke_get_list(store: Any) -> None:
    assert not store.is_revoked("a") and store.get("a") is None
    record = store.revoke("a", reason="key compromise", at=T0)
    assert record == Revocation("a", "jti", "key compromise", T0)
    assert store.is_revoked("a") and store.get("a") == record
    serial = store.revoke(format(0xDEADBEEF, "x"), kind="x509-serial", reason="superseded", at=T0 + timedelta(1))
    assert serial.id == "deadbeef"
    assert not store.is_revoked("deadbeef")  # kinds are separate namespaces
    assert store.is_revoked("deadbeef", kind="x509-serial")
    assert [r.id for r in store.list()] == ["a", "deadbeef"]
    assert list(store.list("x509-serial")) == [serial]
    assert list(store.list("nothing")) == []


def test_revoke_is_idempotent_and_keeps_the_first_record(store: Any) -> None:
    first = store.revoke("a", reason="first", at=T0)
    again = store.revoke("a", reason="second", at=T0 + timedelta(hours=1))
    assert again == first
    assert len(list(store.list())) == 1


def test_default_time_is_now_utc(store: Any) -> None:
    before = datetime.now(UTC)
    record = store.revoke("now")
    assert before - timedelta(seconds=1) <= record.revoked_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert record.revoked_at.tzinfo is not None and record.reason == "unspecified"


@pytest.mark.parametrize("bad", [{"id": ""}, {"id": 5}, {"kind": ""}, {"reason": ""}, {"id": "x" * 2000},
                                 {"at": datetime(2026, 1, 1)}])
def test_bad_input_is_a_config_error(store: Any, bad: dict[str, Any]) -> None:
    args = {"id": "x", "kind": "jti", "reason": "r", "at": None, **bad}
    with pytest.raises(ConfigError):
        store.revoke(args.pop("id"), **args)


def test_sqlite_is_durable_across_reopen_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with SQLiteRevocationStore(path) as store:
        store.revoke("kept", reason="r", at=T0)
    with SQLiteRevocationStore(path) as store:
        assert store.get("kept") == Revocation("kept", "jti", "r", T0)
        assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    closed = SQLiteRevocationStore(path)
    closed.close()
    closed.close()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        closed.is_revoked("kept")


def test_sqlite_revocation_survives_a_killed_process(tmp_path: Path) -> None:
    """A revoke that returned is on disk: the writing process dies without closing, the reader sees it."""
    path = tmp_path / "r.db"
    code = (
        "import os, sys\n"
        "from signers.revocation import SQLiteRevocationStore\n"
        f"s = SQLiteRevocationStore({str(path)!r})\n"
        "for i in range(50): s.revoke(f'id-{i}', reason='crash test')\n"
        "os._exit(0)\n"  # no close, no atexit, no flush: like a crash right after the last revoke
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with SQLiteRevocationStore(path) as store:
        assert sum(1 for _ in store.list()) == 50


def test_twenty_threads_revoking_and_verifying_lose_nothing(tmp_path: Path, keys: dict[str, Any]) -> None:
    """20 threads revoke tokens while checking them through verify_jwt; every revocation sticks."""
    signer = keys["ed25519"]
    jwks = JWKS.of(signer)
    now = int(time.time())
    tokens = [sign_jwt(signer, {"jti": f"tok-{i}", "exp": now + 600}) for i in range(400)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)
    with SQLiteRevocationStore(tmp_path / "concurrent.db") as store:

        def worker(n: int) -> None:
            try:
                barrier.wait(timeout=30)
                for i in range(n, len(tokens), 20):
                    try:
                        verify_jwt(tokens[i], jwks, revocations=store)
                    except TokenRevoked:  # only a neighbouring thread may have got there first
                        assert store.get(f"tok-{i}").reason == "neighbour"  # type: ignore[union-attr]
                    store.revoke(f"tok-{i}", reason=f"thread {n}")
                    store.revoke(f"tok-{(i + 1) % len(tokens)}", reason="neighbour")  # races with another thread
                    with pytest.raises(TokenRevoked, match="revoked"):
                        verify_jwt(tokens[i], jwks, revocations=store)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:3]
        assert {r.id for r in store.list()} == {f"tok-{i}" for i in range(400)}
    with SQLiteRevocationStore(tmp_path / "concurrent.db") as reopened:
        assert sum(1 for _ in reopened.list()) == 400


def test_two_processes_revoking_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    code = (
        "import sys\n"
        "from signers.revocation import SQLiteRevocationStore\n"
        f"s = SQLiteRevocationStore({str(path)!r})\n"
        "for i in range(100): s.revoke(f'{sys.argv[1]}-{i}'); s.revoke(f'shared-{i}', reason=sys.argv[1])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, name]) for name in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with SQLiteRevocationStore(path) as store:
        assert sum(1 for _ in store.list()) == 400
        assert store.get("shared-7") is not None and store.get("shared-7").reason in ("a", "b", "c")  # type: ignore[union-attr]


# -- verification with a store -----------------------------------------------------------


def test_verify_with_store_checks_jti(store: Any, keys: dict[str, Any]) -> None:
    signer = keys["p256"]
    exp = int(time.time()) + 60
    token = sign_jwt(signer, {"jti": "j-1", "exp": exp})
    assert verify_jwt(token, signer, revocations=store).claims["jti"] == "j-1"
    store.revoke("j-1", reason="logout")
    with pytest.raises(TokenRevoked, match=r"revoked \(logout"):
        verify_jwt(token, signer, revocations=store)
    with pytest.raises(TokenInvalid, match="no jti"):
        verify_jwt(sign_jwt(signer, {"exp": exp}), signer, revocations=store)


# -- signed revocation lists -------------------------------------------------------------


@pytest.fixture
def populated() -> MemoryRevocationStore:
    store = MemoryRevocationStore()
    store.revoke("jti-1", reason="logout", at=T0)
    store.revoke("ab12", kind="x509-serial", reason="keyCompromise", at=T0)
    return store


@pytest.mark.parametrize("name", ["ed25519", "mldsa65", "p256"])
def test_signed_list_round_trip(keys: dict[str, Any], populated: MemoryRevocationStore, name: str) -> None:
    signer = keys[name]
    token = issue_revocation_list(signer, populated, issuer="https://ca.test", ttl=600)
    loaded = RevocationList.load(token, JWKS.of(signer).to_dict(), issuer="https://ca.test")
    assert len(loaded) == 2 and loaded.issuer == "https://ca.test"
    assert loaded.is_revoked("jti-1") and loaded.get("ab12", kind="x509-serial").reason == "keyCompromise"  # type: ignore[union-attr]
    assert not loaded.is_revoked("ab12")
    assert isinstance(loaded, RevocationCheck)
    # An offline verifier checks tokens against the loaded list.
    tok = sign_jwt(signer, {"jti": "jti-1", "exp": int(time.time()) + 60})
    with pytest.raises(TokenRevoked):
        verify_jwt(tok, signer, revocations=loaded)


def test_signed_list_can_be_limited_to_kinds(keys: dict[str, Any], populated: MemoryRevocationStore) -> None:
    token = issue_revocation_list(keys["ed25519"], populated, issuer="i", kinds=["x509-serial"])
    loaded = RevocationList.load(token, keys["ed25519"], issuer="i")
    assert [r.id for r in loaded.list()] == ["ab12"]


def test_stale_list_is_refused(keys: dict[str, Any], populated: MemoryRevocationStore) -> None:
    signer = keys["ed25519"]
    token = issue_revocation_list(signer, populated, issuer="i", ttl=60, now=T0)
    with pytest.raises(TokenExpired, match="expired"):
        RevocationList.load(token, signer, issuer="i")
    assert RevocationList.load(token, signer, issuer="i", now=T0 + timedelta(seconds=30)).is_revoked("jti-1")


def test_tampered_list_is_refused(keys: dict[str, Any], populated: MemoryRevocationStore) -> None:
    """Dropping an entry from the signed list (to un-revoke a token) breaks the signature."""
    import json

    signer = keys["ed25519"]
    token = issue_revocation_list(signer, populated, issuer="i")
    head, body, sig = token.split(".")
    claims = json.loads(b64url_decode(body))
    claims["revoked"] = [e for e in claims["revoked"] if e["id"] != "jti-1"]
    claims["exp"] += 86400
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        RevocationList.load(f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}", signer, issuer="i")


def test_list_from_another_issuer_or_of_another_type_is_refused(
    keys: dict[str, Any], populated: MemoryRevocationStore
) -> None:
    signer = keys["ed25519"]
    token = issue_revocation_list(signer, populated, issuer="i")
    with pytest.raises(TokenInvalid, match="not in the trusted key set"):
        RevocationList.load(token, keys["agent"], issuer="i")
    with pytest.raises(TokenInvalid, match="issuer mismatch"):
        RevocationList.load(token, signer, issuer="someone-else")
    plain = sign_jwt(signer, {"iss": "i", "iat": int(time.time()), "exp": int(time.time()) + 60, "revoked": []})
    with pytest.raises(TokenInvalid, match="wrong token type"):
        RevocationList.load(plain, signer, issuer="i")
    bad_entries = sign_jwt(signer, {"iss": "i", "iat": int(time.time()), "exp": int(time.time()) + 60,
                                    "revoked": [{"id": "x"}]}, typ=REVOCATION_LIST_TYP)
    with pytest.raises(TokenInvalid, match="malformed"):
        RevocationList.load(bad_entries, signer, issuer="i")


def test_list_with_many_entries(keys: dict[str, Any]) -> None:
    store = MemoryRevocationStore()
    for i in range(5000):
        store.revoke(str(uuid.UUID(int=i)), at=T0)
    token = issue_revocation_list(keys["ed25519"], store, issuer="i")
    assert len(RevocationList.load(token, keys["ed25519"], issuer="i")) == 5000


def test_issue_list_validates_ttl(keys: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        issue_revocation_list(keys["ed25519"], [], issuer="i", ttl=0)
