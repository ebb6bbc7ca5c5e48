"""Agent governance on top of keyplane's tokens: lifecycle, trust, the gate, receipts, events.

Everything here is a library over `signers.jose`, `signers.passport`, `signers.revocation`
and `signers.audit`, so it works offline with any back end's key. The submodules:

- `lifecycle`: stages, signed and chained stage transitions, verifiable histories;
- `passports`: passports whose stage is backed by a history, with groups and trust;
- `revocation`: subject / group revocation (``kind="sub"`` / ``"grp"``) in any store;
- `trust`, `attestation`: the trust-score protocol, its default deterministic scorer, and
  signed build attestations (which code hashes count as attested);
- `gate`, `policy`, `possession`: ALLOW / DENY for a tool call, with every check reported;
- `receipts`: signed execution receipts forming a DAG;
- `events`, `autorevoke`: rejection events and the N-rejections auto-revoke policy;
- `actions`, `messages`: readable action claims and agent-to-agent messages;
- `asgi`, `mcp_gate`: adapters (the MCP one needs ``keyplane[agents]``), not imported here.
"""

from __future__ import annotations

from .actions import AgentAction, sign_agent_action, verify_agent_action
from .approvers import Approvers
from .attestation import attest_build, attested_builds
from .autorevoke import AutoRevoke
from .errors import (
    GateDenied,
    HistoryInvalid,
    PolicyError,
    ProofReplayed,
    ReceiptInvalid,
    ReceiptParentMissing,
    RoleMissing,
    StageNotBacked,
    SubjectRevoked,
    TransitionRefused,
)
from .events import RejectionEvent, RejectionEvents
from .gate import Decision, Gate
from .lifecycle import DEFAULT_LIFECYCLE, AgentHistory, Lifecycle, StageTransition, advance, register, verify_history
from .messages import AgentMessage, MessageVerifier, sign_message
from .passports import AgentPassport, issue_agent_passport, verify_agent_passport
from .policy import GatePolicy
from .possession import ChallengeBook, answer_challenge
from .receipts import Receipt, sign_execution, verify_dag, verify_output
from .revocation import reinstate, revoke_group, revoke_subject
from .trust import DefaultTrustScorer, TrustInputs, TrustScore, TrustScorer, compute_trust

__all__ = [
    "DEFAULT_LIFECYCLE",
    "AgentAction",
    "AgentHistory",
    "AgentMessage",
    "AgentPassport",
    "Approvers",
    "AutoRevoke",
    "ChallengeBook",
    "Decision",
    "DefaultTrustScorer",
    "Gate",
    "GateDenied",
    "GatePolicy",
    "HistoryInvalid",
    "Lifecycle",
    "MessageVerifier",
    "PolicyError",
    "ProofReplayed",
    "Receipt",
    "ReceiptInvalid",
    "ReceiptParentMissing",
    "RejectionEvent",
    "RejectionEvents",
    "RoleMissing",
    "StageNotBacked",
    "StageTransition",
    "SubjectRevoked",
    "TransitionRefused",
    "TrustInputs",
    "TrustScore",
    "TrustScorer",
    "advance",
    "answer_challenge",
    "attest_build",
    "attested_builds",
    "compute_trust",
    "issue_agent_passport",
    "register",
    "reinstate",
    "revoke_group",
    "revoke_subject",
    "sign_agent_action",
    "sign_execution",
    "sign_message",
    "verify_agent_action",
    "verify_agent_passport",
    "verify_dag",
    "verify_history",
    "verify_output",
]
