"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Counters with labels and one latency summary (count and sum) per back-end operation are
all the service needs; prometheus-client would add a global registry and a dependency for
that. Label values are escaped as the format requires; nothing secret is ever a label.
"""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = {
    "keyplane_http_requests_total": "HTTP requests by route and status",
    "keyplane_passports_issued_total": "passports issued",
    "keyplane_actions_issued_total": "action tokens issued",
    "keyplane_verifications_total": "verifications by kind and result",
    "keyplane_gate_decisions_total": "gate decisions by result",
    "keyplane_rejections_total": "refusals reported to the rejection events, by reason",
    "keyplane_revocations_total": "revocations by kind",
    "keyplane_webhooks_total": "webhook deliveries by hook and result",
    "keyplane_rate_limited_total": "requests refused by the per-caller rate limit",
}
_SUMMARY_HELP = {"keyplane_backend_seconds": "latency of calls to the key back end, by operation"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


class Metrics:
    """Thread-safe counters and summaries; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._summaries: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            pair = self._summaries[name].setdefault(key, [0.0, 0.0])
            pair[0] += 1
            pair[1] += seconds

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(set(_HELP) | set(self._counters)):
                lines.append(f"# HELP {name} {_HELP.get(name, name)}")
                lines.append(f"# TYPE {name} counter")
                for key, value in sorted(self._counters.get(name, {}).items()):
                    lines.append(f"{name}{_labels(key)} {value:g}")
            for name in sorted(set(_SUMMARY_HELP) | set(self._summaries)):
                lines.append(f"# HELP {name} {_SUMMARY_HELP.get(name, name)}")
                lines.append(f"# TYPE {name} summary")
                for key, (count, total) in sorted(self._summaries.get(name, {}).items()):
                    lines.append(f"{name}_count{_labels(key)} {count:g}")
                    lines.append(f"{name}_sum{_labels(key)} {total:.6f}")
        return "\n".join(lines) + "\n"
