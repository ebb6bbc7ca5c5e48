"""The retry decision the blocking and the async Cloud KMS calls share (only their sleep differs).

Retryable failures (UNAVAILABLE, and DEADLINE_EXCEEDED for idempotent calls) are tried
again with jittered exponential back-off, at most `ATTEMPTS` times and never past the
store's timeout; a refused TLS certificate is not retried (it would be refused again).
"""

from __future__ import annotations

import random
import time

from .client import tls_verification_failed
from .errors import translated_error

__all__ = ["ATTEMPTS", "retry_pause"]

ATTEMPTS = 4  # tries for a retryable failure (UNAVAILABLE, DEADLINE_EXCEEDED) within the timeout


def retry_pause(e: Exception, what: str, attempt: int, deadline: float) -> float:
    """Seconds to wait before trying again after retryable failure `e` on try `attempt` (1-based).

    Raises `e` translated (chained) when no retry is left: a refused certificate, the last
    attempt, or a pause that would end past `deadline` (a time.monotonic() value).
    """
    if tls_verification_failed(str(getattr(e, "message", None) or e)):
        raise translated_error(e, what) from e
    pause = min(0.1 * 2 ** (attempt - 1), 1.0) * random.uniform(0.5, 1.0)
    if attempt == ATTEMPTS or time.monotonic() + pause >= deadline:
        raise translated_error(e, what) from e
    return pause
