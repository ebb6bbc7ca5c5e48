"""Bounded worker pools for blocking calls made from async code, never the loop's default executor.

`sign_async` on a back end without an async client runs `sign` in a worker thread. The
event loop's default executor is shared with everything else in the process (DNS
look-ups, file I/O, other libraries) and sized for CPU work (min(32, cores + 4)), so
signing there is starved by, and starves, unrelated work. keyplane uses its own pools:

- `io_executor()`: one per process, sized for I/O-bound calls (``KEYPLANE_IO_WORKERS``,
  default 32; `configure_io_workers` changes it before first use), re-created after a
  fork (a child never inherits the parent's threads).
- `WorkerPool`: a dedicated pool a back end owns (PKCS#11: sized to its session pool,
  so a thread never waits for a session while another thread holds one idle).

`asyncio` and `concurrent.futures` are imported on first use, so `import signers` stays light.
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigError

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["DEFAULT_IO_WORKERS", "WorkerPool", "configure_io_workers", "io_executor", "io_pool", "run_blocking"]

T = TypeVar("T")

DEFAULT_IO_WORKERS = 32
_MAX_WORKERS = 1024


class WorkerPool:
    """A lazily started, bounded thread pool owned by one process (re-created after fork).

    `in_worker()` tells a caller running on one of this pool's threads, so work that would
    wait on the same pool (a batch spread from inside a worker) runs inline instead of
    risking a deadlock on a full pool.
    """

    def __init__(self, name: str, max_workers: int) -> None:
        self.name = name
        self.max_workers = _checked_workers(max_workers, name)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._prefix = f"keyplane-{name}-{id(self):x}"

    def executor(self) -> ThreadPoolExecutor:
        """The pool's executor, started on first use (and again in a forked child)."""
        executor = self._executor
        if executor is not None and self._pid == os.getpid():
            return executor
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                from concurrent.futures import ThreadPoolExecutor  # stdlib; loaded when async work first runs

                self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=self._prefix)
                self._pid = os.getpid()
            return self._executor

    def in_worker(self) -> bool:
        """True when called from one of this pool's threads."""
        return threading.current_thread().name.startswith(self._prefix)

    def resize(self, max_workers: int) -> None:
        """Use `max_workers` threads from now on (running work finishes on the old pool)."""
        with self._lock:
            self.max_workers = _checked_workers(max_workers, self.name)
            old, self._executor = self._executor, None
        if old is not None:
            old.shutdown(wait=False)

    def shutdown(self) -> None:
        """Stop accepting work; threads exit once their current call returns."""
        with self._lock:
            old, self._executor = self._executor, None
        if old is not None and self._pid == os.getpid():
            old.shutdown(wait=False)


def _checked_workers(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_WORKERS:
        raise ConfigError(f"worker pool {name!r}: max workers must be an integer from 1 to {_MAX_WORKERS}")
    return value


def _env_workers() -> int:
    text = os.environ.get("KEYPLANE_IO_WORKERS")
    if text is None or not text.strip():
        return DEFAULT_IO_WORKERS
    try:
        return _checked_workers(int(text), "io")
    except ValueError:
        raise ConfigError(f"KEYPLANE_IO_WORKERS must be an integer from 1 to {_MAX_WORKERS}") from None


_io_pool: WorkerPool | None = None
_io_lock = threading.Lock()


def _io() -> WorkerPool:
    global _io_pool
    pool = _io_pool
    if pool is None:
        with _io_lock:
            if _io_pool is None:
                _io_pool = WorkerPool("io", _env_workers())
            pool = _io_pool
    return pool


def io_executor() -> ThreadPoolExecutor:
    """The process's bounded I/O pool (``KEYPLANE_IO_WORKERS`` threads, default 32)."""
    return _io().executor()


def io_pool() -> WorkerPool:
    """The process's I/O `WorkerPool` (for `in_worker` checks)."""
    return _io()


def configure_io_workers(max_workers: int) -> None:
    """Size the process's I/O pool (ConfigError outside 1..1024); takes effect for new work."""
    _io().resize(max_workers)


async def run_blocking(func: Callable[..., T], *args: Any, pool: WorkerPool | None = None) -> T:
    """``await func(*args)`` on `pool` (default: the I/O pool), with the caller's contextvars.

    Raises what `func` raises.
    """
    import asyncio  # stdlib; loaded only by async callers so `import signers` does not pay for it

    loop = asyncio.get_running_loop()
    executor = (pool or _io()).executor()
    call = functools.partial(contextvars.copy_context().run, func, *args)
    return await loop.run_in_executor(executor, call)
