"""The agent-governance part of ``keyplane demo``: lifecycle, gate, receipts, auto-revoke.

Runs after the issuance part, with keys in the demo's file store: three approvers walk an
agent from INTAKE to ACTIVE with signed stage gates (a skip is refused), the history is
verified offline from the approvers' JWKS, the agent's passport passes the gate for a tool
until its group is revoked, a tampered execution receipt is told apart from a good one, and
five refused calls revoke the agent by themselves. Pure library: no extra is needed.
"""

from __future__ import annotations

import json
from typing import Any

from ..agents import (
    Approvers,
    AutoRevoke,
    Gate,
    GatePolicy,
    ReceiptParentMissing,
    RejectionEvents,
    SubjectRevoked,
    TransitionRefused,
    advance,
    issue_agent_passport,
    register,
    revoke_group,
    sign_execution,
    verify_agent_passport,
    verify_dag,
    verify_history,
    verify_output,
)
from ..algorithms import KeySpec
from ..revocation import MemoryRevocationStore
from ..tokens.passport import code_hash_of

__all__ = ["run"]

_WALK = (("VETTING", "approver"), ("TESTING", "approver"), ("DEV_APPROVED", "approver"),
         ("PROD_APPROVED", "release"), ("ACTIVE", "release"))


def run(ctx: Any) -> None:
    """Add the governance steps to `ctx` (a `signers.commands.demo.DemoContext`); raises KeyplaneError on failure."""
    keys = {name: ctx.store.create_key(f"demo-{name}", KeySpec.ED25519)
            for name in ("registrar", "approver", "release", "bot")}
    issuer = ctx.signers["demo-mldsa65"]
    approvers = Approvers.of({"registrar": [keys["registrar"]], "approver": [keys["approver"]],
                              "release-approver": [keys["release"]]})
    history = register(keys["registrar"], "demo-bot", code_hash_of(b"demo-bot v1"), approvers)
    try:
        advance(keys["release"], history, "ACTIVE", approvers, reason="skip the gates")
        raise AssertionError("INTAKE -> ACTIVE was accepted")
    except TransitionRefused as refused:
        ctx.step("agent demo-bot registered (INTAKE); a skip to ACTIVE is refused", refused=str(refused)[:90])
    for stage, who in _WALK:
        history = advance(keys[who], history, stage, approvers, reason="demo")
    offline = Approvers.from_dict(json.loads(json.dumps(approvers.to_dict())))  # what a verifier is handed
    ctx.step("demo-bot walked INTAKE -> ACTIVE with 6 signed stage gates; history verified offline",
             stage=verify_history(history.tokens, offline).stage, transitions=len(history.tokens))

    store = MemoryRevocationStore()
    gate = Gate(GatePolicy.from_dict({"servers": {"tools": {"tools": {"lookup": {"min_stage": "ACTIVE",
                                                                                  "min_trust": 50}}}}}),
                issuer, revocations=store)
    passport = issue_agent_passport(issuer, history, name="Demo bot", agent_key=keys["bot"].public_key,
                                    trust_score=80, groups=["demo-fleet"])
    allowed = gate.decide(passport, server="tools", tool="lookup")
    revoke_group(store, "demo-fleet", reason="fleet compromised")
    denied = gate.decide(passport, server="tools", tool="lookup")
    if not allowed.allow or denied.allow:
        raise AssertionError("the gate did not allow, then deny after the group revocation")
    ctx.step("gate: tools/lookup ALLOWED; after revoking group demo-fleet: DENIED",
             checks_passed=len(allowed.checks_passed), checks_failed=", ".join(denied.checks_failed))

    first = sign_execution(keys["bot"], {"q": "balance"}, {"balance": 10}, agent="demo-bot")
    second = sign_execution(keys["bot"], {"balance": 10}, {"report": "ok"}, parents=[first])
    good, bad = verify_output(first, {"balance": 10}, keys["bot"]), verify_output(first, {"balance": 10_000}, keys["bot"])
    try:
        verify_dag([second], keys["bot"])
        raise AssertionError("a receipt DAG with its parent removed verified")
    except ReceiptParentMissing:
        pass
    ctx.step("execution receipts: the real output is VALID, an edited one TAMPERED, a DAG missing a parent refused",
             valid=good.status, tampered=f"{bad.status} ({', '.join(bad.differed)})")

    strict = MemoryRevocationStore()
    events = RejectionEvents()
    AutoRevoke(strict, threshold=5, window=60).attach(events)
    picky = Gate(GatePolicy.from_dict({"servers": {"pay": {"tools": {"send": {"min_trust": 90}}}}}), issuer,
                 revocations=strict, events=events)
    weak = issue_agent_passport(issuer, history, name="Demo bot", agent_key=keys["bot"].public_key, trust_score=40)
    for _ in range(5):
        picky.decide(weak, server="pay", tool="send")
    fresh = issue_agent_passport(issuer, history, name="Demo bot", agent_key=keys["bot"].public_key, trust_score=95)
    try:
        verify_agent_passport(fresh, issuer, revocations=strict)
        raise AssertionError("the auto-revoked agent's next passport verified")
    except SubjectRevoked as revoked:
        ctx.step("five refused pay/send calls auto-revoked demo-bot; its next passport is refused",
                 refused=str(revoked)[:90])
