"""Trust scores computed from evidence, not typed in.

A `TrustScorer` turns `TrustInputs` (stage, code attestation, execution history, rejections
in a window, group state) into an integer 0-100. The passport carries the result as the
``trust`` claim ``{score, computed_at, scorer, inputs}``, where ``inputs`` is the RFC 8785
digest of the inputs, so anyone holding the inputs can recompute and compare
(`TrustScore.matches`), and a verifier can tell a computed score from a typed one.

The default scorer (``keyplane-default/1``), integers only, so it is deterministic:

- stage: INTAKE 0, VETTING 10, TESTING 20, DEV_APPROVED 30, PROD_APPROVED 40, ACTIVE 50;
  SUSPENDED, RETIRED or an unknown stage make the whole score 0;
- code attestation: +20 when the agent's code_hash matches an attested build;
- execution history: +1 for every 5 receipts verified (at most +20), -10 per failed or
  tampered receipt (at most -40);
- rejections in the window: -5 each (at most -30);
- group state: -10 per revoked member of the agent's groups (at most -30);
- +10 for a clean record (some receipts verified, none failed, no rejections, no
  revoked group member); the result is clamped to 0-100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..clock import epoch
from ..errors import TokenInvalid
from ..revocation import RevocationCheck
from .canonical import digest
from .errors import PolicyError
from .revocation import SUBJECT, subject_revocation

__all__ = [
    "DefaultTrustScorer",
    "TrustInputs",
    "TrustScore",
    "TrustScorer",
    "compute_trust",
    "revoked_members",
]


@dataclass(frozen=True)
class TrustInputs:
    """Everything a score is computed from; `digest()` names exactly these values."""

    stage: str
    code_attested: bool = False
    receipts_verified: int = 0
    receipts_failed: int = 0
    rejections: int = 0
    revoked_group_members: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.stage, str) or not isinstance(self.code_attested, bool):
            raise PolicyError("trust inputs: stage must be a string and code_attested a bool")
        for name in ("receipts_verified", "receipts_failed", "rejections", "revoked_group_members"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PolicyError(f"trust inputs: {name} must be a non-negative integer")

    @classmethod
    def collect(
        cls,
        stage: str,
        code_hash: str,
        *,
        attested_builds: Iterable[str] = (),
        receipts_verified: int = 0,
        receipts_failed: int = 0,
        rejections: int = 0,
        revoked_group_members: int = 0,
    ) -> TrustInputs:
        """Inputs from an agent's stage and code_hash plus the evidence counts."""
        return cls(stage, code_hash in set(attested_builds), receipts_verified, receipts_failed, rejections,
                   revoked_group_members)

    @classmethod
    def from_evidence(
        cls,
        agent: str,
        stage: str,
        code_hash: str,
        *,
        attested_builds: Iterable[str] = (),
        receipt_checks: Iterable[Any] = (),
        rejections: int = 0,
        revocations: RevocationCheck | None = None,
        group_members: Iterable[str] = (),
    ) -> TrustInputs:
        """Inputs from the evidence itself: `OutputCheck`s of the agent's receipts (VALID counts as
        verified, TAMPERED as failed), rejections in the window (`AutoRevoke.recent`), and the
        other members of its groups checked against `revocations`."""
        checks = list(receipt_checks)
        verified = sum(1 for c in checks if getattr(c, "valid", False))
        revoked = revoked_members(revocations, group_members, exclude=agent) if revocations is not None else 0
        return cls.collect(stage, code_hash, attested_builds=attested_builds, receipts_verified=verified,
                           receipts_failed=len(checks) - verified, rejections=rejections,
                           revoked_group_members=revoked)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        return digest(self.to_dict())


@runtime_checkable
class TrustScorer(Protocol):
    """Computes 0-100 from inputs; `version` goes into the claim, so a change of formula is visible."""

    version: str

    def score(self, inputs: TrustInputs) -> int: ...


_STAGE_POINTS = {"INTAKE": 0, "VETTING": 10, "TESTING": 20, "DEV_APPROVED": 30, "PROD_APPROVED": 40, "ACTIVE": 50}


class DefaultTrustScorer:
    """The documented default formula (see the module docstring)."""

    version = "keyplane-default/1"

    def score(self, inputs: TrustInputs) -> int:
        base = _STAGE_POINTS.get(inputs.stage)
        if base is None:
            return 0
        total = base
        total += 20 if inputs.code_attested else 0
        total += min(20, inputs.receipts_verified // 5)
        total -= min(40, 10 * inputs.receipts_failed)
        total -= min(30, 5 * inputs.rejections)
        total -= min(30, 10 * inputs.revoked_group_members)
        clean = (inputs.receipts_verified > 0 and not inputs.receipts_failed and not inputs.rejections
                 and not inputs.revoked_group_members)
        total += 10 if clean else 0
        return max(0, min(100, total))


@dataclass(frozen=True)
class TrustScore:
    """A computed score: what a passport's ``trust`` claim holds."""

    score: int
    computed_at: int
    scorer: str
    inputs: str

    def claim(self) -> dict[str, Any]:
        return {"score": self.score, "computed_at": self.computed_at, "scorer": self.scorer, "inputs": self.inputs}

    @classmethod
    def from_claim(cls, claim: object) -> TrustScore:
        """Parse a ``trust`` claim; TokenInvalid when malformed."""
        if not isinstance(claim, Mapping):
            raise TokenInvalid("passport claim 'trust' must be an object")
        score, at, scorer, inputs = (claim.get(k) for k in ("score", "computed_at", "scorer", "inputs"))
        if (
            isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100
            or isinstance(at, bool) or not isinstance(at, int)
            or not isinstance(scorer, str) or not isinstance(inputs, str) or not inputs.startswith("sha256:")
        ):
            raise TokenInvalid("passport claim 'trust' must hold score (0-100), computed_at, scorer and inputs")
        return cls(score, at, scorer, inputs)

    def matches(self, inputs: TrustInputs, scorer: TrustScorer | None = None) -> bool:
        """True when `inputs` are the ones digested here and `scorer` (default) gives the same score."""
        used = scorer or DefaultTrustScorer()
        return inputs.digest() == self.inputs and used.version == self.scorer and used.score(inputs) == self.score


def compute_trust(
    inputs: TrustInputs,
    scorer: TrustScorer | None = None,
    *,
    now: datetime | float | None = None,
) -> TrustScore:
    """Score `inputs` (with the default scorer unless given); PolicyError for a scorer outside 0-100."""
    used = scorer or DefaultTrustScorer()
    value = used.score(inputs)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise PolicyError(f"trust scorer {used.version!r} returned {value!r}, not an integer 0-100")
    return TrustScore(value, int(epoch(now)), used.version, inputs.digest())


def revoked_members(revocations: RevocationCheck, members: Iterable[str], *, exclude: str | None = None) -> int:
    """How many of a group's `members` (other than `exclude`) are revoked as subjects now."""
    now = epoch(None)
    return sum(1 for m in set(members) if m != exclude and subject_revocation(revocations, SUBJECT, m, now) is not None)
