"""Secrets (PINs, passwords, tokens): where they come from, and how they stay hidden.

A URI or config names a *source* (``env:NAME`` or ``file:PATH``), never the secret.
The value is wrapped in `Secret`, whose repr/str never show it, so it cannot reach a
log line, an exception message or a Signer's repr by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

__all__ = ["Secret", "resolve_secret"]


class Secret:
    """A secret string that prints as ``***``; call `reveal()` at the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def resolve_secret(source: str, what: str = "secret") -> Secret:
    """Read a secret from ``env:NAME`` or ``file:PATH``.

    `what` names the attribute (``pin-source``) for the error message; a trailing
    newline in a file is dropped, as `echo pin > file` writes one. Raises ConfigError for
    another form, an unset variable or an unreadable file; the message never holds the secret.
    """
    kind, sep, ref = source.partition(":")
    if not sep or not ref:
        raise ConfigError(f"{what} must be 'env:NAME' or 'file:PATH'")
    if kind == "env":
        value = os.environ.get(ref)
        if value is None:
            raise ConfigError(f"{what}: environment variable {ref} is not set")
        return Secret(value)
    if kind == "file":
        try:
            text = Path(ref).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{what}: cannot read {ref}: {type(e).__name__}") from e
        return Secret(text.removesuffix("\n").removesuffix("\r"))
    raise ConfigError(f"{what} must be 'env:NAME' or 'file:PATH', not '{kind}:...'")
