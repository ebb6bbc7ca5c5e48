"""Action tokens with claims a verifier can read, and verification that returns the parameters.

Same token as `signers.passport.sign_action` (``typ: action+jwt``, ``action``,
``params_hash``), so `verify_action` still accepts it, plus:

- readable claims (``authorized_by``, ``to``, ``amount`` ...) at the top level, alongside
  ``params_hash``, for a verifier that decides on them; registered and action-token claim
  names cannot be overwritten;
- optionally the parameters themselves (``params``), bound by ``params_hash``;
- the agent's groups (``grp``), for group revocation.

`verify_agent_action` binds exactly when given ``params=`` (a mismatch is refused, as
before); without it, it returns the embedded parameters (checked against ``params_hash``)
or None, and the readable claims, for the caller to decide.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack

from ..clock import from_epoch
from ..errors import TokenError, TokenInvalid
from ..jose import KeySource, sign_jwt, verify_jwt
from ..passport import ACTION_TYP, params_hash
from ..tokens.action import ActionArguments, ActionChecks, action_claims
from .errors import PolicyError
from .events import RejectionEvents, report_to
from .revocation import check_subject

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["AgentAction", "sign_agent_action", "verify_agent_action"]

_RESERVED = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "action", "params_hash", "params",
                       "passport_jti", "grp", "cnf"})


@dataclass(frozen=True)
class AgentAction:
    """A verified action token: the grant, its readable claims, and its parameters when known."""

    sub: str
    action: str
    params_hash: str
    params: dict[str, Any] | None
    readable: dict[str, Any]
    groups: tuple[str, ...]
    jti: str
    issued_at: datetime
    expires_at: datetime
    signer_kid: str
    claims: dict[str, Any]


def sign_agent_action(
    signer: Signer,
    sub: str,
    action: str,
    params: Mapping[str, Any],
    *,
    claims: Mapping[str, Any] | None = None,
    include_params: bool = False,
    groups: Iterable[str] = (),
    ttl: float | timedelta = 300,
    **grant: Unpack[ActionArguments],
) -> str:
    """An action token for `sub` to do `action` with exactly `params`, with readable `claims`.

    `grant` holds the token's other claims (`ActionArguments`: iss, aud, jti, passport_jti, now). Raises PolicyError for an empty sub / action, params that are
    not a mapping, a readable claim that would overwrite an action-token claim; ConfigError
    as `signers.passport.sign_action` does; and what the Signer raises.
    """
    for label, value in (("sub", sub), ("action", action)):
        if not isinstance(value, str) or not value:
            raise PolicyError(f"action token {label} must be a non-empty string")
    if not isinstance(params, Mapping):
        raise PolicyError("action params must be a JSON object (a mapping)")
    body = action_claims(sub, action, params, ttl=ttl, **grant)
    if include_params:
        body["params"] = dict(params)
    group_list = sorted(set([groups] if isinstance(groups, str) else groups))
    if group_list:
        body["grp"] = group_list
    for key, value in (claims or {}).items():
        if key in _RESERVED:
            raise PolicyError(f"readable claim {key!r} would overwrite an action-token claim")
        body[key] = value
    return sign_jwt(signer, body, typ=ACTION_TYP)


def verify_agent_action(
    token: str | bytes,
    keys: KeySource,
    *,
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    events: RejectionEvents | None = None,
    context: Mapping[str, Any] | None = None,
    **checks: Unpack[ActionChecks],
) -> AgentAction:
    """Verify an action token; `action` / `params`, when given, must match exactly.

    `checks` are `verify_action`'s (revocations, subject, audience, issuer, leeway, now).
    Also refuses a revoked jti, agent or group (with ``revocations``). Raises TokenError
    subclasses (reported to `events`).
    """
    who: str | None = None
    revocations = checks.get("revocations")
    try:
        verified = verify_jwt(token, keys, typ=ACTION_TYP, require=("sub", "exp", "iat", "jti", "action", "params_hash"),
                              **checks)
        c = verified.claims
        who = c["sub"] if isinstance(c["sub"], str) else None
        result = _grant(c, verified.kid, action, params)
        if revocations is not None:
            check_subject(revocations, result.sub, result.groups, result.issued_at.timestamp())
    except TokenError as e:
        report_to(events, "action", e, token=token, who=who, authenticated=who is not None, context=context)
        raise
    return result


def _grant(c: dict[str, Any], kid: str, action: str | None, params: Mapping[str, Any] | None) -> AgentAction:
    for name in ("sub", "jti", "action", "params_hash"):
        if not isinstance(c[name], str):
            raise TokenInvalid(f"action token claim {name!r} must be a string")
    if action is not None and c["action"] != action:
        raise TokenInvalid(f"action mismatch: token authorises {c['action'][:80]!r}, not {action[:80]!r}")
    embedded = c.get("params")
    if embedded is not None and (not isinstance(embedded, dict)
                                 or not hmac.compare_digest(params_hash(embedded), c["params_hash"])):
        raise TokenInvalid("action token params do not match its params_hash")
    if params is not None and not hmac.compare_digest(params_hash(params), c["params_hash"]):
        raise TokenInvalid("params mismatch: the action's parameters differ from those the token authorises")
    groups = c.get("grp", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise TokenInvalid("action token claim 'grp' must be a list of names")
    issued, expires = from_epoch(c["iat"]), from_epoch(c["exp"])
    if issued is None or expires is None:
        raise TokenInvalid("action token iat / exp out of range")
    known = dict(params) if params is not None else embedded
    readable = {k: v for k, v in c.items() if k not in _RESERVED}
    return AgentAction(c["sub"], c["action"], c["params_hash"], known, readable, tuple(groups), c["jti"],
                       issued, expires, kid, c)
