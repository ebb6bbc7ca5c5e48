"""The rows of a report and the steps that fill them, in the order they run.

A step is the unit the supervisor gives a deadline and restarts after: if the worker
dies or hangs inside one, every cell of that step not yet filled becomes a FAIL naming
the signal or the deadline, and a fresh worker goes on with the next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .specs import Spec

__all__ = [
    "CHECKS",
    "CONTRACT_CHECKS",
    "PARENT_CHECKS",
    "PROTOCOL_CHECKS",
    "STORE",
    "STORE_CHECKS",
    "Step",
    "plan",
    "slug",
]

STORE = "store"  # the `spec` of rows that judge the store as a whole

# Per key spec, in the order of the matrix columns.
CHECKS = (
    "create",
    "open",
    "public-key",
    "key-id",
    "sign-verify",
    "signature-format",
    "negatives",
    "algorithms",
    "deterministic",
    "duplicate-create",
    "list-keys",
    "threads",
    "async",
    "event-loop",
    "delete",
)
# The up-front contract check: one row per member a store or signer must have.
CONTRACT_CHECKS = (
    "contract:store.uri",
    "contract:store.capabilities",
    "contract:store.from_uri",
    "contract:store.list_keys",
    "contract:signer.uri",
    "contract:signer.key_id",
    "contract:signer.algorithm",
    "contract:signer.public_key",
    "contract:signer.sign",
)
# One row per optional-capability Protocol of signers.signer (tested only when implemented).
PROTOCOL_CHECKS = ("rotate", "disable", "import", "sign-digest", "sign-many", "native-async")
# Judged by the supervising process from what the workers reported (no store call).
PARENT_CHECKS = ("nonce-reuse", "secrets")
STORE_CHECKS = (
    *CONTRACT_CHECKS,
    "listing",
    "unknown-key",
    "bad-credentials",
    "unreachable",
    "replaced-key",
    *PROTOCOL_CHECKS,
    "prehash",
    *PARENT_CHECKS,
)


@dataclass(frozen=True)
class Step:
    """One unit of work for the worker: `name` (what it runs), the cells it fills, its deadline weight."""

    name: str
    cells: tuple[tuple[str, str], ...]
    spec: str | None = None
    weight: float = 1.0  # the deadline is weight x the per-check deadline


def plan(specs: Sequence[Spec], page: int) -> list[Step]:
    """Every step of a run over `specs`, in order; `page` is how many extra keys the listing makes."""
    names = [s.value for s in specs]
    steps = [Step("contract", tuple((STORE, c) for c in CONTRACT_CHECKS), weight=2.0)]
    for spec in names:
        for check in ("create", "open", "sign-verify", "signature-format", "negatives", "algorithms",
                      "deterministic", "duplicate-create"):
            steps.append(Step(check, ((spec, check),), spec=spec))
    listing = (*tuple((spec, c) for spec in names for c in ("public-key", "list-keys")), (STORE, "listing"))
    steps.append(Step("listing", listing, weight=2.0 + page / 5))
    for check in ("unknown-key", "bad-credentials", "unreachable"):
        steps.append(Step(check, ((STORE, check),)))
    concurrency = tuple((spec, c) for spec in names for c in ("threads", "async", "event-loop"))
    steps.append(Step("concurrency", concurrency, weight=0.0))  # weight 0: the supervisor sizes it
    for spec in names:
        steps.append(Step("key-id", ((spec, "key-id"),), spec=spec))
    for check in ("replaced-key", *PROTOCOL_CHECKS, "prehash"):
        steps.append(Step(check, ((STORE, check),), weight=2.0))
    for spec in names:  # each delete also re-opens every key not yet deleted: deletion must be precise
        steps.append(Step("delete", ((spec, "delete"),), spec=spec, weight=2.0))
    return steps


def slug(spec: Spec) -> str:
    """The spec as a key-name part every service accepts (lower-case letters, digits, '-')."""
    out = "".join(c if c.isalnum() else "-" for c in spec.value.lower())
    return "-".join(part for part in out.split("-") if part)
