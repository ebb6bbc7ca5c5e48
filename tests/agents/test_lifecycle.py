"""Lifecycle: signed, chained stage transitions; no skipping; roles; code changes re-vet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signers.agents.errors import HistoryInvalid, PolicyError, RoleMissing, TransitionRefused
from signers.agents.lifecycle import (
    DEFAULT_LIFECYCLE,
    GENESIS,
    Approvers,
    Lifecycle,
    advance,
    register,
    transition_hash,
    verify_history,
)
from signers.audit import open_audit_log, verify_chain
from signers.errors import ConfigError, TokenError
from signers.jose import JWKS, parse_jws

from .conftest import CODE, NEW_CODE
from .walk import walk


def test_intake_to_active_with_signed_chained_transitions(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-1", CODE)
    assert history.stage == "ACTIVE"
    assert [t.to_stage for t in history.transitions] == [
        "INTAKE", "VETTING", "TESTING", "DEV_APPROVED", "PROD_APPROVED", "ACTIVE"]
    assert history.transitions[0].prev == GENESIS
    for before, after in zip(history.transitions, history.transitions[1:], strict=False):
        assert after.prev == before.hash == transition_hash(before.token)
    first = parse_jws(history.tokens[-1])
    assert first.header["typ"] == "stage-transition+jwt"
    claims = first.claims()
    assert {"sub", "from", "to", "approver", "reason", "iat", "code_hash", "prev"} <= set(claims)
    assert claims["approver"] == keys["release"].key_id


def test_history_verifies_offline_from_published_jwks(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-offline", CODE)
    published = json.loads(json.dumps(approvers.to_dict()))  # what an approvers file holds
    offline = Approvers.from_dict(published)
    again = verify_history(history.tokens, offline)
    assert again.stage == "ACTIVE" and again.head == history.head
    # and with only the JWKS (as JSON) plus a role table
    jwks = JWKS.from_dict(approvers.jwks.to_json())
    assert verify_history(history.tokens, Approvers(jwks, approvers.roles)).stage == "ACTIVE"


def test_skip_is_refused_and_nothing_signed(keys: dict[str, Any], approvers: Approvers) -> None:
    history = register(keys["registrar"], "agent-skip", CODE, approvers)
    with pytest.raises(TransitionRefused, match="INTAKE -> ACTIVE"):
        advance(keys["release"], history, "ACTIVE", approvers, reason="skip")
    with pytest.raises(TransitionRefused):
        advance(keys["approver"], history, "TESTING", approvers, reason="skip one")
    assert history.stage == "INTAKE" and len(history.transitions) == 1


def test_reordered_stage_refused(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-back", CODE, until="TESTING")
    with pytest.raises(TransitionRefused):
        advance(keys["approver"], history, "INTAKE", approvers, reason="back")


def test_role_per_transition(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-roles", CODE, until="DEV_APPROVED")
    with pytest.raises(RoleMissing, match="release-approver"):
        advance(keys["approver"], history, "PROD_APPROVED", approvers, reason="not mine")
    with pytest.raises(RoleMissing):
        advance(keys["outsider"], history, "PROD_APPROVED", approvers, reason="no role")
    with pytest.raises(RoleMissing, match="not among the approvers"):
        advance(keys["agent"], history, "PROD_APPROVED", approvers, reason="unknown key")
    assert isinstance(RoleMissing("x"), TokenError)


def test_roles_are_configurable(keys: dict[str, Any], approvers: Approvers) -> None:
    base = Lifecycle.default()
    strict = Lifecycle(transitions=base.transitions, roles={**base.roles, "TESTING": frozenset({"qa"})})
    history = register(keys["registrar"], "agent-qa", CODE, approvers, lifecycle=strict)
    history = advance(keys["approver"], history, "VETTING", approvers, reason="vet", lifecycle=strict)
    with pytest.raises(RoleMissing, match="qa"):
        advance(keys["approver"], history, "TESTING", approvers, reason="test", lifecycle=strict)
    qa = Approvers.of({"qa": [keys["outsider"]], "registrar": [keys["registrar"]], "approver": [keys["approver"]]})
    assert advance(keys["outsider"], history, "TESTING", qa, reason="test", lifecycle=strict).stage == "TESTING"


def test_code_hash_change_sends_back_to_vetting(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-code", CODE)
    with pytest.raises(TransitionRefused, match="VETTING"):
        advance(keys["release"], history, "SUSPENDED", approvers, reason="x", code_hash=NEW_CODE)
    revetted = advance(keys["approver"], history, "VETTING", approvers, reason="new build", code_hash=NEW_CODE)
    assert revetted.stage == "VETTING" and revetted.code_hash == NEW_CODE
    assert verify_history(revetted.tokens, approvers).stage == "VETTING"


def test_suspend_and_resume_only_to_previous_stage(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-suspend", CODE)
    suspended = advance(keys["approver"], history, "SUSPENDED", approvers, reason="incident")
    with pytest.raises(TransitionRefused):
        advance(keys["release"], suspended, "PROD_APPROVED", approvers, reason="resume lower?")
    resumed = advance(keys["release"], suspended, "ACTIVE", approvers, reason="resolved")
    assert resumed.stage == "ACTIVE"
    retired = advance(keys["release"], resumed, "RETIRED", approvers, reason="end")
    with pytest.raises(TransitionRefused, match="RETIRED"):
        advance(keys["approver"], retired, "VETTING", approvers, reason="again")


def _forge(token: str, **changes: Any) -> str:
    """Re-sign nothing: edit a token's payload, keeping its (now wrong) signature."""
    from signers.keys import b64url_encode

    head, _, sig = token.split(".")
    claims = parse_jws(token).claims()
    claims.update(changes)
    return f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}"


def test_forged_transition_refused(keys: dict[str, Any], approvers: Approvers) -> None:
    history = walk(keys, approvers, "agent-forged", CODE, until="TESTING")
    tokens = history.tokens
    tokens[-1] = _forge(tokens[-1], to="ACTIVE")
    with pytest.raises(HistoryInvalid, match="transition 3"):
        verify_history(tokens, approvers)


def test_reordered_or_truncated_history_refused(keys: dict[str, Any], approvers: Approvers) -> None:
    tokens = walk(keys, approvers, "agent-order", CODE).tokens
    swapped = [tokens[0], tokens[2], tokens[1], *tokens[3:]]
    with pytest.raises(HistoryInvalid, match="transition 2"):
        verify_history(swapped, approvers)
    with pytest.raises(HistoryInvalid, match="transition 1"):
        verify_history(tokens[1:], approvers)  # the start cut off
    dropped = [*tokens[:2], *tokens[3:]]
    with pytest.raises(HistoryInvalid, match="transition 3"):
        verify_history(dropped, approvers)
    other = walk(keys, approvers, "agent-other", CODE).tokens
    with pytest.raises(HistoryInvalid, match="another agent"):
        verify_history([*tokens[:3], other[3]], approvers)
    with pytest.raises(HistoryInvalid):
        verify_history([], approvers)


def test_history_signed_by_unlisted_role_refused(keys: dict[str, Any], approvers: Approvers) -> None:
    """A history whose PROD_APPROVED step is signed by a key that lost (or never had) the role."""
    history = walk(keys, approvers, "agent-demoted", CODE)
    demoted = Approvers(approvers.jwks, {**approvers.roles, keys["release"].key_id: frozenset({"approver"})})
    with pytest.raises(HistoryInvalid, match="transition 5") as info:
        verify_history(history.tokens, demoted)
    assert isinstance(info.value.__cause__, RoleMissing)
    unknown = Approvers(JWKS.of(keys["registrar"], keys["approver"]), {keys["registrar"].key_id: ["registrar"],
                                                                       keys["approver"].key_id: ["approver"]})
    with pytest.raises(HistoryInvalid, match="transition 5"):
        verify_history(history.tokens, unknown)


def test_transitions_appended_to_the_audit_chain(keys: dict[str, Any], approvers: Approvers, tmp_path: Any) -> None:
    log = open_audit_log(tmp_path / "audit.jsonl")
    history = walk(keys, approvers, "agent-audited", CODE, audit=log)
    records = list(log.records())
    assert [r.context["to"] for r in records] == [t.to_stage for t in history.transitions]
    assert all(r.context["event"] == "stage-transition" for r in records)
    assert verify_chain(log).ok


def test_bad_configuration_is_a_policy_error(keys: dict[str, Any], approvers: Approvers) -> None:
    with pytest.raises(PolicyError):
        Lifecycle(transitions=frozenset({("INTAKE", "BANANA")}))
    with pytest.raises(PolicyError):
        DEFAULT_LIFECYCLE.rank("BANANA")
    with pytest.raises(ConfigError):
        register(keys["registrar"], "agent-bad", "not-a-hash", approvers)
    with pytest.raises(ConfigError):
        register(keys["registrar"], "", CODE, approvers)
    assert DEFAULT_LIFECYCLE.at_least("ACTIVE", "PROD_APPROVED")
    assert not DEFAULT_LIFECYCLE.at_least("SUSPENDED", "INTAKE")
    assert not DEFAULT_LIFECYCLE.at_least("TESTING", "PROD_APPROVED")


def test_refusals_appear_in_rejection_events(keys: dict[str, Any], approvers: Approvers) -> None:
    from signers.agents.events import RejectionEvents

    seen: list[Any] = []
    events = RejectionEvents()
    events.subscribe(seen.append)
    history = register(keys["registrar"], "agent-events", CODE, approvers)
    with pytest.raises(TransitionRefused):
        advance(keys["release"], history, "ACTIVE", approvers, reason="skip", events=events)
    with pytest.raises(RoleMissing):
        advance(keys["outsider"], history, "VETTING", approvers, reason="role", events=events)
    tokens = walk(keys, approvers, "agent-events-2", CODE, until="TESTING").tokens
    with pytest.raises(HistoryInvalid):
        verify_history([tokens[0], tokens[2], tokens[1]], approvers, events=events)
    assert [(e.what, e.error) for e in seen] == [
        ("stage-transition", "TransitionRefused"), ("stage-transition", "RoleMissing"), ("history", "HistoryInvalid")]
    assert seen[0].who == "agent-events" and "ACTIVE" in seen[0].why
    for event in seen:  # no token material in an event
        assert not any(t.split(".")[2] in json.dumps(event.to_dict()) for t in tokens)


def test_lifecycle_from_configuration(keys: dict[str, Any], approvers: Approvers) -> None:
    custom = Lifecycle.from_dict({
        "stages": ["INTAKE", "REVIEW", "LIVE"], "reset_stage": "REVIEW",
        "roles": {"INTAKE": ["registrar"], "REVIEW": ["approver"], "LIVE": ["release-approver"]},
    })
    history = register(keys["registrar"], "agent-custom", CODE, approvers, lifecycle=custom)
    with pytest.raises(TransitionRefused):
        advance(keys["release"], history, "LIVE", approvers, reason="skip", lifecycle=custom)
    history = advance(keys["approver"], history, "REVIEW", approvers, reason="ok", lifecycle=custom)
    with pytest.raises(RoleMissing):
        advance(keys["approver"], history, "LIVE", approvers, reason="role", lifecycle=custom)
    history = advance(keys["release"], history, "LIVE", approvers, reason="ok", lifecycle=custom)
    assert custom.at_least("LIVE", "REVIEW") and verify_history(history.tokens, approvers, lifecycle=custom)
    with pytest.raises(HistoryInvalid):  # verified under the default lifecycle, LIVE is no stage at all
        verify_history(history.tokens, approvers)
    assert Lifecycle.from_dict({}) == DEFAULT_LIFECYCLE


@pytest.mark.parametrize("table", [
    {"stagez": ["A"]},
    {"stages": "INTAKE"},
    {"stages": ["A", "B"], "reset_stage": "C"},
    {"transitions": [["INTAKE", "NOWHERE"]]},
    {"transitions": [["INTAKE"]]},
    {"roles": {"BANANA": ["x"]}},
    {"roles": {"INTAKE": "x"}},
])
def test_bad_lifecycle_configuration(table: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        Lifecycle.from_dict(table)


def test_retired_approver_keeps_past_approvals_but_signs_nothing_new(keys: dict[str, Any],
                                                                     approvers: Approvers) -> None:
    import time

    history = walk(keys, approvers, "agent-retiree", CODE, until="DEV_APPROVED")
    retired = Approvers(approvers.jwks, approvers.roles, {keys["approver"].key_id: time.time() + 5})
    assert verify_history(history.tokens, retired).stage == "DEV_APPROVED"  # signed before the end
    later = advance(keys["approver"], history, "SUSPENDED", approvers, reason="x", now=time.time() + 60)
    with pytest.raises(HistoryInvalid, match="transition 5"):  # signed after the end
        verify_history(later.tokens, retired, now=time.time() + 60)
    with pytest.raises(RoleMissing, match="no longer holds"):
        advance(keys["approver"], history, "SUSPENDED", retired, reason="x", now=time.time() + 60)
    again = Approvers.from_dict(retired.to_dict())
    assert again.not_after == retired.not_after
    with pytest.raises(PolicyError):
        Approvers(approvers.jwks, {}, {keys["approver"].key_id: float("nan")})
    with pytest.raises(PolicyError, match="unknown field"):
        Approvers.from_dict({"approvers": [{"jwk": keys["approver"].public_key.to_jwk(), "roles": [], "until": 1}]})
