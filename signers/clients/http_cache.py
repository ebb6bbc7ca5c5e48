"""One HTTP document kept fresh by the rules a verifier needs: the state machine, no I/O.

`CachedDocument` decides when to ask again and what to do with the answer, so the sync and
async clients share one set of rules:

- fresh for the response's ``Cache-Control: max-age`` (capped at `ttl`), else `ttl`;
  ``no-store`` / ``no-cache`` mean `min_interval`;
- a refresh sends ``If-None-Match`` with the last ``ETag``; a 304 keeps the document and
  restarts its freshness;
- a forced refresh (an unknown ``kid``) happens at most once per `min_interval`, so a flood
  of bad tokens cannot make the verifier hammer the server;
- when the server is down or answers garbage, the last good document keeps serving until
  `hard_expiry` seconds after it was last confirmed; past that, BackendUnavailable (fail
  closed). A document that does not parse never replaces the good one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..clock import duration
from ..errors import BackendUnavailable, ConfigError, KeyplaneError

__all__ = ["CachePolicy", "CachedDocument", "Fetched"]

T = TypeVar("T")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
MAX_DOCUMENT = 16 * 1024 * 1024  # bytes read from one response; more is refused


@dataclass(frozen=True)
class CachePolicy:
    """How long to trust a document: `ttl` (default and cap), `min_interval`, `hard_expiry`, `timeout`."""

    ttl: float = 300.0
    min_interval: float = 10.0
    hard_expiry: float = 24 * 3600.0
    timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("ttl", "min_interval", "hard_expiry", "timeout"):
            duration(getattr(self, name), name, allow_zero=name == "min_interval")
        if self.hard_expiry < self.ttl:
            raise ConfigError("hard_expiry must be at least ttl (it bounds how long a cached document outlives the server)")


@dataclass(frozen=True)
class Fetched:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def max_age_of(cache_control: str | None) -> float | None:
    """The ``max-age`` of a Cache-Control header (0 for no-store / no-cache), or None."""
    if not cache_control:
        return None
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(lowered)
    return float(match.group(1)) if match else None


class CachedDocument(Generic[T]):
    """The parsed document at `url`, when to refresh it, and what a response does to it.

    `parse(body)` turns a 200 body into T or raises a KeyplaneError (then the old document
    stays). Thread-safe; `clock` is monotonic seconds.
    """

    def __init__(self, url: str, parse: Callable[[bytes], T], policy: CachePolicy,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError("a client URL must be http:// or https://")
        self.url = url
        self.policy = policy
        self._parse = parse
        self._clock = clock
        self._lock = threading.Lock()
        self.value: T | None = None
        self.etag: str | None = None
        self.confirmed_at: float | None = None  # last 200/304
        self.attempted_at: float | None = None
        self.fresh_for = policy.ttl
        self.last_error: str | None = None
        self.fetches = 0
        self.not_modified = 0

    def stale(self) -> bool:
        """True when the document should be fetched again before use."""
        if self.value is None or self.confirmed_at is None:
            return True
        return self._clock() >= self.confirmed_at + self.fresh_for

    def may_force(self) -> bool:
        """True when a forced refresh (unknown kid) is allowed now: once per `min_interval`."""
        return self.attempted_at is None or self._clock() >= self.attempted_at + self.policy.min_interval

    def may_retry(self) -> bool:
        """After a failure, wait `min_interval` before asking a down server again."""
        return self.last_error is None or self.may_force()

    def due(self, *, force: bool = False) -> bool:
        """Whether to fetch now: when stale and not backing off, or when `force` (unknown kid) is allowed."""
        return self.may_force() if force else self.stale() and self.may_retry()

    def request_headers(self) -> dict[str, str]:
        headers = {"accept": "*/*"}
        if self.etag is not None and self.value is not None:
            headers["if-none-match"] = self.etag
        return headers

    def begin(self) -> None:
        with self._lock:
            self.attempted_at = self._clock()
            self.fetches += 1

    def accept(self, response: Fetched) -> None:
        """Apply an answer; raises nothing for a bad answer (kept in `last_error`) while a good copy is held."""
        now = self._clock()
        if response.status == 304 and self.value is not None:
            with self._lock:
                self.not_modified += 1
                self.confirmed_at = now
                self.fresh_for = self._freshness(response.headers)
                self.last_error = None
            return
        if response.status != 200:
            self.failed(f"HTTP {response.status}")
            return
        try:
            value = self._parse(response.body)
        except KeyplaneError as e:
            self.failed(f"{type(e).__name__}: {e}")
            return
        with self._lock:
            self.value = value
            self.etag = response.headers.get("etag")
            self.confirmed_at = now
            self.fresh_for = self._freshness(response.headers)
            self.last_error = None

    def failed(self, why: str) -> None:
        with self._lock:
            self.last_error = why[:300]

    def current(self) -> T:
        """The document to use now; BackendUnavailable when none was ever fetched or it is past `hard_expiry`."""
        value, confirmed = self.value, self.confirmed_at
        if value is None or confirmed is None:
            raise BackendUnavailable(f"{self.url}: no document fetched yet ({self.last_error or 'not fetched'})")
        if self._clock() > confirmed + self.policy.hard_expiry:
            raise BackendUnavailable(
                f"{self.url}: cached document is past its hard expiry ({self.policy.hard_expiry:g} s) and the "
                f"server cannot be reached ({self.last_error or 'no answer'})")
        return value

    def _freshness(self, headers: Mapping[str, str]) -> float:
        age = max_age_of(headers.get("cache-control"))
        if age is None:
            return self.policy.ttl
        return max(min(age, self.policy.ttl), self.policy.min_interval)
