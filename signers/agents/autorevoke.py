"""The ready policy: N rejections for one agent within a window revoke the agent.

`AutoRevoke(store, threshold=5, window=60).attach(events)` subscribes synchronously to a
`RejectionEvents` hub. When one agent collects `threshold` rejections within `window`
seconds it is revoked as a subject (``kind="sub"``, so every passport and action token
issued up to then is refused) and an ``auto-revoke`` event is reported to the hub.

Only authenticated rejections count by default (the agent's signature verified, but a
later check refused it): a forged token naming a victim's ``sub`` must not be a way to get
the victim revoked. Set ``authenticated_only=False`` to count every claimed subject.
Thresholds come from code or from ``[agents.autorevoke]`` in keyplane.toml
(``threshold``, ``window``, ``authenticated_only``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..clock import duration, epoch
from ..errors import KeyplaneError, TokenRevoked
from ..revocation import Revocation, RevocationStore
from .errors import PolicyError
from .events import RejectionEvent, RejectionEvents
from .revocation import revoke_subject

__all__ = ["AUTO_REVOKE", "AutoRevoke"]

AUTO_REVOKE = "auto-revoke"
_MAX_TRACKED = 100_000  # agents tracked at once; the least recently refused are forgotten first


class AutoRevoke:
    """Counts rejections per agent in a sliding window and revokes at the threshold."""

    def __init__(
        self,
        store: RevocationStore,
        *,
        threshold: int = 5,
        window: float = 60,
        authenticated_only: bool = True,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise PolicyError("auto-revoke threshold must be a positive integer")
        if not isinstance(authenticated_only, bool):
            raise PolicyError("auto-revoke authenticated_only must be true or false")
        self.store = store
        self.threshold = threshold
        self.window = duration(window, "auto-revoke window", allow_zero=False)
        self.authenticated_only = authenticated_only
        self.revoked: list[Revocation] = []
        self.errors = 0
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._events: RejectionEvents | None = None

    @classmethod
    def from_config(cls, store: RevocationStore, table: Mapping[str, Any]) -> AutoRevoke:
        """From an ``[agents.autorevoke]`` table; PolicyError for an unknown field."""
        unknown = set(table) - {"threshold", "window", "authenticated_only"}
        if unknown:
            raise PolicyError(f"[agents.autorevoke]: unknown field(s) {sorted(unknown)}")
        return cls(store, **dict(table))

    def attach(self, events: RejectionEvents) -> AutoRevoke:
        """Subscribe to `events` (synchronously: the revocation is in the store before the verifier returns)."""
        self._events = events
        events.subscribe(self)
        return self

    def __call__(self, event: RejectionEvent) -> None:
        if event.what == AUTO_REVOKE or event.who is None:
            return
        if self.authenticated_only and not event.authenticated:
            return
        if event.error in ("TokenRevoked", "SubjectRevoked"):
            return  # refusals of an already revoked agent do not count again
        now = event.when.timestamp()
        with self._lock:
            times = self._seen.pop(event.who, None) or deque()
            self._seen[event.who] = times  # re-inserted: most recently refused last
            times.append(now)
            while times and times[0] < now - self.window:
                times.popleft()
            due = len(times) >= self.threshold
            if due:
                times.clear()
            while len(self._seen) > _MAX_TRACKED:
                self._seen.pop(next(iter(self._seen)))
        if due:
            self._revoke(event.who, now)

    def recent(self, agent: str, *, now: float | None = None) -> int:
        """How many counted rejections `agent` has within the window now (a trust-score input)."""
        current = epoch(now)
        with self._lock:
            times = self._seen.get(agent)
            return sum(1 for t in times if t >= current - self.window) if times else 0

    def _revoke(self, agent: str, now: float) -> None:
        reason = f"auto-revoked: {self.threshold} rejections within {self.window:g} s"
        try:
            record = revoke_subject(self.store, agent, reason=reason)
        except KeyplaneError:  # the store is down: counted; verification answers are unchanged
            self.errors += 1
            return
        self.revoked.append(record)
        if self._events is not None:
            self._events.rejected(AUTO_REVOKE, TokenRevoked(reason), who=agent, authenticated=True,
                                  context={"threshold": self.threshold, "window": self.window})
