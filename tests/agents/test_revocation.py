"""Subject / group revocation with revoked_after semantics, in every store kind and a signed list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from signers.agents.errors import PolicyError, SubjectRevoked
from signers.agents.revocation import (
    GROUP,
    SUBJECT,
    check_subject,
    reinstate,
    revoke_group,
    revoke_subject,
    subject_revocation,
)
from signers.revocation import RevocationList, issue_revocation_list
from tests.fixtures.revocations import STORE_KINDS, revocation_store


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(1_700_000_000 + seconds, UTC)


def t(seconds: int) -> float:
    return at(seconds).timestamp()


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from revocation_store(request.param, tmp_path)


def test_cycles_of_revoke_and_reinstate(store: Any) -> None:
    assert subject_revocation(store, SUBJECT, "a", t(0)) is None
    first = revoke_subject(store, "a", reason="incident", at=at(100))
    assert revoke_subject(store, "a", reason="again", at=at(150)) == first  # idempotent while revoked
    for issued in (0, 100, 200):  # before, at, after the revocation: all refused until reinstated
        assert subject_revocation(store, SUBJECT, "a", t(issued)) is not None
    reinstate(store, SUBJECT, "a", at=at(300))
    assert subject_revocation(store, SUBJECT, "a", t(300)) is not None  # issued up to the reinstatement
    assert subject_revocation(store, SUBJECT, "a", t(301)) is None
    revoke_subject(store, "a", reason="second incident", at=at(400))
    assert subject_revocation(store, SUBJECT, "a", t(350)).reason == "second incident"
    reinstate(store, SUBJECT, "a", at=at(500))
    assert subject_revocation(store, SUBJECT, "a", t(501)) is None
    assert {r.id for r in store.list(SUBJECT)} == {"a", "a#2"}
    assert {r.id for r in store.list("sub-reinstated")} == {"a", "a#2"}


def test_groups_and_subjects_are_separate(store: Any) -> None:
    revoke_group(store, "fleet", at=at(10))
    with pytest.raises(SubjectRevoked, match="group 'fleet'"):
        check_subject(store, "a", ["other", "fleet"], t(5))
    check_subject(store, "a", ["other"], t(5))
    assert subject_revocation(store, SUBJECT, "fleet", t(5)) is None
    assert subject_revocation(store, GROUP, "fleet", t(5)) is not None


def test_signed_list_carries_them(store: Any, keys: dict[str, Any]) -> None:
    revoke_subject(store, "a", at=at(10))
    reinstate(store, SUBJECT, "a", at=at(20))
    revoke_group(store, "g", at=at(30))
    token = issue_revocation_list(keys["issuer"], store, issuer="i", now=at(40))
    offline = RevocationList.load(token, keys["issuer"], issuer="i", now=t(41))
    assert subject_revocation(offline, SUBJECT, "a", t(15)) is not None
    assert subject_revocation(offline, SUBJECT, "a", t(25)) is None
    assert subject_revocation(offline, GROUP, "g", t(25)) is not None


def test_bad_input(store: Any) -> None:
    for name in ("", "a#b"):
        with pytest.raises(PolicyError):
            revoke_subject(store, name)
    with pytest.raises(PolicyError, match="not revoked"):
        reinstate(store, SUBJECT, "never")
    with pytest.raises(PolicyError):
        reinstate(store, "jti", "x")
    revoke_subject(store, "b", at=at(100))
    with pytest.raises(PolicyError, match="before the revocation"):
        reinstate(store, SUBJECT, "b", at=at(50))
    assert store.get("b", kind="sub-reinstated") is None  # nothing changed
