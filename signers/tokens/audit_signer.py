"""`AuditedSigner`: a Signer that records every signature it makes in an audit log.

It signs, then appends a record of the signature (key, algorithm, SHA-256 of the message,
caller context from `audit_context`); every `checkpoint_every` signatures it appends a
checkpoint whose JWS (``typ: keyplane-audit-checkpoint+jwt``) the signer itself makes over
``{"log", "seq", "head"}``, so the chain up to there is vouched for by the key. The JWS
is domain-separated: nothing else keyplane signs has that ``typ`` and payload, so a key
that signs other things (tokens, 64 hex characters) cannot be made to mint a checkpoint.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..algorithms import SignatureAlgorithm
from ..clock import utc_second_text
from ..errors import BatchSignError, ConfigError
from ..keys import PublicKey
from ..signer import has_own_async
from ..workers import run_blocking
from .audit_commit import record_json
from .audit_log import AuditLog, AuditRecord
from .canonical import canonical_json
from .jws_sign import sign_jws
from .token_types import AUDIT_CHECKPOINT_TYP

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["AuditedSigner", "audit_context", "checkpoint_payload"]

# None, not {}: a ContextVar default is shared by every context, so it must not be mutable.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("keyplane_audit_context", default=None)


@contextlib.contextmanager
def audit_context(**values: Any) -> Iterator[None]:
    """Attach caller context (user, request id, ...) to every signature made inside the block.

    Raises ConfigError at once when the values are not RFC 8785 serialisable.
    """
    record_json(values)  # fail here, not at signing time, if it is not JSON
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


def _now_iso() -> str:
    """Now as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds); the current second's text is reused.

    The same text as ``datetime.now(UTC).isoformat(timespec="microseconds")`` with ``Z``,
    without building a datetime for every record (about a microsecond an append).
    """
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    return f"{utc_second_text(second)}.{nanos // 1000:06d}Z"


def checkpoint_payload(claims: Mapping[str, Any]) -> bytes:
    """The bytes a checkpoint JWS signs: the RFC 8785 JSON of exactly ``{"log", "seq", "head"}``."""
    return canonical_json({"log": claims["log"], "seq": claims["seq"], "head": claims["head"]})


class AuditedSigner:
    """A Signer that records every signature it makes in an `AuditLog` before returning it.

    A signature whose record cannot be written is not returned (the append error is
    raised), so no signature leaves this wrapper unlogged.
    """

    def __init__(
        self,
        signer: Signer,
        log: AuditLog,
        *,
        context: Mapping[str, Any] | None = None,
        checkpoint_every: int | None = 100,
    ) -> None:
        """ConfigError for a checkpoint_every below 1 or a context that is not JSON."""
        if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or checkpoint_every < 1):
            raise ConfigError("checkpoint_every must be at least 1 (or None for no automatic checkpoints)")
        self.signer = signer
        self.log = log
        self.context = dict(context or {})
        record_json(self.context)
        self.checkpoint_every = checkpoint_every
        self._lock = threading.Lock()
        self._since_checkpoint = 0
        self.key_id: str = signer.key_id
        self.uri: str = signer.uri
        self.algorithm: SignatureAlgorithm = signer.algorithm
        self.public_key: PublicKey = signer.public_key
        self._own_async = has_own_async(signer)

    def sign(self, message: bytes) -> bytes:
        """Sign and record; raises what the Signer or the log raises (then no signature is returned)."""
        signature = self.signer.sign(message)
        self._record(message)
        return signature

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign with the wrapped signer's `sign_many` (one batch), then record each signature in order.

        A signature of a failed batch (BatchSignError) is recorded too before the error is
        raised, since the error hands it to the caller. Raises what the Signer or the log raises.
        """
        items = list(messages)
        sign_many = getattr(self.signer, "sign_many", None)
        error: BatchSignError | None = None
        try:
            results: list[Any] = sign_many(items) if callable(sign_many) else [self.signer.sign(m) for m in items]
        except BatchSignError as e:
            error, results = e, e.results
        for message, result in zip(items, results, strict=True):
            if isinstance(result, bytes):
                self._record(message)
        if error is not None:
            raise error
        return results

    async def sign_many_async(self, messages: Sequence[bytes]) -> list[bytes]:
        """`sign_many` on keyplane's I/O pool; raises what `sign_many` raises."""
        return await run_blocking(self.sign_many, list(messages))

    def _record(self, message: bytes) -> None:
        self.log.append(self._fields(message))
        if self._checkpoint_due():
            self.checkpoint()

    def _fields(self, message: bytes) -> dict[str, Any]:
        return {
            "ts": _now_iso(),
            "kind": "signature",
            "key_id": self.key_id,
            "alg": self.algorithm.value,
            "message_sha256": hashlib.sha256(message).hexdigest(),
            "context": {**self.context, **(_context.get() or {})},
        }

    def _checkpoint_due(self) -> bool:
        if self.checkpoint_every is None:
            return False
        with self._lock:
            self._since_checkpoint += 1
            due = self._since_checkpoint >= self.checkpoint_every
            if due:
                self._since_checkpoint = 0
        return due

    async def sign_async(self, message: bytes) -> bytes:
        """Sign and record without blocking the event loop; the signature only once its record is durable.

        A signer with its own async path (`has_own_async`: Transit's coalescer, the Azure and
        GCP async clients) signs there, and the record joins the log's group commit through
        `append_async` (one pool hop per batch of appends, not per signature). Any other
        signer would sign on a worker thread anyway, so the signature and its append both run
        in that one hop. Raises what `sign` raises.
        """
        if not self._own_async:  # `sign` would run on a worker thread anyway: sign and append there, one hop
            return await run_blocking(self.sign, message)
        signature: bytes = await self.signer.sign_async(message)
        await self.log.append_async(self._fields(message))
        if self._checkpoint_due():
            await run_blocking(self.checkpoint)  # one in `checkpoint_every`: a signature and an append
        return signature

    def checkpoint(self) -> AuditRecord:
        """Append a checkpoint signed by the signer over the log id, its sequence number and head.

        Raises what the Signer or the log raises.
        """
        fields: dict[str, Any] = {
            "ts": _now_iso(),
            "kind": "checkpoint",
            "key_id": self.key_id,
            "alg": self.algorithm.value,
            "message_sha256": None,
            "context": {},
        }

        def seal(claims: Mapping[str, Any]) -> str:
            return sign_jws(self.signer, checkpoint_payload(claims), typ=AUDIT_CHECKPOINT_TYP)

        return self.log.append(fields, seal=seal)

    def __repr__(self) -> str:
        return f"AuditedSigner({self.signer!r}, log={self.log!r})"
