"""The typed refusals of agent governance, each a child of the shared hierarchy.

A caller that only knows `signers.errors` still catches them (`TokenError` for a refused
statement, `ConfigError` for a wrong policy or lifecycle); a caller that cares tells them
apart by class. Messages never contain a token's signature or any secret.
"""

from __future__ import annotations

from ..errors import ConfigError, TokenError, TokenInvalid, TokenReplayed, TokenRevoked

__all__ = [
    "GateDenied",
    "HistoryInvalid",
    "PolicyError",
    "ProofReplayed",
    "ReceiptInvalid",
    "ReceiptParentMissing",
    "RoleMissing",
    "StageNotBacked",
    "SubjectRevoked",
    "TransitionRefused",
]


class TransitionRefused(TokenError):
    """A stage transition is not allowed: skipped, reordered, or from a stage the agent is not in."""


class RoleMissing(TransitionRefused):
    """The approver's key does not hold the role this transition requires."""


class HistoryInvalid(TokenInvalid):
    """A transition history is forged, re-ordered, truncated or signed by an unknown key."""


class StageNotBacked(TokenInvalid):
    """A passport's ``stage`` (or its history head) is not what the agent's verified history says."""


class SubjectRevoked(TokenRevoked):
    """The token's agent (``kind="sub"``) or one of its groups (``kind="grp"``) is revoked."""


class ProofReplayed(TokenReplayed):
    """A proof of possession answers a challenge already used (or never issued)."""


class ReceiptInvalid(TokenInvalid):
    """An execution receipt is malformed or its signature does not verify."""


class ReceiptParentMissing(ReceiptInvalid):
    """A receipt names a parent receipt that is not in the set being verified."""


class GateDenied(TokenError):
    """Raised by adapters when the gate's decision is DENY; `decision` says every check."""

    def __init__(self, message: str, decision: object) -> None:
        super().__init__(message)
        self.decision = decision


class PolicyError(ConfigError):
    """A gate policy or lifecycle definition is wrong (unknown stage, unknown field, bad value)."""
