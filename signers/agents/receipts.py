"""Execution receipts: an agent's signed record of what it did, chained into a DAG.

`sign_execution(agent_signer, input, output, parents=...)` digests the input and the output
(RFC 8785 canonical JSON, or raw bytes as given) and signs a JWT (``typ:
execution-receipt+jwt``) with claims ``input``, ``output`` (``sha256:<hex>`` each),
``parents`` (the hashes of the receipts this execution consumed), ``exec`` (the digest of
all of that plus ``ctx``) and ``ctx`` (caller context). A receipt's hash is the SHA-256 of
its compact token, so a child names its parents immutably and receipts form a DAG.

- `verify_output(receipt, output, keys, input=...)` -> `OutputCheck`: VALID, or TAMPERED
  naming what differed (``input`` / ``output``); a receipt that does not verify at all is a
  `ReceiptInvalid` error, not a verdict.
- `verify_dag(receipts, keys)` verifies every receipt and every parent link and raises
  `ReceiptParentMissing` naming the first broken edge (child -> missing parent).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ..audit import AuditedSigner, AuditLog
from ..clock import epoch, from_epoch
from ..errors import TokenError
from ..jose import KeySource, parse_jws, sign_jwt, verify_jwt
from .canonical import digest
from .errors import PolicyError, ReceiptInvalid, ReceiptParentMissing
from .events import RejectionEvents, report_to

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = [
    "RECEIPT_TYP",
    "DagCheck",
    "OutputCheck",
    "Receipt",
    "receipt_hash",
    "sign_execution",
    "verify_dag",
    "verify_output",
    "verify_receipt",
]

RECEIPT_TYP = "execution-receipt+jwt"
_MAX_PARENTS = 256


def receipt_hash(token: str) -> str:
    """``sha256:<hex>`` of a receipt's compact token: how children name it."""
    return "sha256:" + hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """A receipt token and what it says (verified only when it came from a `verify_*`)."""

    token: str
    hash: str
    agent: str | None
    input_digest: str
    output_digest: str
    parents: tuple[str, ...]
    execution: str
    context: dict[str, Any]
    issued_at: datetime | None
    kid: str | None

    @classmethod
    def parse(cls, token: str) -> Receipt:
        """Read a receipt WITHOUT verifying it (ReceiptInvalid if it is not one)."""
        try:
            jws = parse_jws(token)
            return _from_claims(token, jws.claims(), jws.kid)
        except TokenError as e:
            raise ReceiptInvalid(f"not an execution receipt: {e}") from e


def _from_claims(token: str, c: Mapping[str, Any], kid: str | None) -> Receipt:
    for name in ("input", "output", "exec"):
        if not isinstance(c.get(name), str) or not c[name].startswith("sha256:"):
            raise ReceiptInvalid(f"receipt claim {name!r} must be a 'sha256:' digest")
    parents, ctx = c.get("parents"), c.get("ctx", {})
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents) or len(parents) > _MAX_PARENTS:
        raise ReceiptInvalid("receipt claim 'parents' must be a list of receipt hashes")
    if not isinstance(ctx, dict):
        raise ReceiptInvalid("receipt claim 'ctx' must be an object")
    sub = c.get("sub")
    return Receipt(token, receipt_hash(token), sub if isinstance(sub, str) else None, c["input"], c["output"],
                   tuple(parents), c["exec"], ctx, from_epoch(c.get("iat", "x")), kid)


def _execution(input_digest: str, output_digest: str, parents: Sequence[str], ctx: Mapping[str, Any]) -> str:
    return digest({"input": input_digest, "output": output_digest, "parents": list(parents), "ctx": dict(ctx)})


def sign_execution(
    agent_signer: Signer,
    input: Any,
    output: Any,
    parents: Iterable[Receipt | str] = (),
    *,
    context: Mapping[str, Any] | None = None,
    agent: str | None = None,
    audit: AuditLog | None = None,
    now: datetime | float | None = None,
) -> Receipt:
    """Sign a receipt for one execution; `parents` are receipts (or their hashes) it consumed.

    Raises ConfigError when input, output or context is not JSON (or bytes).
    """
    parent_hashes = [p.hash if isinstance(p, Receipt) else p for p in parents]
    if len(parent_hashes) > _MAX_PARENTS or not all(isinstance(p, str) and p.startswith("sha256:")
                                                     for p in parent_hashes):
        raise PolicyError("parents must be Receipts or 'sha256:' receipt hashes")
    ctx = dict(context or {})
    input_digest, output_digest = digest(input), digest(output)
    claims: dict[str, Any] = {"iss": agent_signer.key_id}
    if agent is not None:
        claims["sub"] = agent
    claims.update({
        "iat": int(epoch(now)), "jti": str(uuid.uuid4()), "input": input_digest, "output": output_digest,
        "parents": parent_hashes, "exec": _execution(input_digest, output_digest, parent_hashes, ctx), "ctx": ctx,
    })
    signing: Signer = agent_signer
    if audit is not None:
        signing = AuditedSigner(agent_signer, audit, checkpoint_every=None,
                                context={"event": "execution-receipt", "exec": claims["exec"], "agent": agent})
    token = sign_jwt(signing, claims, typ=RECEIPT_TYP)
    return _from_claims(token, claims, agent_signer.key_id)


def verify_receipt(token: str | Receipt, keys: KeySource) -> Receipt:
    """Verify a receipt's signature and its ``exec`` digest; ReceiptInvalid otherwise."""
    text = token.token if isinstance(token, Receipt) else token
    try:
        verified = verify_jwt(text, keys, typ=RECEIPT_TYP, require=("iat", "input", "output", "parents", "exec"))
    except TokenError as e:
        raise ReceiptInvalid(f"receipt does not verify: {e}") from e
    receipt = _from_claims(text, verified.claims, verified.kid)
    expected = _execution(receipt.input_digest, receipt.output_digest, receipt.parents, receipt.context)
    if not hmac.compare_digest(expected, receipt.execution):
        raise ReceiptInvalid("receipt exec digest does not match its input, output, parents and context")
    return receipt


@dataclass(frozen=True)
class OutputCheck:
    """`verify_output`'s verdict: VALID, or TAMPERED with what differed."""

    status: Literal["VALID", "TAMPERED"]
    differed: tuple[str, ...]
    receipt: Receipt

    @property
    def valid(self) -> bool:
        return self.status == "VALID"


_MISSING: Any = object()


def verify_output(
    receipt: str | Receipt,
    output: Any,
    keys: KeySource,
    *,
    input: Any = _MISSING,
    events: RejectionEvents | None = None,
) -> OutputCheck:
    """VALID when `output` (and `input`, if given) are what the receipt signed, else TAMPERED.

    Raises ReceiptInvalid when the receipt itself does not verify. A TAMPERED verdict is
    reported to `events` as well.
    """
    try:
        verified = verify_receipt(receipt, keys)
    except ReceiptInvalid as e:
        report_to(events, "receipt", e, token=receipt.token if isinstance(receipt, Receipt) else receipt)
        raise
    differed = []
    if input is not _MISSING and not hmac.compare_digest(digest(input), verified.input_digest):
        differed.append("input")
    if not hmac.compare_digest(digest(output), verified.output_digest):
        differed.append("output")
    if differed:
        report_to(events, "receipt", ReceiptInvalid(f"TAMPERED: {' and '.join(differed)} not as signed"),
                  who=verified.agent, token_id=verified.hash, authenticated=verified.agent is not None)
        return OutputCheck("TAMPERED", tuple(differed), verified)
    return OutputCheck("VALID", (), verified)


@dataclass(frozen=True)
class DagCheck:
    """A verified DAG: receipts by hash, in an order where parents come first, and its roots."""

    receipts: Mapping[str, Receipt]
    order: tuple[str, ...]
    roots: tuple[str, ...]
    edges: int = 0
    sinks: tuple[str, ...] = field(default_factory=tuple)


def verify_dag(
    receipts: Iterable[str | Receipt],
    keys: KeySource,
    *,
    events: RejectionEvents | None = None,
) -> DagCheck:
    """Verify every receipt and every parent edge; ReceiptParentMissing names the first broken edge.

    Edges are checked in the order the receipts are given, parents of each in their listed
    order, so "first" is well defined. Raises ReceiptInvalid for a receipt that does not verify.
    """
    try:
        return _dag(receipts, keys)
    except ReceiptInvalid as e:
        report_to(events, "receipt-dag", e)
        raise


def _dag(receipts: Iterable[str | Receipt], keys: KeySource) -> DagCheck:
    by_hash: dict[str, Receipt] = {}
    given: list[Receipt] = []
    for item in receipts:
        receipt = verify_receipt(item, keys)
        by_hash.setdefault(receipt.hash, receipt)
        given.append(receipt)
    if not given:
        raise ReceiptInvalid("a DAG needs at least one receipt")
    edges = 0
    for receipt in given:
        for parent in receipt.parents:
            if parent not in by_hash:
                raise ReceiptParentMissing(
                    f"broken edge: receipt {receipt.hash[:23]}... names parent {parent[:23]}..., which is missing"
                )
            edges += 1
    order = _topological(by_hash)
    referenced = {p for r in by_hash.values() for p in r.parents}
    roots = tuple(h for h in order if not by_hash[h].parents)
    sinks = tuple(h for h in order if h not in referenced)
    return DagCheck(by_hash, order, roots, edges, sinks)


def _topological(by_hash: Mapping[str, Receipt]) -> tuple[str, ...]:
    """Parents first. A cycle would need a hash collision; it is refused rather than looped on."""
    order: list[str] = []
    state: dict[str, int] = {}
    for start in by_hash:
        stack = [(start, iter(by_hash[start].parents))]
        if state.get(start) == 2:
            continue
        state[start] = 1
        while stack:
            node, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                state[node] = 2
                order.append(node)
            elif state.get(parent) == 1:
                raise ReceiptInvalid("receipts form a cycle")
            elif state.get(parent) is None:
                state[parent] = 1
                stack.append((parent, iter(by_hash[parent].parents)))
    return tuple(order)
