"""Watching for secrets: every log record (DEBUG and up, every logger) and every text we are shown.

The harness turns DEBUG on for the whole run, so a back end that logs its PIN "only at
debug level" is caught, then looks for each secret in log records, reprs, URIs and
exception texts. Only findings are kept (never whole records), and findings are
reported redacted, so the report itself does not leak.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["LeakWatch", "find_secret"]

_SHORT = 6  # shorter secrets (a 4-digit PIN) match as whole words only, so "1234" is not found in ":12345"


def find_secret(text: str, secrets: Sequence[str]) -> bool:
    for secret in secrets:
        if len(secret) >= _SHORT:
            if secret in text:
                return True
        elif re.search(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", text):
            return True
    return False


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    return text[:200]


class _Handler(logging.Handler):
    def __init__(self, watch: LeakWatch) -> None:
        super().__init__(logging.DEBUG)
        self._watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = [record.getMessage()]
        except Exception:  # a malformed record still counts: look at its raw parts
            parts = [str(record.msg), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        self._watch.check(f"log record {record.name}:{record.levelname}", " ".join(parts))


@dataclass
class LeakWatch:
    """Context manager: DEBUG logging on for every logger, secrets looked for in what passes.

    `check(where, text)` can also be called for reprs and exception texts. `findings` is
    a list of ``where: redacted excerpt`` strings.
    """

    secrets: Sequence[str]
    findings: list[str] = field(default_factory=list)
    texts_checked: int = 0
    _handler: _Handler | None = None
    _saved_levels: dict[str, int] = field(default_factory=dict)
    _extra_handled: list[logging.Logger] = field(default_factory=list)
    _reenabled: list[logging.Logger] = field(default_factory=list)

    def check(self, where: str, text: str) -> None:
        self.texts_checked += 1
        if self.secrets and find_secret(text, self.secrets):
            finding = f"{where}: {redact(text, self.secrets)}"
            if finding not in self.findings:
                self.findings.append(finding)

    def check_exception(self, where: str, error: BaseException) -> None:
        """str() and repr() of an exception and of its whole chain (causes are shown in tracebacks too)."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.check(f"{where} ({type(current).__name__})", f"{current!s} {current!r}")
            current = current.__cause__ or current.__context__

    def check_all(self, where: str, texts: Iterable[str]) -> None:
        for text in texts:
            self.check(where, text)

    def __enter__(self) -> LeakWatch:
        self._handler = _Handler(self)
        root = logging.getLogger()
        self._saved_levels[""] = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(self._handler)
        for name, logger in list(logging.Logger.manager.loggerDict.items()):
            if not isinstance(logger, logging.Logger):
                continue
            if logger.level > logging.DEBUG:
                self._saved_levels[name] = logger.level
                logger.setLevel(logging.DEBUG)
            if logger.disabled:  # e.g. by dictConfig(disable_existing_loggers=True): still watched
                logger.disabled = False
                self._reenabled.append(logger)
            if not logger.propagate:  # records of a non-propagating logger never reach the root
                logger.addHandler(self._handler)
                self._extra_handled.append(logger)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        root = logging.getLogger()
        assert self._handler is not None
        root.removeHandler(self._handler)
        for logger in self._extra_handled:
            logger.removeHandler(self._handler)
        for logger in self._reenabled:
            logger.disabled = True
        for name, level in self._saved_levels.items():
            logging.getLogger(name or None).setLevel(level)
