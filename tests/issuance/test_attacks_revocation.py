"""Revocation that failed open (hardening issue, items 3 and 12; first-hour issue, item 6).

Bit flips in the SQLite store once answered "not revoked"; an older signed list, a list
past its exp and a list of another issuer were accepted; a whole token stored as an id
matched nothing. Each attack here passed before the fix.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signers.errors import ConfigError, StateCorrupt, TokenExpired, TokenInvalid, TokenRevoked
from signers.jose import JWKS, sign_jwt, verify_jwt
from signers.revocation import (
    ListNumberTracker,
    MemoryRevocationStore,
    RevocationList,
    SQLiteRevocationStore,
    issue_revocation_list,
    revoke_token,
)

IDS = [f"jti-{i:03d}-{'x' * 20}" for i in range(40)]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rev") / "revocations.db"
    with SQLiteRevocationStore(path) as store:
        for jti in IDS:
            store.revoke(jti, reason="compromised")
    return path


def _answers(path: Path) -> list[bool] | str:
    """What a verifier learns from a damaged copy: every id's answer, or the typed refusal."""
    try:
        with SQLiteRevocationStore(path, timeout=1) as store:
            return [store.is_revoked(jti) for jti in IDS]
    except StateCorrupt:
        return "StateCorrupt"


def test_bit_flips_never_turn_revoked_into_not_revoked(pristine: Path, tmp_path: Path) -> None:
    size = pristine.stat().st_size
    rng = random.Random(1405)  # fixed: the same 60 flips every run
    refused = 0
    for trial in range(60):
        copy = tmp_path / f"flip-{trial}.db"
        shutil.copyfile(pristine, copy)
        data = bytearray(copy.read_bytes())
        offset = rng.randrange(100, size)  # past the 100-byte file header: the pages themselves
        data[offset] ^= 1 << rng.randrange(8)
        copy.write_bytes(bytes(data))
        answers = _answers(copy)
        if answers == "StateCorrupt":
            refused += 1
        else:
            assert answers == [True] * len(IDS), f"trial {trial}: a flipped bit at {offset} made an id 'not revoked'"
    assert refused > 0  # the flips did hit records, and those were refused


def test_a_file_that_is_not_a_database_is_state_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "revocations.db"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(StateCorrupt) as caught:
        SQLiteRevocationStore(path)
    assert caught.value.retryable is False


def test_an_edited_row_is_state_corrupt(pristine: Path, tmp_path: Path) -> None:
    import sqlite3

    copy = tmp_path / "edited.db"
    shutil.copyfile(pristine, copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE revocations SET id = 'jti-000-renamed' WHERE id = ?", (IDS[0],))
    with pytest.raises(StateCorrupt, match="checksum"):
        SQLiteRevocationStore(copy)


# -- signed lists ---------------------------------------------------------------------------


def test_an_older_list_lacking_a_newer_revocation_is_refused(keys: dict[str, Any]) -> None:
    signer, store = keys["ed25519"], MemoryRevocationStore()
    store.revoke("first")
    old = issue_revocation_list(signer, store, issuer="ca")
    store.revoke("second")
    new = issue_revocation_list(signer, store, issuer="ca")
    tracker = ListNumberTracker()
    assert RevocationList.load(new, signer, issuer="ca", tracker=tracker).is_revoked("second")
    with pytest.raises(TokenInvalid, match="older than list 2"):
        RevocationList.load(old, signer, issuer="ca", tracker=tracker)
    with pytest.raises(TokenInvalid, match="older than the required list 2"):
        RevocationList.load(old, signer, issuer="ca", min_number=2)
    assert RevocationList.load(old, signer, issuer="ca").number == 1


def test_list_numbers_are_shared_through_the_sqlite_store(keys: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "revocations.db"
    with SQLiteRevocationStore(path) as one, SQLiteRevocationStore(path) as two:
        numbers = [RevocationList.load(issue_revocation_list(keys["ed25519"], s, issuer="ca"), keys["ed25519"],
                                       issuer="ca").number for s in (one, two, one)]
    assert numbers == [1, 2, 3]
    with pytest.raises(ConfigError, match="number="):
        issue_revocation_list(keys["ed25519"], [], issuer="ca")


def test_a_list_is_refused_once_it_expires_even_after_loading(keys: dict[str, Any]) -> None:
    signer, store = keys["ed25519"], MemoryRevocationStore()
    store.revoke("gone")
    t0 = datetime.now(UTC).replace(microsecond=0)
    token = issue_revocation_list(signer, store, issuer="ca", ttl=60, now=t0)
    clock = [t0.timestamp() + 1]
    loaded = RevocationList.load(token, signer, issuer="ca", now=t0, clock=lambda: clock[0])
    assert loaded.is_revoked("gone")
    clock[0] = t0.timestamp() + 60 + 31  # past exp + the default 30 s leeway
    with pytest.raises(TokenExpired):
        loaded.is_revoked("gone")
    passport_like = sign_jwt(signer, {"jti": "other", "exp": int(clock[0]) + 600})
    with pytest.raises(TokenExpired):  # a stale list fails the token check closed, it does not pass it
        verify_jwt(passport_like, signer, revocations=loaded, now=clock[0])


def test_load_requires_and_pins_the_issuer(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    evil = issue_revocation_list(signer, [], issuer="evil", number=99)
    with pytest.raises(ConfigError, match="issuer="):
        RevocationList.load(evil, JWKS.of(signer, keys["p256"]))
    with pytest.raises(TokenInvalid, match="issuer mismatch"):
        RevocationList.load(evil, JWKS.of(signer, keys["p256"]), issuer="ca")


# -- revoking a whole token instead of its jti -----------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_whole_token_is_never_stored_as_an_id(kind: str, keys: dict[str, Any], tmp_path: Path) -> None:
    signer = keys["ed25519"]
    store: Any = MemoryRevocationStore() if kind == "memory" else SQLiteRevocationStore(tmp_path / "r.db")
    token = sign_jwt(signer, {"jti": "the-jti", "exp": 4_000_000_000})
    with pytest.raises(ConfigError, match="pass the token's jti"):
        store.revoke(token)
    assert list(store.list()) == []
    record = revoke_token(store, token, signer, reason="leaked")
    assert record.id == "the-jti" and record.reason == "leaked"
    with pytest.raises(TokenRevoked):
        verify_jwt(token, signer, revocations=store)
    foreign = sign_jwt(keys["p256"], {"jti": "foreign", "exp": 4_000_000_000})
    with pytest.raises(TokenInvalid):
        revoke_token(store, foreign, signer)  # not one of ours: nothing stored
    no_jti = sign_jwt(signer, {"exp": 4_000_000_000})
    with pytest.raises(TokenInvalid, match="no jti"):
        revoke_token(store, no_jti, signer)
    assert [r.id for r in store.list()] == ["the-jti"]
    store.close()


def test_a_dotted_id_that_is_not_a_token_is_still_an_id() -> None:
    store = MemoryRevocationStore()
    assert store.revoke("a.b.c").id == "a.b.c"  # not a decodable JWS: an ordinary id
    assert store.revoke("urn:uuid:1.2.3").id == "urn:uuid:1.2.3"


def test_revocation_times_use_the_clock_rules() -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        MemoryRevocationStore().revoke("x", at=datetime(2026, 1, 1))
    assert MemoryRevocationStore().revoke("x", at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(0)).id == "x"
