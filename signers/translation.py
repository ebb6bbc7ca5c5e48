"""The one shape of error translation every back end and state store uses.

A back end writes one function ``translate(exc, what) -> KeyplaneError | None`` (usually a
lookup in a table of SDK codes, see `CodeTable`) and wraps each SDK call in
``with translated(translate, "signing with 'ca'"):``. Keyplane's own errors pass through
untouched, anything the table does not know stays a BackendUnavailable with the cause
chained, and every translated error is raised ``from`` the SDK's exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import BackendUnavailable, KeyplaneError

__all__ = ["CodeTable", "Translator", "translated"]

Translator = Callable[[BaseException, str], KeyplaneError | None]


@dataclass(frozen=True)
class CodeTable:
    """SDK error codes (strings or HTTP statuses) -> keyplane error classes, with a default.

    ``table.error(code, where, detail)`` builds the mapped error with a message that names
    the operation and the code; the SDK's own text is appended only when `detail` is given,
    so a back end chooses per code whether the service's wording is safe to repeat.
    """

    codes: Mapping[str | int, type[KeyplaneError]]
    default: type[KeyplaneError] = BackendUnavailable
    messages: Mapping[type[KeyplaneError], str] = field(default_factory=dict)

    def lookup(self, code: str | int) -> type[KeyplaneError]:
        return self.codes.get(code, self.default)

    def error(self, code: str | int, where: str, detail: str = "", cause: BaseException | None = None) -> KeyplaneError:
        cls = self.lookup(code)
        text = f"{where}: {self.messages.get(cls, 'failed')} ({code})"
        if detail:
            text += f": {detail[:300]}"
        if issubclass(cls, BackendUnavailable):
            return cls(text, cause)
        return cls(text)


@contextmanager
def translated(translate: Translator, what: str) -> Iterator[None]:
    """Run the body; SDK exceptions become keyplane errors via `translate`, raised ``from`` the original.

    A KeyplaneError raised inside passes through; an exception `translate` returns None for
    becomes BackendUnavailable naming `what` (never a raw SDK exception to the caller).
    """
    try:
        yield
    except KeyplaneError:
        raise
    except Exception as e:
        error = translate(e, what)
        if error is None:
            error = BackendUnavailable(f"{what} failed: {type(e).__name__}", e)
        raise error from e
