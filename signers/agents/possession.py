"""Proof of possession with fresh challenges and single-use nonces.

`signers.passport.verify_possession` checks that a proof answers a challenge with the
passport's ``cnf`` key; what it cannot know is whether the challenge was this verifier's
and whether the proof was used before. `ChallengeBook` keeps both: it issues challenges,
remembers each until it expires, and consumes a nonce on its first successful use, so

- a proof for a challenge this verifier never issued (or that expired) is refused,
- a proof presented a second time is refused with `ProofReplayed` (a `TokenReplayed`),
  for as long as the challenge lives (after that it is refused as unknown anyway).

The book is process-local and thread-safe, bounded by `max_outstanding` (the oldest
challenges are dropped first, so a flood of challenge requests cannot grow memory).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from ..clock import DEFAULT_LEEWAY, duration, epoch
from ..errors import TokenInvalid
from ..jose import parse_jws
from ..passport import Challenge, Passport, make_challenge, verify_possession
from .errors import PolicyError, ProofReplayed

__all__ = ["ChallengeBook"]


class ChallengeBook:
    """Issues challenges for one audience and accepts each answer once."""

    def __init__(self, audience: str, *, max_age: float = 120, max_outstanding: int = 100_000) -> None:
        if not isinstance(audience, str) or not audience:
            raise PolicyError("a challenge book needs a non-empty audience (the verifier's name)")
        if isinstance(max_outstanding, bool) or not isinstance(max_outstanding, int) or max_outstanding < 1:
            raise PolicyError("max_outstanding must be a positive integer")
        self.audience = audience
        self.max_age = duration(max_age, "max_age", allow_zero=False)
        self.max_outstanding = max_outstanding
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Challenge] = OrderedDict()
        self._used: OrderedDict[str, float] = OrderedDict()  # nonce -> when its challenge expires

    def issue(self, *, now: datetime | float | None = None) -> Challenge:
        """A fresh challenge to send to the agent."""
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
        TokenExpired (challenge too old). Nothing is consumed unless the proof verifies.
        """
        nonce = _claimed_nonce(proof)
        current = epoch(now)
        with self._lock:
            self._expire(current)
            if nonce in self._used:
                raise ProofReplayed("proof of possession replayed: its challenge was already answered")
            challenge = self._open.get(nonce)
        if challenge is None:
            raise TokenInvalid("proof of possession answers no challenge this verifier issued (or it expired)")
        verify_possession(proof, passport, challenge, max_age=self.max_age, leeway=leeway, now=now)
        with self._lock:
            if self._open.pop(nonce, None) is None:  # a concurrent consume won the race
                raise ProofReplayed("proof of possession replayed: its challenge was already answered")
            self._used[nonce] = challenge.issued_at + self.max_age + leeway
        return challenge

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


def _claimed_nonce(proof: str | bytes) -> str:
    nonce = parse_jws(proof).claims().get("nonce")  # unverified: only to find the challenge
    if not isinstance(nonce, str) or not nonce or len(nonce) > 200:
        raise TokenInvalid("proof of possession carries no nonce")
    return nonce
