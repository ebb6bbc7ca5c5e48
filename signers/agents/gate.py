"""The tool gate: ALLOW or DENY for one tool call, with every check run and reported.

``Gate(policy, issuer_keys, ...).decide(passport_token, tool=..., server=..., proof=...,
action_token=..., params=...)`` returns a `Decision`; it never raises for a bad token
(a refusal is a DENY naming the failed checks), only for a wrong configuration.

Checks, always in this order and all of them reported (a check that cannot be evaluated
because the passport's signature failed is reported failed, "not evaluated"):

==================  =============================================================
policy              the policy allows this tool on this server
signature           the passport verifies against the issuer's keys (``typ`` passport)
claims              the passport has every claim, of the right type, with stage_head
issuer              ``iss`` / ``aud`` as the policy names them
expiry              ``exp`` / ``nbf`` / ``iat`` with leeway
token-revocation    the passport's ``jti`` is not revoked
agent-revocation    the agent (``kind="sub"``) is not revoked for this passport
group-revocation    none of its groups (``kind="grp"``) is
stage               a lifecycle stage, at least the rule's min_stage (and backed by
                    the agent's history when the gate is given histories)
trust               trust_score >= min_trust, and a ``trust`` claim consistent with it
scopes              the rule's scopes are all in the passport
code-hash           the passport's code_hash is one of the rule's attested builds
possession          a proof answering a fresh challenge of this gate, used once
action-token        an action token for this action and exactly these params, for this
                    agent (and this passport when it names one), not revoked
spend               for a payment tool (``payment = true``): the passport's ``wallet`` is
                    the payer and the amount fits its ``spend_limit`` for the asset
                    (periods counted by the gate's `SpendLedger`, charged only on ALLOW)
==================  =============================================================

Denials go to the rejection events; every decision (with a decision signer) to the audit
chain as a signed ``gate-decision+jwt`` record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..audit import AuditedSigner, AuditLog
from ..clock import DEFAULT_LEEWAY, epoch, from_epoch
from ..errors import KeyplaneError, TokenInvalid
from ..eth.limits import check_spend, spend_limits_from_claims
from ..jose import JWKS, KeySource, as_jwks, check_claims, check_not_revoked, sign_jwt, verify_jws
from ..keys import PublicKey
from ..passport import PASSPORT_TYP, Challenge, Passport
from ..revocation import RevocationCheck
from .actions import verify_agent_action
from .errors import GateDenied, PolicyError, SubjectRevoked
from .events import RejectionEvents, unverified_ids
from .lifecycle import AgentHistory
from .passports import (
    AgentPassport,
    agent_passport_of,
    check_backed,
    check_code_hash,
    check_scopes,
    check_stage,
    check_trust,
)
from .policy import GatePolicy, Rule
from .possession import ChallengeBook
from .revocation import GROUP, SUBJECT, subject_revocation
from .spending import SpendLedger, check_wallet, payment_of

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["CHECKS", "DECISION_TYP", "Decision", "Gate"]

DECISION_TYP = "gate-decision+jwt"
CHECKS = ("policy", "signature", "claims", "issuer", "expiry", "token-revocation", "agent-revocation",
          "group-revocation", "stage", "trust", "scopes", "code-hash", "possession", "action-token", "spend")
_NOT_EVALUATED = "not evaluated: the passport could not be verified"


@dataclass(frozen=True)
class Decision:
    """The gate's answer: allow, and which checks passed and failed (with why, in `details`)."""

    allow: bool
    checks_passed: tuple[str, ...]
    checks_failed: tuple[str, ...]
    reason: str
    agent: str | None
    trust_score: int | None
    stage: str | None
    server: str = ""
    tool: str = ""
    details: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow": self.allow, "checks_passed": list(self.checks_passed), "checks_failed": list(self.checks_failed),
            "reason": self.reason, "agent": self.agent, "trust_score": self.trust_score, "stage": self.stage,
            "server": self.server, "tool": self.tool, "details": dict(self.details),
        }


class _Report:
    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def run(self, name: str, check: Callable[[], str | None]) -> bool:
        try:
            note = check()
        except KeyplaneError as e:  # every refusal the token layer raises is a failed check
            self.fail(name, str(e))
            return False
        self.passed.append(name)
        self.details[name] = note or "ok"
        return True

    def fail(self, name: str, why: str) -> None:
        self.failed[name] = why
        self.details[name] = why


class Gate:
    """Decides tool calls under a `GatePolicy`; see the module docstring for the checks."""

    def __init__(
        self,
        policy: GatePolicy,
        issuer_keys: KeySource | None = None,
        *,
        revocations: RevocationCheck | None = None,
        challenges: ChallengeBook | None = None,
        action_keys: KeySource | None = None,
        histories: Callable[[str], AgentHistory | None] | None = None,
        events: RejectionEvents | None = None,
        audit: AuditLog | None = None,
        decision_signer: Signer | None = None,
        spend_ledger: SpendLedger | None = None,
        leeway: float = DEFAULT_LEEWAY,
    ) -> None:
        if not isinstance(policy, GatePolicy):
            raise PolicyError("Gate needs a GatePolicy (GatePolicy.load / from_dict)")
        if (audit is None) != (decision_signer is None):
            raise PolicyError("give both audit= and decision_signer= (decisions are recorded as signed records)")
        keys = issuer_keys if issuer_keys is not None else policy.issuer_keys
        if keys is None:
            raise PolicyError("the gate needs the issuer's keys: issuer_keys= or jwks = \"...\" in the policy")
        self.policy = policy
        self.issuer_keys: JWKS = as_jwks(keys)
        self.action_keys: JWKS | None = as_jwks(action_keys) if action_keys is not None else None
        self.revocations = revocations
        self.challenges = challenges
        self.histories = histories
        self.events = events
        self.spend_ledger = spend_ledger
        self.leeway = leeway
        # a long-lived wrapper: every 100 decisions the gate key signs a checkpoint of the chain
        self._audited = AuditedSigner(decision_signer, audit) if audit and decision_signer else None
        self._rules: dict[tuple[str, str], Rule | None] = {}  # the policy is immutable: merge each rule once

    def challenge(self, *, now: datetime | float | None = None) -> Challenge:
        """A fresh proof-of-possession challenge for an agent about to call a tool."""
        if self.challenges is None:
            raise PolicyError("this gate has no ChallengeBook: give challenges= to ask for proofs of possession")
        return self.challenges.issue(now=now)

    def decide(
        self,
        passport_token: str | bytes,
        *,
        tool: str,
        server: str,
        proof: str | bytes | None = None,
        action_token: str | bytes | None = None,
        params: Mapping[str, Any] | None = None,
        now: datetime | float | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Run every check and return the decision (never raises for a bad token).

        Raises PolicyError only for a caller's mistake: `tool` / `server` not strings.
        """
        if not isinstance(tool, str) or not isinstance(server, str):
            raise PolicyError("decide() needs the tool and server names as strings")
        report = _Report()
        key = (server, tool)
        try:
            rule = self._rules[key]
        except KeyError:  # one lookup, so a concurrent clear() can never make it fail
            rule = self.policy.rule_for(server, tool)
            if len(self._rules) > 10_000:  # unknown tool names must not grow memory without bound
                self._rules.clear()
            self._rules[key] = rule
        if rule is None:
            report.fail("policy", f"tool {tool[:80]!r} on server {server[:80]!r} is not allowed by the gate policy")
            rule = self.policy.defaults
        else:
            report.passed.append("policy")
        agent, claims = self._passport(passport_token, report, now)
        if agent is None:
            for name in CHECKS[CHECKS.index("issuer"):]:
                if name not in report.failed and name not in report.passed:
                    report.fail(name, _NOT_EVALUATED)
        else:
            self._checks(agent, claims, rule, report, tool, proof, action_token, params, now)
        decision = self._decision(report, agent, server, tool)
        self._record(decision, passport_token, context, agent.passport.jti if agent is not None else None)
        return decision

    def require(self, passport_token: str | bytes, **kwargs: Any) -> Decision:
        """`decide`, raising GateDenied (a TokenError carrying the decision) on DENY."""
        decision = self.decide(passport_token, **kwargs)
        if not decision.allow:
            raise GateDenied(f"gate denied: {decision.reason}", decision)
        return decision

    # -- the checks ----------------------------------------------------------------------

    def _passport(
        self, token: str | bytes, report: _Report, now: datetime | float | None
    ) -> tuple[AgentPassport | None, dict[str, Any]]:
        claims: dict[str, Any] = {}
        kids: list[str] = []

        def signature() -> str:
            verified = verify_jws(token, self.issuer_keys, typ=PASSPORT_TYP)
            try:
                payload = json.loads(verified.payload)
            except (ValueError, RecursionError) as e:
                raise TokenInvalid("passport payload is not JSON") from e
            if not isinstance(payload, dict):
                raise TokenInvalid("passport payload is not a JSON object")
            claims.update(payload)
            kids.append(verified.key.kid)
            return f"issuer key {verified.key.kid[:40]}"

        if not report.run("signature", signature):
            report.fail("claims", _NOT_EVALUATED)
            return None, {}
        holder: list[AgentPassport] = []
        if not report.run("claims", lambda: holder.append(agent_passport_of(_passport_of(claims, kids[0])))):
            return None, claims
        return holder[0], claims

    def _checks(
        self,
        agent: AgentPassport,
        claims: dict[str, Any],
        rule: Rule,
        report: _Report,
        tool: str,
        proof: str | bytes | None,
        action_token: str | bytes | None,
        params: Mapping[str, Any] | None,
        now: datetime | float | None,
    ) -> None:
        passport = agent.passport
        issued = passport.issued_at.timestamp()
        report.run("issuer", lambda: _issuer_audience(claims, self.policy.issuer, self.policy.audience))
        report.run("expiry", lambda: check_claims(claims, require=("exp", "iat"), leeway=self.leeway, now=now))
        store = self.revocations
        if store is None:
            for name in ("token-revocation", "agent-revocation", "group-revocation"):
                report.run(name, lambda: "no revocation store configured")
        else:
            report.run("token-revocation", lambda: check_not_revoked(claims, store))
            report.run("agent-revocation", lambda: _not_revoked(store, SUBJECT, [passport.sub], issued))
            report.run("group-revocation", lambda: _not_revoked(store, GROUP, agent.groups, issued))
        report.run("stage", lambda: self._stage(agent, rule))
        report.run("trust", lambda: check_trust(agent, rule.min_trust))
        report.run("scopes", lambda: check_scopes(passport, rule.scopes or ()))
        report.run("code-hash", lambda: check_code_hash(passport, rule.code_hashes))
        report.run("possession", lambda: self._possession(passport, rule, proof, now))
        report.run("action-token", lambda: self._action(passport, rule, tool, action_token, params, now))
        report.run("spend", lambda: self._spend(agent.sub, claims, rule, params, report, now))

    def _stage(self, agent: AgentPassport, rule: Rule) -> str:
        check_stage(agent.stage, rule.min_stage, self.policy.lifecycle)
        if self.histories is not None:
            history = self.histories(agent.sub)
            if history is None:
                raise TokenInvalid(f"no verified history for agent {agent.sub[:80]!r}")
            check_backed(agent, history, None, self.policy.lifecycle)
            return f"{agent.stage}, backed by its history"
        return agent.stage

    def _possession(self, passport: Passport, rule: Rule, proof: str | bytes | None,
                    now: datetime | float | None) -> str:
        if not rule.proof:
            return "not required"
        if proof is None:
            raise TokenInvalid("a proof of possession is required for this tool")
        if self.challenges is None:
            raise PolicyError("the policy requires proofs of possession but the gate has no ChallengeBook")
        self.challenges.consume(proof, passport, leeway=self.leeway, now=now)
        return "fresh challenge answered with the passport's key"

    def _action(self, passport: Passport, rule: Rule, tool: str, token: str | bytes | None,
                params: Mapping[str, Any] | None, now: datetime | float | None) -> str:
        if token is None:
            if rule.action_token:
                raise TokenInvalid("an action token is required for this tool")
            return "not required"
        keys = self.action_keys if self.action_keys is not None else JWKS.of(self.issuer_keys, passport.agent_key)
        grant = verify_agent_action(token, keys, action=rule.action or tool, params=params or {},
                                    revocations=self.revocations, subject=passport.sub, leeway=self.leeway, now=now)
        bound = grant.claims.get("passport_jti")
        if bound is not None and bound != passport.jti:
            raise TokenInvalid("action token was granted for another passport")
        return f"action {grant.action[:60]} with matching params"

    def _spend(self, agent: str, claims: Mapping[str, Any], rule: Rule, params: Mapping[str, Any] | None,
               report: _Report, now: datetime | float | None) -> str:
        """Last of the checks, so the ledger is charged only when every other check passed."""
        if not rule.payment:
            return "not a payment"
        payment = payment_of(params or {}, rule.payment_params)
        wallet = check_wallet(claims, payment)
        limits = spend_limits_from_claims(claims)
        at = epoch(now)
        if self.spend_ledger is None:
            check_spend(limits, payment.asset, payment.amount)  # a per-period limit refuses: nothing counts it
        elif report.failed:  # a DENY anyway: evaluate, but charge nothing
            check_spend(limits, payment.asset, payment.amount, self.spend_ledger.spent(agent, payment.asset, now=at))
        else:
            self.spend_ledger.charge(agent, payment, limits, now=at)
        return f"{payment.amount} of {payment.asset[:42]} from {wallet} within the passport's limits"

    # -- the outcome ---------------------------------------------------------------------

    def _decision(self, report: _Report, agent: AgentPassport | None, server: str, tool: str) -> Decision:
        failed = tuple(n for n in CHECKS if n in report.failed)
        passed = tuple(n for n in CHECKS if n in report.passed and n not in report.failed)
        reason = "; ".join(f"{n}: {report.failed[n]}" for n in failed) if failed else "all checks passed"
        return Decision(
            allow=not failed, checks_passed=passed, checks_failed=failed, reason=reason,
            agent=agent.sub if agent else None, trust_score=agent.trust_score if agent else None,
            stage=agent.stage if agent else None, server=server, tool=tool, details=dict(report.details),
        )

    def _record(self, decision: Decision, token: str | bytes, context: Mapping[str, Any] | None,
                jti: str | None) -> None:
        if not decision.allow and self.events is not None:
            self.events.rejected(
                "gate", GateDenied(decision.reason, decision), token=None if jti else token, who=decision.agent,
                token_id=jti, authenticated=jti is not None, context={"server": decision.server, "tool": decision.tool,
                                                      "checks_failed": ",".join(decision.checks_failed),
                                                      **(context or {})},
            )
        if self._audited is not None:
            if jti is None:
                _, jti = unverified_ids(token)
            body = {"iat": int(epoch(None)), "passport_jti": jti, **decision.to_dict()}
            body.pop("details")
            sign_jwt(self._audited, body, typ=DECISION_TYP)


def _passport_of(c: dict[str, Any], kid: str) -> Passport:
    """The Passport of verified claims, with the checks of `verify_passport` on their shape."""
    for name in ("sub", "name", "stage", "jti", "code_hash"):
        if not isinstance(c.get(name), str) or not c[name]:
            raise TokenInvalid(f"passport claim {name!r} must be a non-empty string")
    score, scopes, cnf = c.get("trust_score"), c.get("scopes"), c.get("cnf")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        raise TokenInvalid("passport claim 'trust_score' must be an integer from 0 to 100")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenInvalid("passport claim 'scopes' must be a list of strings")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise TokenInvalid("passport claim 'cnf' must hold a 'jwk' object (RFC 7800)")
    try:
        agent_key = PublicKey.from_jwk(cnf["jwk"])
    except KeyplaneError as e:
        raise TokenInvalid(f"passport cnf.jwk is not a usable public key: {e}") from e
    issued, expires = from_epoch(c.get("iat", "x")), from_epoch(c.get("exp", "x"))
    if issued is None or expires is None:
        raise TokenInvalid("passport iat / exp missing or out of range")
    iss = c.get("iss")
    return Passport(c["sub"], c["name"], agent_key, c["code_hash"], c["stage"], score, tuple(scopes),
                    iss if isinstance(iss, str) else None, c["jti"], issued, expires, kid, c)


def _issuer_audience(claims: Mapping[str, Any], issuer: str | None, audience: str | None) -> str:
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenInvalid(f"issuer mismatch: passport iss is {str(claims.get('iss'))[:80]!r}")
    aud = claims.get("aud")
    if aud is not None or audience is not None:
        listed = [aud] if isinstance(aud, str) else aud
        if audience is None or not isinstance(listed, list) or audience not in listed:
            raise TokenInvalid(f"audience mismatch: passport aud is {str(aud)[:80]!r}")
    return "ok"


def _not_revoked(store: RevocationCheck, kind: str, names: Iterable[str], issued: float) -> str:
    for name in names:
        record = subject_revocation(store, kind, name, issued)
        if record is not None:
            label = "agent" if kind == SUBJECT else "group"
            raise SubjectRevoked(f"{label} {name[:80]!r} is revoked ({record.reason[:120]})")
    return "not revoked"
