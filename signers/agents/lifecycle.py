"""An agent's lifecycle: stages, the allowed transitions, who may approve each, and a signed history.

Every transition is a JWT (``typ: stage-transition+jwt``) signed by the approver's own key,
naming the agent (``sub``), ``from`` and ``to`` stages, the ``approver`` (its key id), a
``reason``, the time (``iat``), the agent's ``code_hash`` at that moment, its position
(``seq``) and ``prev``, the SHA-256 of the previous transition token. An agent's history
is the list of those tokens, a hash chain anyone can verify offline with the approvers'
JWKS and their roles (`verify_history`).

Rules a history must keep (`Lifecycle.check`):

- it starts with a registration (``from: null``, ``to`` the initial stage);
- no skipping: only the lifecycle's transitions are allowed (INTAKE -> ACTIVE is refused);
- the approver's key must hold one of the roles the target stage requires;
- a ``code_hash`` different from the previous transition's sends the agent back to the
  reset stage (VETTING): any other target with new code is refused;
- from SUSPENDED an agent may resume only to the stage it was suspended from (or re-vet).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..audit import AuditedSigner, AuditLog
from ..clock import epoch, from_epoch
from ..errors import TokenError
from ..jose import parse_jws, sign_jwt, verify_jwt
from .approvers import Approvers
from .errors import HistoryInvalid, PolicyError, RoleMissing, TransitionRefused
from .events import RejectionEvents, report_to

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = [
    "DEFAULT_LIFECYCLE",
    "GENESIS",
    "TRANSITION_TYP",
    "AgentHistory",
    "Approvers",  # defined in .approvers, importable from here too
    "Lifecycle",
    "StageTransition",
    "advance",
    "register",
    "transition_hash",
    "verify_history",
]

TRANSITION_TYP = "stage-transition+jwt"
GENESIS = "0" * 64  # `prev` of an agent's first transition
_CODE_HASH = re.compile(r"^sha256:[0-9a-f]{64}\Z")  # \Z: "$" would let a trailing newline through
_MAX_REASON = 500


@dataclass(frozen=True)
class Lifecycle:
    """Stages, allowed transitions and the roles each target stage requires.

    `stages` is the progression, in order (what "at least PROD_APPROVED" ranks by);
    `side_stages` are off the progression (SUSPENDED, RETIRED). `transitions` are the
    allowed (from, to) pairs; `roles` maps a target stage to the roles any one of which
    lets an approver move an agent there (a stage without an entry needs no role).
    """

    stages: tuple[str, ...] = ("INTAKE", "VETTING", "TESTING", "DEV_APPROVED", "PROD_APPROVED", "ACTIVE")
    side_stages: tuple[str, ...] = ("SUSPENDED", "RETIRED")
    transitions: frozenset[tuple[str, str]] = frozenset()
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    reset_stage: str = "VETTING"
    suspended_stage: str = "SUSPENDED"
    retired_stage: str = "RETIRED"

    def __post_init__(self) -> None:
        known = set(self.all_stages)
        if len(known) != len(self.all_stages) or not self.stages:
            raise PolicyError("lifecycle stages must be unique and at least one")
        for name in (self.reset_stage, self.suspended_stage, self.retired_stage):
            if name not in known:
                raise PolicyError(f"lifecycle names unknown stage {name!r}")
        for a, b in self.transitions:
            if a not in known or b not in known:
                raise PolicyError(f"lifecycle transition {a!r} -> {b!r} names an unknown stage")
        for stage in self.roles:
            if stage not in known:
                raise PolicyError(f"lifecycle roles name unknown stage {stage!r}")

    @classmethod
    def default(cls) -> Lifecycle:
        """The default: the six-stage progression, suspend / retire from anywhere, re-vet on new code."""
        base = cls()
        approve = frozenset({"approver", "release-approver"})
        release = frozenset({"release-approver"})
        roles = {
            "INTAKE": frozenset({"registrar", "approver", "release-approver"}),
            "VETTING": approve,
            "TESTING": approve,
            "DEV_APPROVED": approve,
            "PROD_APPROVED": release,
            "ACTIVE": release,
            "SUSPENDED": frozenset({"operator", "approver", "release-approver"}),
            "RETIRED": frozenset({"operator", "release-approver"}),
        }
        return cls(transitions=base.default_transitions(), roles=roles)

    def default_transitions(self) -> frozenset[tuple[str, str]]:
        """Each stage to the next, any progression stage to SUSPENDED / RETIRED, SUSPENDED to RETIRED or re-vet."""
        steps = set(zip(self.stages, self.stages[1:], strict=False))
        for stage in self.stages:
            steps.add((stage, self.suspended_stage))
            steps.add((stage, self.retired_stage))
        steps.add((self.suspended_stage, self.retired_stage))
        steps.add((self.suspended_stage, self.reset_stage))
        return frozenset(steps)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "[agents.lifecycle]") -> Lifecycle:
        """From an ``[agents.lifecycle]`` table: ``stages``, ``side_stages``, ``reset_stage``,
        ``suspended_stage``, ``retired_stage``, ``transitions`` (pairs; default: `default_transitions`)
        and a ``roles`` table (stage -> roles). PolicyError for an unknown field or stage.
        """
        fields_known = {"stages", "side_stages", "reset_stage", "suspended_stage", "retired_stage", "transitions",
                        "roles"}
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where} must be a table")
        unknown = set(data) - fields_known
        if unknown:
            raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}; expected some of {sorted(fields_known)}")
        base = cls.default()
        values: dict[str, Any] = {}
        for name in ("stages", "side_stages"):
            if name in data:
                values[name] = tuple(_names(data[name], f"{where}: {name}"))
        for name in ("reset_stage", "suspended_stage", "retired_stage"):
            if name in data:
                if not isinstance(data[name], str):
                    raise PolicyError(f"{where}: {name} must be a stage name")
                values[name] = data[name]
        if "roles" in data:
            roles = data["roles"]
            if not isinstance(roles, Mapping):
                raise PolicyError(f"{where}: roles must be a table of stage = [roles]")
            values["roles"] = {stage: frozenset(_names(r, f"{where}: roles.{stage}")) for stage, r in roles.items()}
        elif "stages" not in data and "side_stages" not in data:
            values["roles"] = base.roles  # the default stages keep the default roles
        shaped = cls(**values)
        if "transitions" not in data:
            return cls(**values, transitions=shaped.default_transitions())
        pairs = data["transitions"]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise PolicyError(f"{where}: transitions must be a list of [from, to] pairs")
        return cls(**values, transitions=frozenset((str(a), str(b)) for a, b in pairs))

    @property
    def all_stages(self) -> tuple[str, ...]:
        return self.stages + self.side_stages

    @property
    def initial(self) -> str:
        return self.stages[0]

    def rank(self, stage: str) -> int:
        """Position in the progression; -1 for a side stage (never 'at least' anything)."""
        self.require_stage(stage)
        return self.stages.index(stage) if stage in self.stages else -1

    def require_stage(self, stage: object, what: str = "stage") -> str:
        """`stage` if the lifecycle knows it, else PolicyError (a configuration naming a stage)."""
        if not isinstance(stage, str) or stage not in self.all_stages:
            raise PolicyError(f"{what} {str(stage)[:40]!r} is not a stage of this lifecycle {list(self.all_stages)}")
        return stage

    def at_least(self, stage: str, minimum: str) -> bool:
        """True when `stage` is `minimum` or later in the progression (side stages never are)."""
        wanted = self.rank(minimum)
        if stage not in self.all_stages:
            return False
        have = self.rank(stage)
        return have >= 0 and have >= wanted

    def check(
        self,
        history: AgentHistory | None,
        to: str,
        approver_roles: frozenset[str],
        code_hash: str,
    ) -> None:
        """TransitionRefused / RoleMissing unless moving `history`'s agent to `to` is allowed."""
        if to not in self.all_stages:
            raise TransitionRefused(f"unknown stage {to[:40]!r}")
        if history is None:
            if to != self.initial:
                raise TransitionRefused(f"an agent is registered in {self.initial}, not {to}")
        else:
            current = history.stage
            new_code = code_hash != history.code_hash
            if current == self.retired_stage:
                raise TransitionRefused(f"agent {history.agent!r} is {current}: no transition leaves it")
            if new_code and to != self.reset_stage:
                raise TransitionRefused(
                    f"code_hash changed: the agent must go back to {self.reset_stage}, not to {to}"
                )
            resume = current == self.suspended_stage and to == history.transitions[-1].from_stage
            if not (new_code or resume or (current, to) in self.transitions):
                raise TransitionRefused(f"transition {current} -> {to} is not allowed (no skipping or reordering)")
        needed = self.roles.get(to)
        if needed and not needed & approver_roles:
            raise RoleMissing(f"moving an agent to {to} needs one of the roles {sorted(needed)}")


DEFAULT_LIFECYCLE = Lifecycle.default()


@dataclass(frozen=True)
class StageTransition:
    """One verified transition of an agent's history."""

    seq: int
    agent: str
    from_stage: str | None
    to_stage: str
    approver: str
    reason: str
    at: datetime
    code_hash: str
    prev: str
    hash: str
    token: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "agent": self.agent, "from": self.from_stage, "to": self.to_stage,
            "approver": self.approver, "reason": self.reason, "at": self.at.isoformat(),
            "code_hash": self.code_hash, "prev": self.prev, "hash": self.hash,
        }


@dataclass(frozen=True)
class AgentHistory:
    """An agent's verified history: where it stands now and how it got there."""

    agent: str
    transitions: tuple[StageTransition, ...]

    @property
    def stage(self) -> str:
        return self.transitions[-1].to_stage

    @property
    def code_hash(self) -> str:
        return self.transitions[-1].code_hash

    @property
    def head(self) -> str:
        """The hash of the last transition: what a passport names as its stage's backing."""
        return self.transitions[-1].hash

    @property
    def tokens(self) -> list[str]:
        return [t.token for t in self.transitions]


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where} must be a list of names")
    return list(value)


def transition_hash(token: str) -> str:
    """SHA-256 (hex) of a transition token's compact form: the next transition's ``prev``."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _check_inputs(agent: str, reason: str, code_hash: str) -> None:
    if not isinstance(agent, str) or not agent or len(agent) > 256:
        raise PolicyError("agent id must be a non-empty string of at most 256 characters")
    if not isinstance(reason, str) or not reason or len(reason) > _MAX_REASON:
        raise PolicyError(f"reason must be a non-empty string of at most {_MAX_REASON} characters")
    if not isinstance(code_hash, str) or not _CODE_HASH.match(code_hash):
        raise PolicyError("code_hash must be 'sha256:<64 lowercase hex>' (see signers.passport.code_hash_of)")


def _sign(
    approver: Signer,
    agent: str,
    history: AgentHistory | None,
    to: str,
    reason: str,
    code_hash: str,
    approvers: Approvers,
    lifecycle: Lifecycle,
    audit: AuditLog | None,
    now: datetime | float | None,
    events: RejectionEvents | None = None,
) -> AgentHistory:
    _check_inputs(agent, reason, code_hash)
    kid = approver.key_id
    current = epoch(now)
    issued = int(current)
    try:
        if kid not in approvers.jwks:
            raise RoleMissing(f"key {kid[:60]!r} is not among the approvers")
        ended = approvers.not_after.get(kid)
        if ended is not None and current > ended:  # the precise time: iat is whole seconds
            raise RoleMissing(f"key {kid[:60]!r} no longer holds approver roles (they ended at {ended:.0f})")
        lifecycle.check(history, to, approvers.roles_of(kid, issued), code_hash)
    except TransitionRefused as e:
        report_to(events, "stage-transition", e, who=agent, context={"to": to, "approver": kid})
        raise
    seq = 1 if history is None else len(history.transitions) + 1
    prev = GENESIS if history is None else history.head
    from_stage = None if history is None else history.stage
    claims = {
        "iss": kid, "sub": agent, "jti": str(uuid.uuid4()), "iat": issued,
        "seq": seq, "from": from_stage, "to": to, "approver": kid, "reason": reason,
        "code_hash": code_hash, "prev": prev,
    }
    signing: Signer = approver
    if audit is not None:  # the transition's signature becomes a record of the audit chain
        context = {"event": "stage-transition", "agent": agent, "from": from_stage, "to": to, "seq": seq}
        signing = AuditedSigner(approver, audit, context=context, checkpoint_every=None)
    token = sign_jwt(signing, claims, typ=TRANSITION_TYP)
    tokens = [*(history.tokens if history else []), token]
    return verify_history(tokens, approvers, lifecycle=lifecycle, agent=agent, now=now)


def register(
    approver: Signer,
    agent: str,
    code_hash: str,
    approvers: Approvers,
    *,
    reason: str = "registered",
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    audit: AuditLog | None = None,
    now: datetime | float | None = None,
    events: RejectionEvents | None = None,
) -> AgentHistory:
    """Start an agent's history in the initial stage (INTAKE); raises RoleMissing / PolicyError."""
    return _sign(approver, agent, None, lifecycle.initial, reason, code_hash, approvers, lifecycle, audit, now, events)


def advance(
    approver: Signer,
    history: AgentHistory,
    to: str,
    approvers: Approvers,
    *,
    reason: str,
    code_hash: str | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    audit: AuditLog | None = None,
    now: datetime | float | None = None,
    events: RejectionEvents | None = None,
) -> AgentHistory:
    """Sign the next transition (to `to`); TransitionRefused / RoleMissing when not allowed, nothing signed.

    `code_hash` defaults to the agent's current one; a new one is only allowed with
    ``to=lifecycle.reset_stage``. Also suspends (``to="SUSPENDED"``) and retires.
    """
    code = history.code_hash if code_hash is None else code_hash
    return _sign(approver, history.agent, history, to, reason, code, approvers, lifecycle, audit, now, events)


def verify_history(
    tokens: Sequence[str],
    approvers: Approvers,
    *,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    agent: str | None = None,
    events: RejectionEvents | None = None,
    now: datetime | float | None = None,
) -> AgentHistory:
    """Verify a history offline: every signature, the hash chain, and every rule of the lifecycle.

    Raises HistoryInvalid naming the first bad transition (forged, re-ordered, truncated at
    the start, signed by a key without the role, or breaking a lifecycle rule).
    """
    try:
        return _verify_all(tokens, approvers, lifecycle, agent, now)
    except HistoryInvalid as e:
        report_to(events, "history", e, who=agent, context={"transitions": len(tokens) if not isinstance(tokens, str) else 0})
        raise


def _verify_all(tokens: Sequence[str], approvers: Approvers, lifecycle: Lifecycle, agent: str | None,
                now: datetime | float | None) -> AgentHistory:
    if isinstance(tokens, str) or not tokens:
        raise HistoryInvalid("a history is a non-empty list of transition tokens")
    history: AgentHistory | None = None
    transitions: list[StageTransition] = []
    for position, token in enumerate(tokens, start=1):
        try:
            step = _verify_step(token, position, approvers, history, lifecycle, agent, now)
        except HistoryInvalid:
            raise
        except TokenError as e:
            raise HistoryInvalid(f"transition {position}: {e}") from e
        transitions.append(step)
        history = AgentHistory(step.agent, tuple(transitions))
        agent = step.agent
    assert history is not None
    return history


def _verify_step(
    token: str,
    position: int,
    approvers: Approvers,
    history: AgentHistory | None,
    lifecycle: Lifecycle,
    agent: str | None,
    now: datetime | float | None,
) -> StageTransition:
    if not isinstance(token, str):
        raise HistoryInvalid(f"transition {position} is not a token string")
    verified = verify_jwt(
        token, approvers.jwks, typ=TRANSITION_TYP,
        require=("sub", "iat", "jti", "seq", "from", "to", "approver", "reason", "code_hash", "prev"), now=now,
    )
    c = verified.claims
    if c["approver"] != verified.kid or c.get("iss") != verified.kid:
        raise HistoryInvalid(f"transition {position} names approver {str(c['approver'])[:60]!r} but is signed by another key")
    if agent is not None and c["sub"] != agent:
        raise HistoryInvalid(f"transition {position} is for another agent")
    if c["seq"] != position:
        raise HistoryInvalid(f"transition {position} carries seq {str(c['seq'])[:10]}: the history is re-ordered or incomplete")
    expected_prev = GENESIS if history is None else history.head
    if c["prev"] != expected_prev:
        raise HistoryInvalid(f"transition {position} does not follow transition {position - 1} (prev hash mismatch)")
    expected_from = None if history is None else history.stage
    if c["from"] != expected_from:
        raise HistoryInvalid(f"transition {position} starts from {str(c['from'])[:40]!r}, but the agent was in {expected_from!r}")
    for name in ("to", "reason", "code_hash", "sub"):
        if not isinstance(c[name], str):
            raise HistoryInvalid(f"transition {position} claim {name!r} is not a string")
    if not _CODE_HASH.match(c["code_hash"]):
        raise HistoryInvalid(f"transition {position} code_hash is not a SHA-256 digest")
    lifecycle.check(history, c["to"], approvers.roles_of(verified.kid, float(c["iat"])), c["code_hash"])
    at = from_epoch(c["iat"])
    if at is None or (history is not None and at < history.transitions[-1].at):
        raise HistoryInvalid(f"transition {position} is dated before the transition it follows")
    return StageTransition(
        seq=position, agent=c["sub"], from_stage=c["from"], to_stage=c["to"], approver=verified.kid,
        reason=c["reason"], at=at, code_hash=c["code_hash"], prev=c["prev"], hash=transition_hash(token), token=token,
    )


def peek_agent(token: str) -> str | None:
    """The agent a transition token names, WITHOUT verifying it (to pick its history file)."""
    try:
        sub = parse_jws(token).claims().get("sub")
    except TokenError:
        return None
    return sub if isinstance(sub, str) else None
