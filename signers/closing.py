"""`Closing`: `with` support for anything that holds a connection or file and has `close()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """Adds ``__enter__``/``__exit__`` around an idempotent `close()` (which subclasses override)."""

    def close(self) -> None:
        """Release what the object holds; calling it twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
