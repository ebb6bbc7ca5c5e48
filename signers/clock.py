"""Time, in one place: leeway, finite-number checks, epoch and datetime conversions.

Every layer that accepts a time or a duration (JOSE, passports, revocation, the audit log,
the CA, the CLI) goes through these, so a NaN or an infinity can never switch a check off
(``exp + nan`` compares False with everything) and an absurd integer is a typed refusal,
not an OverflowError.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from .errors import ConfigError

__all__ = [
    "DEFAULT_LEEWAY",
    "MAX_EPOCH",
    "duration",
    "epoch",
    "from_epoch",
    "iso",
    "now_utc",
    "utc",
    "utc_second_text",
]

DEFAULT_LEEWAY = 30.0  # seconds of clock skew every verifier allows unless told otherwise
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a datetime can hold


def duration(value: float | int | timedelta, what: str = "duration", *, allow_zero: bool = True) -> float:
    """`value` as finite, non-negative seconds; ConfigError naming `what` otherwise.

    Raises ConfigError for NaN, infinities, negatives, booleans, non-numbers and values
    beyond MAX_EPOCH (so adding one to a timestamp can never overflow a datetime).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number of seconds, not {type(value).__name__}")
    else:
        try:
            seconds = float(value)
        except OverflowError as e:
            raise ConfigError(f"{what} is out of range") from e
    if not math.isfinite(seconds):
        raise ConfigError(f"{what} must be a finite number of seconds, not {seconds}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(f"{what} must be {'at least 0' if allow_zero else 'more than 0'} seconds, not {seconds:g}")
    if seconds > MAX_EPOCH:
        raise ConfigError(f"{what} of {seconds:.0f} s is out of range")
    return seconds


def epoch(now: datetime | float | int | None = None, what: str = "now") -> float:
    """Seconds since the epoch for `now`: a timezone-aware datetime, a finite number, or the current time.

    Raises ConfigError for a naive datetime, NaN / infinity, a negative or out-of-range number.
    """
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ConfigError(f"{what}: give a timezone-aware datetime (e.g. datetime.now(timezone.utc))")
        return now.timestamp()
    return duration(now, what)


def utc(at: datetime | None, what: str = "time") -> datetime:
    """`at` as an aware UTC datetime (now when None); ConfigError for a naive datetime."""
    if at is None:
        return datetime.now(UTC)
    if not isinstance(at, datetime):
        raise ConfigError(f"{what} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None:
        raise ConfigError(f"{what} must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return at.astimezone(UTC)


def now_utc() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def from_epoch(seconds: float | int) -> datetime | None:
    """A UTC datetime for `seconds`, or None when it is not finite or outside what a datetime holds."""
    try:
        value = float(seconds)
    except (OverflowError, TypeError, ValueError):
        return None
    if not math.isfinite(value) or not -MAX_EPOCH <= value <= MAX_EPOCH:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso(seconds: float | int) -> str:
    """ISO 8601 for an epoch time, falling back to the bare number when it cannot be a date."""
    when = from_epoch(seconds)
    return when.isoformat(timespec="seconds") if when is not None else f"{seconds!r:.40}"


_second: tuple[int, str] = (-1, "")  # the last whole second and its text (one tuple: swapped atomically)


def utc_second_text(second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) of a whole epoch second; the last second's text is reused.

    For writers that stamp every line or record (the JSON log, the audit chain): they add
    their own fraction and zone to it, and build a datetime once a second, not once a line.
    """
    global _second
    held = _second
    if held[0] != second:
        held = _second = (second, datetime.fromtimestamp(second, UTC).isoformat()[:19])
    return held[1]
