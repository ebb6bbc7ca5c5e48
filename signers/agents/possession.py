"""Proof of possession with fresh challenges and single-use nonces.

`signers.passport.verify_possession` checks that a proof answers a challenge with the
passport's ``cnf`` key; what it cannot know is whether the challenge was this verifier's
and whether the proof was used before. `ChallengeBook` keeps both:

- a proof for a challenge this verifier never issued (or that expired) is refused;
- a proof presented a second time is refused with `ProofReplayed` (a `TokenReplayed`)
  for as long as the challenge lives (after that it is refused as expired anyway).

Two modes:

- **remembered** (default): the book keeps every challenge it issued until it expires, in
  this process, bounded by `max_outstanding` (the oldest are dropped first, so a flood of
  challenge requests cannot grow memory);
- **signed** (``signer=``): the nonce is itself a short JWT (``typ: pop-challenge+jwt``)
  signed by the verifier's key, so any process holding the key's public half recognises
  its own challenges without shared state; give a shared ``replay_cache`` (any object
  with ``consume(key, expires_at) -> bool``, True the first time, such as the token
  layer's SQLite replay cache) and every process of a fleet refuses a replay.

Thread-safe. Nothing is consumed unless the proof verifies.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..clock import DEFAULT_LEEWAY, duration, epoch
from ..errors import TokenError, TokenInvalid, TokenReplayed
from ..jose import JWKS, parse_jws, sign_jwt, verify_jwt
from ..passport import Challenge, Passport, make_challenge, prove_possession, verify_possession
from ..tokens.replay import MemoryReplayCache, ReplayCache
from .errors import PolicyError, ProofReplayed

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["CHALLENGE_TYP", "ChallengeBook", "ReplayCache", "answer_challenge"]

CHALLENGE_TYP = "pop-challenge+jwt"
_MAX_NONCE = 4096


class ChallengeBook:
    """Issues challenges for one audience and accepts each answer once."""

    def __init__(
        self,
        audience: str,
        *,
        max_age: float = 120,
        max_outstanding: int = 100_000,
        signer: Signer | None = None,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        if not isinstance(audience, str) or not audience:
            raise PolicyError("a challenge book needs a non-empty audience (the verifier's name)")
        if isinstance(max_outstanding, bool) or not isinstance(max_outstanding, int) or max_outstanding < 1:
            raise PolicyError("max_outstanding must be a positive integer")
        if replay_cache is not None and not callable(getattr(replay_cache, "consume", None)):
            raise PolicyError("replay_cache must have consume(key, expires_at) -> bool")
        self.audience = audience
        self.max_age = duration(max_age, "max_age", allow_zero=False)
        self.max_outstanding = max_outstanding
        self.signer = signer
        self._keys: JWKS | None = JWKS.of(signer) if signer is not None else None
        self.replay_cache = replay_cache
        # The tokens layer consumes a proof's nonce itself; this book hands it its own cache
        # (the shared one when given) so proofs never land in the process-wide default cache.
        self._nonce_cache: ReplayCache = replay_cache if replay_cache is not None else MemoryReplayCache()
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Challenge] = OrderedDict()
        self._used: OrderedDict[str, float] = OrderedDict()  # nonce -> when its challenge expires

    def issue(self, *, now: datetime | float | None = None) -> Challenge:
        """A fresh challenge to send to the agent."""
        if self.signer is not None:
            issued = int(epoch(now))
            nonce = sign_jwt(self.signer, {"aud": self.audience, "iat": issued, "exp": issued + int(self.max_age) + 1,
                                           "jti": secrets.token_urlsafe(24)}, typ=CHALLENGE_TYP)
            return Challenge(nonce, self.audience, issued)
        challenge = make_challenge(self.audience, now=now)
        with self._lock:
            self._expire(epoch(now))
            self._open[challenge.nonce] = challenge
            while len(self._open) > self.max_outstanding:
                self._open.popitem(last=False)
        return challenge

    def consume(
        self,
        proof: str | bytes,
        passport: Passport,
        *,
        leeway: float = DEFAULT_LEEWAY,
        now: datetime | float | None = None,
    ) -> Challenge:
        """Verify `proof` against the passport and one of this book's challenges, then use the nonce up.

        Raises ProofReplayed (used before), TokenInvalid (unknown challenge, wrong key),
        TokenExpired (challenge too old), and what the replay cache raises when it cannot answer.
        """
        nonce = _claimed_nonce(proof)
        current = epoch(now)
        with self._lock:
            self._expire(current)
            if nonce in self._used:
                raise ProofReplayed("proof of possession replayed: its challenge was already answered")
            challenge = self._open.get(nonce) if self.signer is None else None
        if self.signer is not None:
            challenge = self._signed_challenge(nonce, leeway, now)
        if challenge is None:
            raise TokenInvalid("proof of possession answers no challenge this verifier issued (or it expired)")
        try:
            verify_possession(proof, passport, challenge, max_age=self.max_age, leeway=leeway, now=now,
                              replay_cache=self._nonce_cache)
        except TokenReplayed as e:  # a concurrent consume, or another verifier sharing the cache, won
            raise ProofReplayed("proof of possession replayed: its challenge was already answered") from e
        until = challenge.issued_at + self.max_age + leeway
        with self._lock:
            self._open.pop(nonce, None)
            self._used[nonce] = until
        return challenge

    def _signed_challenge(self, nonce: str, leeway: float, now: datetime | float | None) -> Challenge:
        assert self._keys is not None
        try:
            verified = verify_jwt(nonce, self._keys, typ=CHALLENGE_TYP, audience=self.audience,
                                  require=("iat", "exp", "jti"), leeway=leeway, now=now)
        except TokenError as e:
            raise TokenInvalid(f"proof of possession answers no challenge this verifier issued: {e}") from e
        iat = verified.claims["iat"]
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise TokenInvalid("challenge iat is not a time")
        return Challenge(nonce, self.audience, float(iat))

    def _expire(self, current: float) -> None:
        while self._used:
            until = next(iter(self._used.values()))
            if until >= current:
                break
            self._used.popitem(last=False)
        while self._open:
            challenge = next(iter(self._open.values()))
            if challenge.issued_at + self.max_age + DEFAULT_LEEWAY >= current:
                break
            self._open.popitem(last=False)

    def __len__(self) -> int:
        return len(self._open)


def _claimed_nonce(proof: Any) -> str:
    nonce = parse_jws(proof).claims().get("nonce")  # unverified: only to find the challenge
    if not isinstance(nonce, str) or not nonce or len(nonce) > _MAX_NONCE:
        raise TokenInvalid("proof of possession carries no nonce")
    return nonce


def answer_challenge(agent_signer: Signer, challenge: Any, *, sub: str | None = None) -> str:
    """The agent's side: a proof for a challenge as a gate serves it (``{nonce, aud, iat}`` JSON, or a Challenge).

    PolicyError when `challenge` is not one.
    """
    if not isinstance(challenge, Challenge):
        if not isinstance(challenge, dict):
            raise PolicyError("a challenge is {nonce, aud, iat}")
        nonce, aud, iat = challenge.get("nonce"), challenge.get("aud"), challenge.get("iat")
        if not isinstance(nonce, str) or not isinstance(aud, str) or isinstance(iat, bool) \
                or not isinstance(iat, int | float) or not nonce or len(nonce) > _MAX_NONCE:
            raise PolicyError("a challenge is {nonce: string, aud: string, iat: number}")
        challenge = Challenge(nonce, aud, float(iat))
    return prove_possession(agent_signer, challenge, sub=sub)
