"""Action tokens (``typ: action+jwt``): a short-lived grant to perform one action with exact parameters.

``params_hash`` is the SHA-256 of the RFC 8785 canonical JSON of the parameters, so changing
``to`` or ``amount`` breaks the token. Tokens are short-lived (300 s by default), revocable
by ``jti`` and, with ``single_use=True``, good for one verification only: the ``jti`` is
consumed atomically in a `ReplayCache` (by default the durable SQLite cache, see
`signers.tokens.replay`), so a replayed token raises TokenReplayed.

An action token signed by the agent itself is verified against its passport: pass the
`Passport` as `keys`, and the token's ``sub`` must be the passport's (a token an agent
signed for another subject is refused).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from ..clock import DEFAULT_LEEWAY, duration
from ..errors import ConfigError, TokenInvalid, TokenReplayed
from ..keys import b64url_encode
from .canonical import canonical_json
from .issued_claims import claim_time, issued_string, registered_claims, verified_string
from .jwk import KeySource
from .jws_sign import sign_jwt
from .jws_verify import verify_jwt
from .passport_model import Passport
from .replay import ReplayCache, default_replay_cache
from .token_types import ACTION_TYP

if TYPE_CHECKING:
    from ..signer import Signer
    from .revocation import RevocationCheck

__all__ = ["ActionArguments", "ActionChecks", "ActionGrant", "action_claims", "params_hash", "sign_action", "verify_action"]


def params_hash(params: Mapping[str, Any]) -> str:
    """The ``params_hash`` claim: base64url SHA-256 of the RFC 8785 JSON of `params`.

    Raises ConfigError when `params` is not RFC 8785 serialisable (NaN, integers beyond 2**53).
    """
    return b64url_encode(hashlib.sha256(canonical_json(params)).digest())


@dataclass(frozen=True)
class ActionGrant:
    """A verified action token: who may do which action, until when."""

    sub: str
    action: str
    params_hash: str
    jti: str
    expires_at: datetime
    signer_kid: str
    claims: dict[str, Any]


class ActionArguments(TypedDict, total=False):
    """The claim arguments of an action token besides sub / action / params / ttl (`action_claims`).

    ``iss``, ``aud``, ``jti`` (default a random UUID), ``passport_jti`` (links the grant to
    a passport) and ``now``.
    """

    iss: str | None
    aud: str | list[str] | None
    jti: str | None
    passport_jti: str | None
    now: datetime | float | None


def sign_action(
    signer: Signer,
    sub: str,
    action: str,
    params: Mapping[str, Any],
    ttl: float | timedelta = 300,
    *,
    alg: str | None = None,
    **arguments: Unpack[ActionArguments],
) -> str:
    """A short-lived token authorising `sub` to perform `action` with exactly `params`.

    The signer is the authority granting the action (or the agent itself, verified then
    against its passport's ``cnf`` key). The other claims are `ActionArguments`
    (``passport_jti`` links the grant to a passport). Raises ConfigError for empty or
    over-long strings, params that are not a JSON object, a bad ttl / now; and what the
    Signer raises.
    """
    return sign_jwt(signer, action_claims(sub, action, params, ttl=ttl, **arguments), typ=ACTION_TYP, alg=alg)


def action_claims(
    sub: str,
    action: str,
    params: Mapping[str, Any],
    *,
    ttl: float | timedelta = 300,
    iss: str | None = None,
    aud: str | list[str] | None = None,
    jti: str | None = None,
    passport_jti: str | None = None,
    now: datetime | float | None = None,
) -> dict[str, Any]:
    """The claims of an action token (registered claims, ``action``, ``params_hash``, ``passport_jti``), checked.

    Raises ConfigError as `sign_action` does.
    """
    issued_string(sub, "action token sub")
    issued_string(action, "action token action")
    if not isinstance(params, Mapping):
        raise ConfigError("action params must be a JSON object (a mapping)")
    claims = registered_claims("action token", iss=iss, sub=sub, aud=aud, ttl=ttl, now=now, jti=jti)
    claims["action"] = action
    claims["params_hash"] = params_hash(params)
    if passport_jti is not None:
        claims["passport_jti"] = issued_string(passport_jti, "passport_jti")
    return claims


class ActionChecks(TypedDict, total=False):
    """`verify_action`'s claim checks, by keyword, for a caller that hands them on (the agent layer).

    ``revocations``, ``subject``, ``audience``, ``issuer``, ``leeway`` and ``now``, as
    `verify_action` documents them (they are `verify_jwt`'s).
    """

    revocations: RevocationCheck | None
    subject: str | None
    audience: str | Iterable[str] | None
    issuer: str | Iterable[str] | None
    leeway: float
    now: datetime | float | None


def verify_action(
    token: str | bytes,
    keys: KeySource | Passport,
    action: str,
    params: Mapping[str, Any],
    *,
    revocations: RevocationCheck | None = None,
    subject: str | None = None,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
    single_use: bool = False,
    replay_cache: ReplayCache | None = None,
) -> ActionGrant:
    """Verify that `token` authorises exactly `action` with exactly `params`.

    `keys` is the granting authority's key set, or the agent's `Passport` for a token the
    agent signed itself (then ``sub`` must be the passport's). With `single_use`, the
    ``jti`` is consumed in `replay_cache` (default: `default_replay_cache()`) once every
    other check has passed. Raises TokenInvalid / TokenExpired / TokenRevoked when refused,
    TokenReplayed when a single-use token comes back, ConfigError for bad options, and what
    the stores raise when they cannot answer (StateCorrupt, BackendUnavailable).
    """
    duration(leeway, "leeway")
    if isinstance(keys, Passport):
        if subject is not None and subject != keys.sub:
            raise ConfigError("subject= differs from the passport's sub")
        subject, keys = keys.sub, keys.agent_key
    verified = verify_jwt(
        token,
        keys,
        typ=ACTION_TYP,
        audience=audience,
        issuer=issuer,
        subject=subject,
        require=("sub", "exp", "jti", "action", "params_hash"),
        leeway=leeway,
        now=now,
        revocations=revocations,
    )
    c = verified.claims
    if c["action"] != action:
        raise TokenInvalid(f"action mismatch: token authorises {str(c['action'])[:80]!r}, not {str(action)[:80]!r}")
    if not isinstance(c["params_hash"], str) or not hmac.compare_digest(c["params_hash"], params_hash(params)):
        raise TokenInvalid("params mismatch: the action's parameters differ from those the token authorises")
    sub, jti = verified_string(c, "sub", "action token"), verified_string(c, "jti", "action token")
    if single_use:
        cache = replay_cache if replay_cache is not None else default_replay_cache()
        key = f"action-jti:{verified.key.public_key.key_id}:{jti}"
        if not cache.consume(key, float(c["exp"]) + duration(leeway, "leeway")):
            raise TokenReplayed(f"action token {jti[:80]!r} was already used")
    return ActionGrant(sub, action, c["params_hash"], jti, claim_time(c["exp"]), verified.kid, c)
