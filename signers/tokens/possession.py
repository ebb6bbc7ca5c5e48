"""Proof of possession (``typ: pop+jwt``): the agent signs the verifier's challenge with its own key.

The verifier sends a `Challenge` (a 256-bit nonce for one audience); the agent answers with
`prove_possession`; `verify_possession` checks the answer against the key the passport
names, so a stolen passport alone is worth nothing. Each challenge answers once: the nonce
is consumed in a `ReplayCache` (by default the durable SQLite cache of
`signers.tokens.replay`), and a second proof for it raises TokenReplayed.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..clock import DEFAULT_LEEWAY, duration, epoch
from ..errors import ConfigError, TokenExpired, TokenInvalid, TokenReplayed
from .issued_claims import issued_string, ttl_seconds
from .jws_sign import sign_jwt
from .jws_verify import verify_jwt
from .passport_model import Passport
from .replay import ReplayCache, default_replay_cache
from .token_types import POP_TYP

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["Challenge", "make_challenge", "prove_possession", "verify_possession"]


@dataclass(frozen=True)
class Challenge:
    """What a verifier sends an agent: a fresh nonce for one audience (the verifier itself)."""

    nonce: str
    audience: str
    issued_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"nonce": self.nonce, "aud": self.audience, "iat": int(self.issued_at)}


def make_challenge(audience: str, *, now: datetime | float | None = None) -> Challenge:
    """A challenge with a 256-bit random nonce; keep it until the proof comes back.

    Raises ConfigError for an empty or over-long audience or a bad `now`.
    """
    issued_string(audience, "challenge audience")
    return Challenge(secrets.token_urlsafe(32), audience, epoch(now))


def prove_possession(
    agent_signer: Signer,
    challenge: Challenge,
    *,
    sub: str | None = None,
    ttl: float = 60,
    now: datetime | float | None = None,
) -> str:
    """The agent's answer: a short JWT over the challenge, signed with the key its passport names.

    Raises ConfigError for a bad ttl / now / sub, and what the Signer raises.
    """
    issued = int(epoch(now))
    claims: dict[str, Any] = {"aud": challenge.audience, "nonce": challenge.nonce, "iat": issued}
    claims["exp"] = issued + ttl_seconds(ttl)
    if sub is not None:
        claims["sub"] = issued_string(sub, "proof sub")
    return sign_jwt(agent_signer, claims, typ=POP_TYP)


def verify_possession(
    proof: str | bytes,
    passport: Passport,
    challenge: Challenge,
    *,
    max_age: float = 120,
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
    replay_cache: ReplayCache | None = None,
) -> None:
    """Check that `proof` answers `challenge`, signed by the passport's ``cnf`` key, for the first time.

    Raises TokenInvalid (wrong key, nonce or agent), TokenExpired (the proof or the
    challenge has expired), TokenReplayed (the challenge was answered before), ConfigError
    for bad options or a `passport` that is not a Passport, and what the replay cache
    raises when it cannot answer.
    """
    if not isinstance(passport, Passport):
        raise ConfigError(f"verify_possession needs the verified Passport, not {type(passport).__name__}")
    skew, age = duration(leeway, "leeway"), duration(max_age, "max_age")
    issued_at = duration(challenge.issued_at, "challenge issued_at")  # a NaN would switch the age check off
    verified = verify_jwt(
        proof,
        passport.agent_key,
        typ=POP_TYP,
        audience=challenge.audience,
        require=("exp", "iat", "nonce"),
        leeway=skew,
        now=now,
    )
    nonce = verified.claims["nonce"]
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), challenge.nonce.encode()):
        raise TokenInvalid("proof of possession answers a different challenge (nonce mismatch)")
    if epoch(now) - issued_at > age + skew:
        raise TokenExpired("proof of possession answers a challenge that has expired")
    sub = verified.claims.get("sub")
    if sub is not None and sub != passport.sub:
        raise TokenInvalid("proof of possession is for another agent (sub mismatch)")
    cache = replay_cache if replay_cache is not None else default_replay_cache()
    if not cache.consume(f"pop-nonce:{challenge.audience}:{challenge.nonce}", issued_at + age + skew):
        raise TokenReplayed("this challenge was already answered: make a new challenge for every proof")
