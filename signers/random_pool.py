"""Random bytes for identifiers (token ``jti``, request ids), drawn from a buffer of `os.urandom` output.

Every passport and every request needs a few random bytes, and `os.urandom` is one
``getrandom`` system call each time: about 1 us in a loop, but 10 us and more inside the
issuer service, where each syscall comes on cold caches between other work. Taking 4 KiB
at once and slicing it makes that one call per 256 identifiers. The bytes are the same
kernel CSPRNG output either way; they are only handed out later.

A child made by ``fork`` must not hand out the bytes its parent will also hand out (two
processes issuing the same ``jti``), so the buffer is dropped in the child at fork time.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes"]

_REFILL = 4096
_LARGEST = 64  # larger draws go straight to os.urandom: they are rare and would waste the buffer

_lock = threading.Lock()
_buffer = b""
_offset = 0


def random_bytes(n: int) -> bytes:
    """`n` bytes of `os.urandom` output (never handed out twice, not shared with a forked child)."""
    global _buffer, _offset
    if not 0 <= n <= _LARGEST:  # a negative n: os.urandom's own ValueError
        return os.urandom(n)
    with _lock:
        start = _offset
        if start + n > len(_buffer):
            _buffer, start = os.urandom(_REFILL), 0
        _offset = start + n
        return _buffer[start:start + n]


def _forget() -> None:
    """In a forked child: the parent's unused bytes are the parent's; start from a fresh draw."""
    global _buffer, _offset, _lock
    _lock = threading.Lock()  # the parent may have held it at the fork
    _buffer, _offset = b"", 0


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget)
