"""The gate: every check run and reported; policies from TOML; proof of possession; action binding."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from signers.agents.actions import sign_agent_action
from signers.agents.errors import GateDenied, PolicyError
from signers.agents.events import RejectionEvents
from signers.agents.gate import CHECKS, DECISION_TYP, Gate
from signers.agents.lifecycle import Approvers
from signers.agents.passports import issue_agent_passport
from signers.agents.policy import GatePolicy
from signers.agents.possession import ChallengeBook
from signers.agents.revocation import revoke_group, revoke_subject
from signers.agents.trust import TrustInputs, compute_trust
from signers.audit import open_audit_log, verify_chain
from signers.errors import TokenInvalid
from signers.jose import parse_jws
from signers.passport import issue_passport, prove_possession
from signers.revocation import MemoryRevocationStore

from .conftest import CODE, NEW_CODE
from .walk import walk

POLICY = f"""
[agents.gate]
issuer = "https://issuer.test"

[agents.gate.defaults]
min_stage = "ACTIVE"
min_trust = 50
proof = true

[agents.gate.servers.payments.tools.balance]
scopes = ["payments:read"]

[agents.gate.servers.payments.tools.transfer]
scopes = ["payments:write"]
min_trust = 80
action_token = true
action = "payments.transfer"
code_hashes = ["{CODE}"]

[agents.gate.servers.lab]
allow_unlisted = true
min_stage = "TESTING"
proof = false
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> GatePolicy:
    path = tmp_path_factory.mktemp("gate") / "keyplane.toml"
    path.write_text(POLICY, encoding="utf-8")
    return GatePolicy.load(path)


@pytest.fixture(scope="module")
def active(keys: dict[str, Any], approvers: Approvers) -> Any:
    return walk(keys, approvers, "agent-gate", CODE)


@pytest.fixture
def store() -> MemoryRevocationStore:
    return MemoryRevocationStore()


@pytest.fixture
def gate(policy: GatePolicy, keys: dict[str, Any], store: MemoryRevocationStore) -> Gate:
    return Gate(policy, keys["issuer"], revocations=store, challenges=ChallengeBook("payments"))


def _passport(keys: dict[str, Any], history: Any, *, score: int = 90, **kwargs: Any) -> str:
    kwargs.setdefault("scopes", ("payments:read", "payments:write"))
    kwargs.setdefault("iss", "https://issuer.test")
    return issue_agent_passport(keys["issuer"], history, name="gate agent", agent_key=keys["agent"].public_key,
                                trust_score=score, **kwargs)


def _proof(gate: Gate, keys: dict[str, Any], signer: str = "agent") -> str:
    return prove_possession(keys[signer], gate.challenge())


def test_allowed_call_passes_every_check(gate: Gate, keys: dict[str, Any], active: Any) -> None:
    token = _passport(keys, active, groups=["fleet"])
    params = {"to": "acct-2", "amount": 100}
    action = sign_agent_action(keys["issuer"], "agent-gate", "payments.transfer", params,
                               claims={"authorized_by": "alice"})
    decision = gate.decide(token, server="payments", tool="transfer", proof=_proof(gate, keys),
                           action_token=action, params=params)
    assert decision.allow, decision.reason
    assert decision.checks_passed == CHECKS and decision.checks_failed == ()
    assert (decision.agent, decision.stage, decision.trust_score) == ("agent-gate", "ACTIVE", 90)


def test_every_failure_is_reported_not_only_the_first(gate: Gate, keys: dict[str, Any],
                                                      approvers: Approvers) -> None:
    testing = walk(keys, approvers, "agent-weak", NEW_CODE, until="TESTING")
    token = _passport(keys, testing, score=40, scopes=("payments:read",), iss="https://other.test")
    decision = gate.decide(token, server="payments", tool="transfer", proof=_proof(gate, keys, "peer"))
    assert not decision.allow
    assert set(decision.checks_failed) == {"issuer", "stage", "trust", "scopes", "code-hash", "possession",
                                           "action-token"}
    assert set(decision.checks_passed) >= {"policy", "signature", "claims", "expiry", "token-revocation"}
    for name in decision.checks_failed:
        assert name in decision.reason


def test_bad_signature_fails_closed(gate: Gate, keys: dict[str, Any], active: Any) -> None:
    token = issue_agent_passport(keys["outsider"], active, name="x", agent_key=keys["agent"].public_key,
                                 trust_score=99)
    decision = gate.decide(token, server="payments", tool="balance")
    assert not decision.allow and decision.agent is None
    assert decision.checks_failed[0] == "signature" and "not evaluated" in decision.details["stage"]
    assert set(decision.checks_failed) == set(CHECKS) - {"policy"}
    assert gate.decide("not a token", server="payments", tool="balance").checks_failed[0] == "signature"


def test_unlisted_tool_and_server_denied(gate: Gate, keys: dict[str, Any], active: Any) -> None:
    token = _passport(keys, active)
    assert gate.decide(token, server="payments", tool="delete-all").checks_failed[0] == "policy"
    assert gate.decide(token, server="nowhere", tool="balance").checks_failed[0] == "policy"
    assert gate.decide(token, server="lab", tool="anything").allow  # allow_unlisted, no proof needed


def test_typed_in_passport_refused(gate: Gate, keys: dict[str, Any]) -> None:
    typed = issue_passport(keys["issuer"], sub="agent-gate", name="x", agent_key=keys["agent"].public_key,
                           code_hash=CODE, stage="ACTIVE", trust_score=99, iss="https://issuer.test")
    decision = gate.decide(typed, server="lab", tool="x")
    assert not decision.allow and "claims" in decision.checks_failed and "stage_head" in decision.reason


def test_replayed_proof_refused_and_reported(policy: GatePolicy, keys: dict[str, Any], active: Any,
                                             store: MemoryRevocationStore) -> None:
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    gate = Gate(policy, keys["issuer"], revocations=store, challenges=ChallengeBook("payments"), events=events)
    token = _passport(keys, active)
    proof = _proof(gate, keys)
    assert gate.decide(token, server="payments", tool="balance", proof=proof).allow
    replay = gate.decide(token, server="payments", tool="balance", proof=proof)
    assert replay.checks_failed == ("possession",) and "replayed" in replay.reason
    foreign = prove_possession(keys["agent"], ChallengeBook("payments").issue())  # not this gate's challenge
    assert "no challenge" in gate.decide(token, server="payments", tool="balance", proof=foreign).reason
    stale = ChallengeBook("payments", max_age=5)
    gate_stale = Gate(policy, keys["issuer"], challenges=stale)
    old = prove_possession(keys["agent"], stale.issue(now=time.time() - 100), now=time.time() - 100)
    assert not gate_stale.decide(token, server="payments", tool="balance", proof=old).allow
    assert [e.what for e in seen] == ["gate", "gate"] and seen[0].authenticated and seen[0].who == "agent-gate"
    assert "possession" in seen[0].context["checks_failed"]


def test_action_token_binding(gate: Gate, keys: dict[str, Any], active: Any) -> None:
    token = _passport(keys, active)
    params = {"to": "acct-2", "amount": 100}

    def decide(action: str, **kwargs: Any) -> Any:
        return gate.decide(token, server="payments", tool="transfer", proof=_proof(gate, keys), action_token=action,
                           **kwargs)

    good = sign_agent_action(keys["issuer"], "agent-gate", "payments.transfer", params)
    assert decide(good, params=params).allow
    assert "params mismatch" in decide(good, params={**params, "amount": 1_000_000}).reason
    wrong_action = sign_agent_action(keys["issuer"], "agent-gate", "payments.refund", params)
    assert "action mismatch" in decide(wrong_action, params=params).reason
    other_agent = sign_agent_action(keys["issuer"], "someone-else", "payments.transfer", params)
    assert "subject mismatch" in decide(other_agent, params=params).reason
    other_passport = sign_agent_action(keys["issuer"], "agent-gate", "payments.transfer", params, passport_jti="x")
    assert "another passport" in decide(other_passport, params=params).reason
    forged = sign_agent_action(keys["outsider"], "agent-gate", "payments.transfer", params)
    assert decide(forged, params=params).checks_failed == ("action-token",)
    missing = gate.decide(token, server="payments", tool="transfer", proof=_proof(gate, keys), params=params)
    assert missing.checks_failed == ("action-token",)


def test_group_and_agent_revocation(gate: Gate, keys: dict[str, Any], active: Any,
                                    store: MemoryRevocationStore) -> None:
    token = _passport(keys, active, groups=["fleet-a"], now=time.time() - 10)
    assert gate.decide(token, server="payments", tool="balance", proof=_proof(gate, keys)).allow
    revoke_group(store, "fleet-a", reason="compromised fleet")
    decision = gate.decide(token, server="payments", tool="balance", proof=_proof(gate, keys))
    assert decision.checks_failed == ("group-revocation",) and "compromised fleet" in decision.reason
    revoke_subject(store, "agent-gate")
    decision = gate.decide(token, server="payments", tool="balance", proof=_proof(gate, keys))
    assert decision.checks_failed == ("agent-revocation", "group-revocation")
    store.revoke(parse_jws(token).claims()["jti"])
    assert "token-revocation" in gate.decide(token, server="payments", tool="balance").checks_failed


def test_computed_trust_reported(gate: Gate, keys: dict[str, Any], active: Any) -> None:
    trust = compute_trust(TrustInputs.collect("ACTIVE", CODE, attested_builds=[CODE], receipts_verified=100))
    token = issue_agent_passport(keys["issuer"], active, name="x", agent_key=keys["agent"].public_key,
                                 trust=trust, scopes=["payments:read"], iss="https://issuer.test")
    decision = gate.decide(token, server="payments", tool="balance", proof=_proof(gate, keys))
    assert decision.allow and "computed by keyplane-default/1" in decision.details["trust"]


def test_history_backing_checked(policy: GatePolicy, keys: dict[str, Any], approvers: Approvers) -> None:
    from signers.agents.lifecycle import advance

    history = walk(keys, approvers, "agent-backed", CODE)
    current = {"agent-backed": history}
    gate = Gate(policy, keys["issuer"], histories=current.get)
    token = _passport(keys, history)
    assert gate.decide(token, server="lab", tool="t").allow
    current["agent-backed"] = advance(keys["approver"], history, "SUSPENDED", approvers, reason="incident")
    decision = gate.decide(token, server="lab", tool="t")
    assert decision.checks_failed == ("stage",) and "stage changed" in decision.reason


def test_decisions_go_to_the_audit_chain(policy: GatePolicy, keys: dict[str, Any], active: Any,
                                         tmp_path: Path) -> None:
    log = open_audit_log(tmp_path / "decisions.jsonl")
    gate = Gate(policy, keys["issuer"], audit=log, decision_signer=keys["gate"])
    token = _passport(keys, active)
    gate.decide(token, server="lab", tool="t")
    gate.decide(token, server="nowhere", tool="t")
    records = list(log.records())
    assert len(records) == 2 and records[0].key_id == keys["gate"].key_id
    assert verify_chain(log).ok
    with pytest.raises(PolicyError):
        Gate(policy, keys["issuer"], audit=log)
    assert DECISION_TYP == "gate-decision+jwt"


def test_require_raises_gate_denied(gate: Gate, keys: dict[str, Any], active: Any) -> None:
    with pytest.raises(GateDenied) as info:
        gate.require(_passport(keys, active), server="nowhere", tool="t")
    assert info.value.decision.checks_failed == ("policy", "possession")  # defaults apply to the unknown tool


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[agents.gate.defaults]\nmin_stage = "BANANA"\n', "BANANA"),
        ('[agents.gate.defaults]\nmin_trsut = 5\n', "unknown field"),
        ('[agents.gate]\nissuers = "x"\n', "unknown field"),
        ('[agents.gate.servers.s.tools.t]\nmin_trust = 101\n', "min_trust"),
        ('[agents.gate.servers.s.tools.t]\nscopes = "a"\n', "scopes"),
        ('[agents.gate.servers.s]\nallow_unlisted = "yes"\n', "allow_unlisted"),
        ('[agents.gate.servers.s.tools.t]\nproof = 1\n', "proof"),
        ('[agents.gate.servers.s.tools.t]\npayment = "yes"\n', "payment must be true or false"),
        ('[agents.gate.servers.s.tools.t]\npayment_params = { asset = "a", currency = "x" }\n', "unknown field"),
        ('[agents.gate.servers.s.tools.t]\npayment_params = { amount = "" }\n', "non-empty param names"),
        ('[agents.gate.servers.s.tools.t]\npayment_params = "amount"\n', "must be a table"),
        ("[keys.x]\nuri = 'file:/x'\n", "no [agents.gate]"),
        ("not toml [", "cannot read"),
        ('[agents.gate]\n[agents.gaet]\n', "unknown section"),
        ('[agents.gate]\n[agents.lifecycle]\nstages = "x"\n', "stages"),
    ],
)
def test_bad_policy_is_a_policy_error(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "keyplane.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(message)):
        GatePolicy.load(path)


def test_bad_policy_reported_to_events(tmp_path: Path) -> None:
    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    path = tmp_path / "keyplane.toml"
    path.write_text('[agents.gate.servers.s.tools.t]\nmin_stage = "BANANA"\n', encoding="utf-8")
    with pytest.raises(PolicyError):
        GatePolicy.load(path, events=events)
    assert seen[0].what == "policy" and seen[0].error == "PolicyError" and "BANANA" in seen[0].why


def test_challenge_book_refuses_replay_with_a_typed_error(keys: dict[str, Any], active: Any) -> None:
    from signers.agents.errors import ProofReplayed
    from signers.errors import TokenReplayed
    from signers.passport import verify_passport

    book = ChallengeBook("payments")
    passport = verify_passport(_passport(keys, active), keys["issuer"])
    challenge = book.issue()
    proof = prove_possession(keys["agent"], challenge)
    wrong_key = prove_possession(keys["peer"], challenge)
    with pytest.raises(TokenInvalid):
        book.consume(wrong_key, passport)  # refused, and the challenge is NOT used up by it
    assert book.consume(proof, passport) == challenge
    with pytest.raises(ProofReplayed) as info:
        book.consume(proof, passport)
    assert isinstance(info.value, TokenReplayed)
    with pytest.raises(PolicyError):
        ChallengeBook("")


def test_policy_file_with_its_own_lifecycle(tmp_path: Path) -> None:
    path = tmp_path / "keyplane.toml"
    path.write_text('[agents.lifecycle]\nstages = ["NEW", "LIVE"]\nreset_stage = "NEW"\n'
                    '[agents.gate.defaults]\nmin_stage = "LIVE"\n', encoding="utf-8")
    policy = GatePolicy.load(path)
    assert policy.defaults.min_stage == "LIVE" and policy.lifecycle.stages == ("NEW", "LIVE")


def test_concurrent_replays_exactly_one_wins(keys: dict[str, Any], active: Any) -> None:
    import threading

    from signers.agents.errors import ProofReplayed
    from signers.passport import verify_passport

    book = ChallengeBook("payments")
    passport = verify_passport(_passport(keys, active), keys["issuer"])
    proof = prove_possession(keys["agent"], book.issue())
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        try:
            book.consume(proof, passport)
            result = "ok"
        except ProofReplayed:
            result = "replayed"
        except TokenInvalid:
            result = "unknown"  # would mean the nonce was forgotten between use and record
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


def test_gate_from_the_policy_alone(tmp_path: Path, keys: dict[str, Any], active: Any) -> None:
    from signers.jose import JWKS

    JWKS.of(keys["issuer"]).write(tmp_path / "issuer-jwks.json")
    path = tmp_path / "keyplane.toml"
    path.write_text('[agents.gate]\njwks = "issuer-jwks.json"\n[agents.gate.servers.lab]\nallow_unlisted = true\n',
                    encoding="utf-8")
    gate = Gate(GatePolicy.load(path))
    assert gate.decide(_passport(keys, active), server="lab", tool="t").allow
    (tmp_path / "missing.toml").write_text('[agents.gate]\njwks = "nope.json"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="jwks"):
        GatePolicy.load(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="issuer's keys"):
        Gate(GatePolicy.from_dict({}))


class SharedReplayCache:
    """The replay-cache protocol over one dict: what a fleet's SQLite or Redis cache provides."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def consume(self, key: str, expires_at: float) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = expires_at
        return True


def test_signed_challenges_across_a_fleet(keys: dict[str, Any], active: Any) -> None:
    from signers.agents.errors import ProofReplayed
    from signers.passport import verify_passport

    shared = SharedReplayCache()
    node_a = ChallengeBook("payments", signer=keys["gate"], replay_cache=shared)
    node_b = ChallengeBook("payments", signer=keys["gate"], replay_cache=shared)  # another process, same key
    passport = verify_passport(_passport(keys, active), keys["issuer"])
    proof = prove_possession(keys["agent"], node_a.issue())
    assert node_b.consume(proof, passport).audience == "payments"  # b knows a's challenge: it is signed
    with pytest.raises(ProofReplayed):
        node_a.consume(proof, passport)  # the fleet-wide cache refuses the replay
    with pytest.raises(ProofReplayed):
        node_b.consume(proof, passport)  # and b's own memory too
    stranger = ChallengeBook("payments", signer=keys["outsider"])
    forged = prove_possession(keys["agent"], stranger.issue())
    with pytest.raises(TokenInvalid, match="no challenge this verifier issued"):
        node_a.consume(forged, passport)
    other_audience = ChallengeBook("other", signer=keys["gate"])
    with pytest.raises(TokenInvalid):
        node_a.consume(prove_possession(keys["agent"], other_audience.issue()), passport)
    old = prove_possession(keys["agent"], node_a.issue(now=time.time() - 1000), now=time.time() - 1000, ttl=5000)
    with pytest.raises(TokenInvalid):
        node_a.consume(old, passport)
    with pytest.raises(PolicyError):
        ChallengeBook("payments", replay_cache=object())  # type: ignore[arg-type]


def test_answer_challenge_checks_what_the_server_sent(keys: dict[str, Any]) -> None:
    from signers.agents.possession import answer_challenge

    challenge = ChallengeBook("payments").issue()
    assert parse_jws(answer_challenge(keys["agent"], challenge.to_dict())).claims()["nonce"] == challenge.nonce
    for bad in ({"nonce": 1, "aud": "a", "iat": 1}, {"nonce": "n", "aud": "a", "iat": True}, "junk", {}):
        with pytest.raises(PolicyError):
            answer_challenge(keys["agent"], bad)
