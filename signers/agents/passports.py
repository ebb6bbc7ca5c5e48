"""Agent passports whose stage comes from a verified history, with groups and a computed trust score.

`issue_agent_passport` wraps `signers.passport.issue_passport`: the ``stage`` and
``code_hash`` are taken from the agent's verified `AgentHistory` (never typed in), and
three claims are added:

- ``stage_head``: the hash of the history's last transition, so a verifier holding the
  history (and the approvers' keys) can check the stage is backed by it;
- ``grp``: the agent's groups (a list of names), for group revocation;
- ``trust``: ``{score, computed_at, scorer, inputs}`` when the score was computed by a
  `TrustScorer` (``inputs`` is the digest of what it was computed from), so a verifier can
  tell a computed score from a typed one.

`verify_agent_passport` wraps `signers.passport.verify_passport` and adds the agent-layer
checks: stage known and backed (`StageNotBacked`), ``required_stage`` with the lifecycle's
ordering ("at least PROD_APPROVED"), subject / group revocation (`SubjectRevoked`), and a
consistent ``trust`` claim. The same checks are exposed one by one for the gate.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

from ..errors import TokenError, TokenInvalid
from ..eth.limits import SpendLimit
from ..jose import KeySource
from ..passport import Passport, issue_passport, verify_passport
from ..revocation import RevocationCheck
from ..tokens.passport import PassportArguments, PassportChecks, issue_passport_async
from .errors import PolicyError, StageNotBacked
from .events import RejectionEvents, report_to
from .lifecycle import DEFAULT_LIFECYCLE, AgentHistory, Approvers, Lifecycle, verify_history
from .revocation import check_subject
from .spending import ADDRESS
from .trust import TrustScore

if TYPE_CHECKING:
    from datetime import datetime

    from ..keys import PublicKey
    from ..signer import Signer

__all__ = [
    "AgentPassport",
    "AgentPassportOptions",
    "agent_passport_arguments",
    "agent_passport_of",
    "check_backed",
    "check_code_hash",
    "check_groups",
    "check_scopes",
    "check_stage",
    "check_trust",
    "groups_of",
    "issue_agent_passport",
    "issue_agent_passport_async",
    "verify_agent_passport",
]

_MAX_GROUPS = 64


@dataclass(frozen=True)
class AgentPassport:
    """A verified agent passport: the base `Passport` plus the agent-layer claims."""

    passport: Passport
    groups: tuple[str, ...]
    stage_head: str
    trust: TrustScore | None

    @property
    def sub(self) -> str:
        return self.passport.sub

    @property
    def stage(self) -> str:
        return self.passport.stage

    @property
    def trust_score(self) -> int:
        return self.passport.trust_score

    @property
    def trust_computed(self) -> bool:
        """True when the score carries a scorer's ``trust`` claim (not a typed-in number)."""
        return self.trust is not None


def _group_list(groups: Iterable[str]) -> list[str]:
    names = [groups] if isinstance(groups, str) else list(groups)
    if len(names) > _MAX_GROUPS or not all(isinstance(g, str) and g and "#" not in g and len(g) <= 200 for g in names):
        raise PolicyError(f"groups must be at most {_MAX_GROUPS} non-empty names without '#'")
    return sorted(set(names))


class AgentPassportOptions(TypedDict, total=False):
    """`issue_agent_passport`'s keyword arguments (see `agent_passport_arguments` for each)."""

    name: Required[str]
    agent_key: Required[PublicKey]
    scopes: Iterable[str]
    groups: Iterable[str]
    trust: TrustScore | None
    trust_score: int | None
    ttl: float | timedelta
    iss: str | None
    aud: str | list[str] | None
    now: datetime | float | None
    lifecycle: Lifecycle
    wallet: str | None
    spend_limit: Iterable[SpendLimit]
    status: Mapping[str, Any] | None
    jti: str | None


def issue_agent_passport(signer: Signer, history: AgentHistory, **options: Unpack[AgentPassportOptions]) -> str:
    """A passport for the agent of `history` (already verified), in the stage its history says.

    The options are `agent_passport_arguments`'; raises what it and `issue_passport` raise.
    """
    return issue_passport(signer, **agent_passport_arguments(history, **options))


async def issue_agent_passport_async(signer: Signer, history: AgentHistory,
                                     **options: Unpack[AgentPassportOptions]) -> str:
    """`issue_agent_passport` signed with ``await signer.sign_async`` (for services on an event loop)."""
    return await issue_passport_async(signer, **agent_passport_arguments(history, **options))


def agent_passport_arguments(
    history: AgentHistory,
    *,
    name: str,
    agent_key: PublicKey,
    scopes: Iterable[str] = (),
    groups: Iterable[str] = (),
    trust: TrustScore | None = None,
    trust_score: int | None = None,
    ttl: float | timedelta = timedelta(hours=1),
    iss: str | None = None,
    aud: str | list[str] | None = None,
    now: datetime | float | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    wallet: str | None = None,
    spend_limit: Iterable[SpendLimit] = (),
    status: Mapping[str, Any] | None = None,
    jti: str | None = None,
) -> PassportArguments:
    """`issue_passport`'s arguments for the agent of `history`, checked (nothing is signed here).

    Give either `trust` (a computed `TrustScore`) or a plain `trust_score`; a retired or
    suspended agent still gets a passport (verifiers then refuse it by stage). A `wallet`
    (the agent's Ethereum address) with its `spend_limit`s lets the gate allow payments
    (`signers.agents.spending`). `status` is the Token Status List claim
    (``{"status_list": {"idx", "uri"}}``, from `StatusListIssuer.allocate`); `jti` a
    caller-chosen token id (default: a random one). Raises PolicyError for a bad trust /
    groups / wallet.
    """
    if (trust is None) == (trust_score is None):
        raise PolicyError("give exactly one of trust= (a computed TrustScore) or trust_score=")
    lifecycle.require_stage(history.stage, "history stage")
    extra: dict[str, Any] = {"stage_head": history.head, "grp": _group_list(groups)}
    extra.update(_wallet_claims(wallet, spend_limit))
    if status is not None:
        extra["status"] = dict(status)
    score = trust_score
    if trust is not None:
        extra["trust"] = trust.claim()
        score = trust.score
    assert score is not None
    return PassportArguments(
        sub=history.agent, name=name, agent_key=agent_key, code_hash=history.code_hash,
        stage=history.stage, trust_score=score, scopes=scopes, ttl=ttl, iss=iss, aud=aud, now=now, jti=jti,
        extra_claims=extra,
    )


def _wallet_claims(wallet: str | None, limits: Iterable[SpendLimit]) -> dict[str, Any]:
    listed = list(limits)
    if wallet is None:
        if listed:
            raise PolicyError("a spend_limit needs the wallet= it limits")
        return {}
    if not isinstance(wallet, str) or not ADDRESS.match(wallet):
        raise PolicyError("wallet must be an Ethereum address (0x and 40 hex digits)")
    if not all(isinstance(lim, SpendLimit) for lim in listed):
        raise PolicyError("spend_limit must be SpendLimit values (signers.eth.SpendLimit)")
    return {"wallet": wallet, "spend_limit": [lim.to_claim() for lim in listed]}


def groups_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``grp`` claim as a tuple; TokenInvalid when it is not a list of names."""
    groups = claims.get("grp", [])
    if not isinstance(groups, list) or len(groups) > _MAX_GROUPS or not all(isinstance(g, str) and g for g in groups):
        raise TokenInvalid("passport claim 'grp' must be a list of group names")
    return tuple(groups)


def agent_passport_of(passport: Passport) -> AgentPassport:
    """The agent-layer view of a verified passport; StageNotBacked without ``stage_head``."""
    head = passport.claims.get("stage_head")
    if not isinstance(head, str) or len(head) != 64:
        raise StageNotBacked("passport carries no stage_head: its stage was not issued from a verified history")
    trust_claim = passport.claims.get("trust")
    trust = None
    if trust_claim is not None:
        trust = TrustScore.from_claim(trust_claim)
        if trust.score != passport.trust_score:
            raise TokenInvalid("passport trust.score differs from its trust_score claim")
    return AgentPassport(passport, groups_of(passport.claims), head, trust)


def check_stage(stage: object, required_stage: str | None, lifecycle: Lifecycle = DEFAULT_LIFECYCLE) -> None:
    """StageNotBacked for a stage the lifecycle does not know; TokenInvalid when below `required_stage`."""
    if not isinstance(stage, str) or stage not in lifecycle.all_stages:
        raise StageNotBacked(f"passport stage {str(stage)[:40]!r} is not a stage of the lifecycle")
    if required_stage is not None and not lifecycle.at_least(stage, required_stage):
        raise TokenInvalid(f"passport stage {stage} is not at least {required_stage}")


def check_backed(
    agent: AgentPassport,
    history: AgentHistory | Sequence[str],
    approvers: Approvers | None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
) -> AgentHistory:
    """StageNotBacked unless the passport's stage, code_hash and stage_head are the history's current ones."""
    if not isinstance(history, AgentHistory):
        if approvers is None:
            raise PolicyError("checking a passport against history tokens needs the approvers' keys and roles")
        history = verify_history(history, approvers, lifecycle=lifecycle)
    if history.agent != agent.sub:
        raise StageNotBacked("the history given is for another agent")
    if not hmac.compare_digest(history.head, agent.stage_head):
        raise StageNotBacked("passport stage_head is not the head of the agent's history (stage changed since)")
    if history.stage != agent.stage or history.code_hash != agent.passport.code_hash:
        raise StageNotBacked(f"passport says {agent.stage}, the agent's history says {history.stage}")
    return history


def check_groups(revocations: RevocationCheck, passport: Passport, groups: Iterable[str]) -> None:
    """SubjectRevoked when the agent or one of its groups is revoked for this passport's issue time."""
    check_subject(revocations, passport.sub, groups, passport.issued_at.timestamp())


def check_scopes(passport: Passport, required: Iterable[str]) -> str:
    """TokenInvalid naming the scopes the passport lacks."""
    missing = [s for s in required if s not in passport.scopes]
    if missing:
        raise TokenInvalid(f"passport lacks required scope(s) {missing}")
    return "ok"


def check_trust(agent: AgentPassport, minimum: int | None) -> str:
    """TokenInvalid when the trust score is below `minimum`; says whether it was computed."""
    score = agent.trust_score
    if minimum is not None and score < minimum:
        raise TokenInvalid(f"passport trust_score {score} is below the required {minimum}")
    return f"{score} ({'computed by ' + agent.trust.scorer if agent.trust else 'typed in'})"


def check_code_hash(passport: Passport, allowed: Iterable[str] | None) -> str:
    """TokenInvalid unless the passport's code_hash is one of `allowed` (None: no requirement)."""
    if allowed is None:
        return "no attested builds required"
    mine = passport.code_hash.removeprefix("sha256:")
    if not any(hmac.compare_digest(mine, h.removeprefix("sha256:")) for h in allowed):
        raise TokenInvalid("passport code_hash does not match the agent's code (not an attested build)")
    return "attested build"


def verify_agent_passport(
    token: str | bytes,
    issuer_keys: KeySource,
    *,
    required_stage: str | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
    history: AgentHistory | Sequence[str] | None = None,
    approvers: Approvers | None = None,
    events: RejectionEvents | None = None,
    context: Mapping[str, Any] | None = None,
    **checks: Unpack[PassportChecks],
) -> AgentPassport:
    """Verify a passport with every agent-layer check; raises the first TokenError (and reports it).

    `checks` are `verify_passport`'s (revocations, audience, issuer, required_scopes,
    min_trust_score, code_hash, leeway, now); the scope, trust and code-hash ones run after
    the agent-layer reading of the passport, with the agent layer's messages.
    """
    if required_stage is not None:
        lifecycle.require_stage(required_stage, "required_stage")
    required_scopes = checks.pop("required_scopes", ())
    min_trust_score = checks.pop("min_trust_score", None)
    code_hash = checks.pop("code_hash", None)
    revocations = checks.get("revocations")
    authenticated: str | None = None
    jti: str | None = None
    try:
        passport = verify_passport(token, issuer_keys, **checks)
        authenticated, jti = passport.sub, passport.jti  # from here on, a refusal is of a verified agent
        agent = agent_passport_of(passport)
        check_scopes(passport, required_scopes)
        check_trust(agent, min_trust_score)
        check_code_hash(passport, None if code_hash is None else [code_hash])
        check_stage(passport.stage, required_stage, lifecycle)
        if revocations is not None:
            check_groups(revocations, passport, agent.groups)
        if history is not None:
            check_backed(agent, history, approvers, lifecycle)
    except TokenError as e:
        report_to(events, "passport", e, token=None if jti else token, who=authenticated, token_id=jti,
                  authenticated=authenticated is not None, context=context)
        raise
    return agent
