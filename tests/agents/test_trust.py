"""The default trust scorer: deterministic, documented, table-tested."""

from __future__ import annotations

from typing import Any

import pytest

from signers.agents.errors import PolicyError
from signers.agents.revocation import revoke_subject
from signers.agents.trust import DefaultTrustScorer, TrustInputs, TrustScorer, compute_trust, revoked_members
from signers.revocation import MemoryRevocationStore

# (inputs, expected score): each row exercises one term of the formula
TABLE = [
    (TrustInputs("INTAKE"), 0),
    (TrustInputs("VETTING"), 10),
    (TrustInputs("ACTIVE"), 50),
    (TrustInputs("ACTIVE", code_attested=True), 70),
    (TrustInputs("ACTIVE", code_attested=True, receipts_verified=24), 84),  # +4, +10 clean
    (TrustInputs("ACTIVE", code_attested=True, receipts_verified=500), 100),  # +20 cap, +10 clean
    (TrustInputs("ACTIVE", code_attested=True, receipts_verified=100, receipts_failed=1), 80),
    (TrustInputs("ACTIVE", receipts_failed=9), 10),  # -40 cap
    (TrustInputs("PROD_APPROVED", code_attested=True, rejections=3), 45),
    (TrustInputs("PROD_APPROVED", rejections=50), 10),  # -30 cap
    (TrustInputs("ACTIVE", code_attested=True, revoked_group_members=1), 60),
    (TrustInputs("TESTING", revoked_group_members=5), 0),  # clamped at 0
    (TrustInputs("SUSPENDED", code_attested=True, receipts_verified=100), 0),
    (TrustInputs("banana", code_attested=True), 0),
]


@pytest.mark.parametrize(("inputs", "expected"), TABLE)
def test_default_scorer_table(inputs: TrustInputs, expected: int) -> None:
    assert DefaultTrustScorer().score(inputs) == expected
    first, second = compute_trust(inputs, now=1), compute_trust(inputs, now=1)
    assert first == second and first.score == expected and first.inputs == inputs.digest()


def test_digest_names_every_input() -> None:
    digests = {row.digest() for row, _ in TABLE}
    assert len(digests) == len(TABLE)
    assert TrustInputs("ACTIVE").digest() == TrustInputs("ACTIVE").digest()


def test_custom_scorer_protocol_and_range_check() -> None:
    class Flat:
        version = "flat/1"

        def score(self, inputs: TrustInputs) -> int:
            return 42

    class Broken:
        version = "broken/1"

        def score(self, inputs: TrustInputs) -> int:
            return 101

    assert isinstance(Flat(), TrustScorer)
    assert compute_trust(TrustInputs("INTAKE"), Flat()).scorer == "flat/1"
    with pytest.raises(PolicyError):
        compute_trust(TrustInputs("INTAKE"), Broken())
    with pytest.raises(PolicyError):
        TrustInputs("ACTIVE", rejections=-1)


def test_revoked_group_member_lowers_the_others() -> None:
    store = MemoryRevocationStore()
    members = ["a", "b", "c"]
    assert revoked_members(store, members, exclude="a") == 0
    revoke_subject(store, "b")
    assert revoked_members(store, members, exclude="a") == 1
    before = DefaultTrustScorer().score(TrustInputs("ACTIVE", True, 50))
    after = DefaultTrustScorer().score(TrustInputs("ACTIVE", True, 50, revoked_group_members=1))
    assert after < before


def test_inputs_from_evidence(keys: dict[str, Any]) -> None:
    from signers.agents.receipts import sign_execution, verify_output
    from signers.passport import code_hash_of

    code = code_hash_of(b"x")
    receipts = [sign_execution(keys["agent"], i, i * 2) for i in range(10)]
    checks = [verify_output(r, i * 2, keys["agent"]) for i, r in enumerate(receipts)]
    checks.append(verify_output(receipts[0], "tampered", keys["agent"]))
    store = MemoryRevocationStore()
    revoke_subject(store, "peer-1")
    inputs = TrustInputs.from_evidence("me", "ACTIVE", code, attested_builds=[code], receipt_checks=checks,
                                       rejections=1, revocations=store, group_members=["me", "peer-1", "peer-2"])
    assert inputs == TrustInputs("ACTIVE", True, 10, 1, 1, 1)
    assert compute_trust(inputs).score == 50 + 20 + 2 - 10 - 5 - 10


def test_attested_builds_feed_the_score(keys: dict[str, Any]) -> None:
    from signers.agents.attestation import attest_build, attested_builds
    from signers.errors import TokenExpired, TokenInvalid
    from signers.passport import code_hash_of

    good, other = code_hash_of(b"v1"), code_hash_of(b"v2")
    ci = attest_build(keys["gate"], good, builder="ci", revision="abc123")
    forged = attest_build(keys["outsider"], other, builder="ci")
    old = attest_build(keys["gate"], other, builder="ci", ttl=10, now=1_000_000)
    assert attested_builds([ci], keys["gate"], builder="ci") == {good}
    with pytest.raises(TokenInvalid):
        attested_builds([ci, forged], keys["gate"])
    with pytest.raises(TokenExpired):
        attested_builds([old], keys["gate"])
    with pytest.raises(TokenInvalid):
        attested_builds([ci], keys["gate"], builder="someone-else")
    assert attested_builds([ci, forged, old, "junk"], keys["gate"], skip_invalid=True) == {good}
    builds = attested_builds([ci], keys["gate"])
    assert compute_trust(TrustInputs.collect("ACTIVE", good, attested_builds=builds)).score == 70
    assert compute_trust(TrustInputs.collect("ACTIVE", other, attested_builds=builds)).score == 50
    with pytest.raises(PolicyError):
        attest_build(keys["gate"], "md5:x", builder="ci")
