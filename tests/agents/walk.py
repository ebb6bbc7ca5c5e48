"""Walk an agent through the default lifecycle (shared by the agent tests)."""

from __future__ import annotations

from typing import Any

from signers.agents.lifecycle import AgentHistory, Approvers, advance, register

PATH = (("VETTING", "approver"), ("TESTING", "approver"), ("DEV_APPROVED", "approver"),
        ("PROD_APPROVED", "release"), ("ACTIVE", "release"))


def walk(keys: dict[str, Any], approvers: Approvers, agent: str, code: str, until: str = "ACTIVE",
         **kwargs: Any) -> AgentHistory:
    history = register(keys["registrar"], agent, code, approvers, **kwargs)
    for stage, who in PATH:
        if history.stage == until:
            break
        history = advance(keys[who], history, stage, approvers, reason=f"to {stage}", **kwargs)
    return history
