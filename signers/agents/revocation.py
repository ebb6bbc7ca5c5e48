"""Subject and group revocation on top of any revocation store or signed revocation list.

A revoked agent (``kind="sub"``, id = the agent's ``sub``) or group (``kind="grp"``, id =
the group name) refuses every passport and action token of that agent / group issued up
to its reinstatement, not only one ``jti``. The records are ordinary revocation entries,
so they live in any `RevocationStore` (memory, SQLite, PostgreSQL, Redis) and travel in a
signed `RevocationList` unchanged.

``revoked_after`` semantics: a revocation at time T refuses the subject's tokens; a
reinstatement (``kind="sub-reinstated"`` / ``"grp-reinstated"``, same id) at time R lifts
it for tokens issued after R only (``iat > R``); anything issued up to R stays refused.
Stores never delete and ``revoke`` is idempotent, so each revoke / reinstate cycle uses
the next generation id: ``name``, ``name#2``, ``name#3`` ...
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..clock import epoch, utc
from ..revocation import Revocation, RevocationCheck, RevocationStore
from .errors import PolicyError, SubjectRevoked

__all__ = [
    "GROUP",
    "SUBJECT",
    "check_subject",
    "reinstate",
    "revoke_group",
    "revoke_subject",
    "subject_revocation",
]

SUBJECT = "sub"
GROUP = "grp"
_REINSTATED = "-reinstated"
_MAX_GENERATIONS = 1000


def _generation_id(name: str, generation: int) -> str:
    return name if generation == 1 else f"{name}#{generation}"


def _state(check: RevocationCheck, kind: str, name: str) -> tuple[int, Revocation | None, Revocation | None]:
    """(generation, its revocation, its reinstatement) of the latest cycle; (0, None, None) if never revoked."""
    latest: tuple[int, Revocation | None, Revocation | None] = (0, None, None)
    for generation in range(1, _MAX_GENERATIONS + 1):
        ident = _generation_id(name, generation)
        revoked = check.get(ident, kind=kind)
        if revoked is None:
            return latest
        latest = (generation, revoked, check.get(ident, kind=kind + _REINSTATED))
        if latest[2] is None:
            return latest
    return latest


def subject_revocation(check: RevocationCheck, kind: str, name: str, issued_at: float) -> Revocation | None:
    """The revocation that refuses a token of `name` issued at `issued_at`, or None when it stands.

    A token is refused when it was issued up to the latest reinstatement, or when the latest
    revocation is not reinstated. Raises StateCorrupt / BackendUnavailable from the store.
    """
    _, revoked, reinstated = _state(check, kind, name)
    if revoked is None:
        return None
    if reinstated is None or issued_at <= reinstated.revoked_at.timestamp():
        return revoked
    return None


def check_subject(
    check: RevocationCheck,
    sub: str,
    groups: Iterable[str],
    issued_at: float,
) -> None:
    """SubjectRevoked if the agent `sub` or any of its `groups` is revoked for a token issued at `issued_at`."""
    targets = [(SUBJECT, sub), *((GROUP, g) for g in groups)]
    for kind, name in targets:
        record = subject_revocation(check, kind, name, issued_at)
        if record is not None:
            label = "agent" if kind == SUBJECT else "group"
            raise SubjectRevoked(
                f"{label} {name[:80]!r} is revoked ({record.reason[:120]}, at {record.revoked_at.isoformat()})"
            )


def _revoke(store: RevocationStore, kind: str, name: str, reason: str, at: datetime | None) -> Revocation:
    if not isinstance(name, str) or not name or "#" in name:
        raise PolicyError(f"a {kind} to revoke must be a non-empty name without '#'")
    generation, revoked, reinstated = _state(store, kind, name)
    if revoked is not None and reinstated is None:
        return revoked  # already revoked: idempotent, like every store
    return store.revoke(_generation_id(name, generation + 1), kind=kind, reason=reason, at=utc(at))


def revoke_subject(store: RevocationStore, sub: str, *, reason: str = "unspecified", at: datetime | None = None) -> Revocation:
    """Revoke every token of agent `sub` (idempotent while it stays revoked)."""
    return _revoke(store, SUBJECT, sub, reason, at)


def revoke_group(store: RevocationStore, group: str, *, reason: str = "unspecified", at: datetime | None = None) -> Revocation:
    """Revoke every token carrying `group` in its ``grp`` claim."""
    return _revoke(store, GROUP, group, reason, at)


def reinstate(
    store: RevocationStore, kind: str, name: str, *, reason: str = "reinstated", at: datetime | None = None
) -> Revocation:
    """Lift the current revocation of a subject / group for tokens issued after `at` (now)."""
    if kind not in (SUBJECT, GROUP):
        raise PolicyError(f"reinstate kind must be {SUBJECT!r} or {GROUP!r}")
    generation, revoked, reinstated = _state(store, kind, name)
    if revoked is None:
        raise PolicyError(f"{kind} {name[:80]!r} is not revoked")
    if reinstated is not None:
        return reinstated
    when = utc(at)
    if epoch(when) < revoked.revoked_at.timestamp():
        raise PolicyError("a reinstatement cannot come before the revocation it lifts")
    return store.revoke(_generation_id(name, generation), kind=kind + _REINSTATED, reason=reason, at=when)
