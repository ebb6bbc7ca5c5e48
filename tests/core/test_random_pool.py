"""`random_pool.random_bytes`: buffered os.urandom output, never handed out twice, never shared with a fork.

The identifiers it feeds (a token's ``jti``, a request id) must be unique across threads and
across a parent and its forked child; these tests would fail if the buffer were sliced twice,
read without the lock, or inherited by a child.
"""

from __future__ import annotations

import os
import threading

import pytest

from signers import random_pool
from signers.random_pool import random_bytes
from signers.tokens.issued_claims import new_jti


def test_draws_are_of_the_asked_length_and_never_repeat() -> None:
    draws = [random_bytes(16) for _ in range(5000)]  # several refills of the 4 KiB buffer
    assert all(len(d) == 16 for d in draws)
    assert len(set(draws)) == len(draws)
    assert random_bytes(0) == b""
    assert len(random_bytes(1000)) == 1000  # larger than the buffer serves: straight from os.urandom


def test_a_negative_length_is_refused() -> None:
    with pytest.raises(ValueError):
        random_bytes(-1)


def test_threads_drawing_at_once_never_get_the_same_bytes() -> None:
    results: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def draw(mine: list[bytes]) -> None:
        start.wait()
        mine.extend(random_bytes(8) for _ in range(2000))

    threads = [threading.Thread(target=draw, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [d for r in results for d in r]
    assert len(set(every)) == len(every) == 16000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_does_not_hand_out_its_parents_bytes() -> None:
    random_bytes(8)  # the buffer is filled: a child that kept it would draw what the parent draws next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, b"".join(random_bytes(16) for _ in range(4)))
        finally:
            os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 4096):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    parent = b"".join(random_bytes(16) for _ in range(4))
    assert len(child) == 64 and child != parent
    assert not {child[i:i + 16] for i in range(0, 64, 16)} & {parent[i:i + 16] for i in range(0, 64, 16)}


def test_jtis_are_version_4_uuids_from_the_pool() -> None:
    before = random_pool._offset
    jti = new_jti()
    assert len(jti) == 36 and jti[14] == "4" and jti[19] in "89ab"
    assert random_pool._offset in (before + 16, 16)  # 16 bytes of the pool's buffer (or of a fresh refill)
