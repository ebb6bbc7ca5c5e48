"""One object per running event loop: what a native-async back end keeps its SDK clients in.

An aiohttp session or a grpc.aio channel belongs to the event loop it was made in, so a
store that signs from several loops (threads each running `asyncio.run`) needs one client
per loop. `PerLoop` makes it with `factory()` on first use inside a loop and forgets the
clients of loops that have closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """The running loop's `T`, made by `factory()` inside that loop (whatever it raises propagates)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: dict[int, tuple[asyncio.AbstractEventLoop, T]] = {}

    def current(self) -> T:
        """The running loop's object (made now if this loop has none); loops that closed are forgotten."""
        loop = asyncio.get_running_loop()
        for key, (other, _item) in list(self._items.items()):
            if other.is_closed():
                del self._items[key]
        entry = self._items.get(id(loop))
        if entry is None or entry[0] is not loop:
            entry = self._items[id(loop)] = (loop, self._factory())
        return entry[1]

    def pop_current(self) -> T | None:
        """The running loop's object, no longer kept (None if it has none): the caller closes it."""
        entry = self._items.pop(id(asyncio.get_running_loop()), None)
        return None if entry is None else entry[1]

    def forget(self) -> None:
        """Drop every object (on the store's close(); those of finished loops are already gone)."""
        self._items.clear()
