"""Audit appends and audited signatures from an event loop: the same durability as the threaded path.

`append_async` queues on the loop and group-commits on keyplane's I/O pool. These tests hold
that a returned append is durable (the fsync probe of the threaded tests records what each
fsync made durable), that appends queued behind a write leave together in one durable write,
that a failed write fails every append of its batch and acknowledges none, that threads and
tasks appending to one log keep one linear chain (no append is left without a writer), and
that the loop thread never waits on the write.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from backends.file import FileKeyStore
from signers import KeySpec
from signers.audit import AuditedSigner, JsonlAuditLog, SQLiteAuditLog
from signers.errors import BackendUnavailable
from signers.tokens.audit_commit import CommitQueue
from tests.issuance.test_audit_group_commit import (
    FsyncProbe,
    another_writer,
    assert_one_linear_chain,
    fields,
    queued,
    run_threads,
)

TASKS = 16


async def _gather(coroutines: list[Any]) -> list[Any]:
    """Every outcome; a TimeoutError when an append is left without a writer (a hang would be no answer)."""
    return await asyncio.wait_for(asyncio.gather(*coroutines, return_exceptions=True), 30)


def test_async_appends_are_durable_when_they_return_and_share_fsyncs(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    probe = FsyncProbe(path, monkeypatch)
    log = JsonlAuditLog(path)

    async def one(n: int) -> int:
        record = await log.append_async(fields(n))
        with probe.lock:  # the line holding this record was fsynced before the append returned
            assert probe.durable_lines >= record.seq
        return int(record.seq)

    async def main() -> list[Any]:
        return await _gather([one(n) for n in range(TASKS)])

    seqs = asyncio.run(main())
    assert sorted(seqs) == list(range(1, TASKS + 1))
    assert probe.calls < TASKS  # batched: tasks queued while a write ran went out together
    assert_one_linear_chain(log, TASKS)


def test_the_loop_thread_never_runs_the_durable_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    probe = FsyncProbe(path, monkeypatch)
    writers: set[int] = set()
    probe.hold = lambda call: writers.add(threading.get_ident())
    log = JsonlAuditLog(path)

    async def main() -> int:
        await _gather([log.append_async(fields(n)) for n in range(TASKS)])
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert writers and loop_thread not in writers


def test_async_appends_queued_behind_a_write_go_out_in_one_fsync(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    probe = FsyncProbe(path, monkeypatch)
    log = JsonlAuditLog(path)
    released = threading.Event()

    def hold(call: int) -> None:
        if call == 1:
            assert released.wait(20)

    probe.hold = hold

    async def main() -> None:
        first = asyncio.ensure_future(log.append_async(fields(0)))
        while queued(log) != 0 or not log._queue._writing:  # the first write has started
            await asyncio.sleep(0)
        rest = [asyncio.ensure_future(log.append_async(fields(n))) for n in range(1, TASKS)]
        while queued(log) != TASKS - 1:
            await asyncio.sleep(0)
        released.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), 30)

    asyncio.run(main())
    assert probe.calls == 2  # the first append, then everything queued behind it
    assert_one_linear_chain(log, TASKS)


def test_a_failed_write_fails_every_async_append_of_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = SQLiteAuditLog(path, timeout=0.2)
    log.append(fields(0))
    with another_writer(path):  # the batch times out
        results = asyncio.run(_gather([log.append_async(fields(n)) for n in range(1, 9)]))
    assert all(type(r) is BackendUnavailable for r in results), results
    assert asyncio.run(log.append_async(fields(9))).seq == 2  # nothing of the failed batch was written
    assert_one_linear_chain(log, 2)


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_threads_and_tasks_on_one_log_keep_one_chain(tmp_path: Path, kind: str) -> None:
    log = JsonlAuditLog(tmp_path / "a.jsonl") if kind == "jsonl" else SQLiteAuditLog(tmp_path / "a.db")
    per = 8

    async def tasks(offset: int) -> list[Any]:
        return await _gather([log.append_async(fields(offset + n)) for n in range(per)])

    def loop_worker(n: int) -> None:
        for result in asyncio.run(tasks(1000 * (n + 1))):
            if isinstance(result, BaseException):
                raise result

    def thread_worker(n: int) -> None:
        for i in range(per):
            log.append(fields(100 * n + i))

    errors = run_threads(lambda n: (loop_worker if n % 2 else thread_worker)(n), count=8)
    assert errors == []
    assert_one_linear_chain(log, 8 * per)


def test_a_cancelled_append_is_still_written(tmp_path: Path) -> None:
    """Cancelling the request does not cancel the write it shares with others: the record is in the chain."""
    log = JsonlAuditLog(tmp_path / "audit.jsonl")

    async def main() -> None:
        task = asyncio.ensure_future(log.append_async(fields(0)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await log.append_async(fields(1))

    asyncio.run(main())
    assert_one_linear_chain(log, 2)


def test_commit_queue_without_pool_still_writes_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """At interpreter exit the I/O pool refuses work: the drain gets a thread of its own."""
    written: list[int] = []

    def write(batch: Any) -> None:
        written.append(threading.get_ident())
        for pending in batch:
            pending.record = len(written)

    class Refusing:
        def submit(self, *args: Any) -> None:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    from signers.tokens import audit_commit

    monkeypatch.setattr(audit_commit, "io_executor", lambda: Refusing())
    queue = CommitQueue(write)

    async def main() -> tuple[Any, int]:
        return await queue.submit_async({}), threading.get_ident()

    record, loop_thread = asyncio.run(main())
    assert record == 1 and written and written[0] != loop_thread


# -- AuditedSigner.sign_async --------------------------------------------------------------------


@pytest.fixture(scope="module")
def file_store(tmp_path_factory: pytest.TempPathFactory) -> FileKeyStore:
    import os

    os.environ["KEYPLANE_ASYNC_AUDIT_PASSWORD"] = "async audit test"
    directory = tmp_path_factory.mktemp("keys")
    return FileKeyStore.from_uri(f"file:{directory}?password-source=env:KEYPLANE_ASYNC_AUDIT_PASSWORD")


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256, KeySpec.RSA2048])
def test_audited_sign_async_records_each_signature_before_returning_it(file_store: FileKeyStore, tmp_path: Path,
                                                                        spec: KeySpec) -> None:
    signer = file_store.create_key(f"async-{spec.name.lower()}", spec)
    log = SQLiteAuditLog(tmp_path / "audit.db")
    audited = AuditedSigner(signer, log, checkpoint_every=5)
    messages = [f"message {n}".encode() for n in range(12)]

    async def one(message: bytes) -> bytes:
        signature = await audited.sign_async(message)
        assert len(list(log.records())) >= 1  # its record was committed before the signature came back
        return signature

    async def main() -> list[bytes]:
        return await asyncio.gather(*(one(m) for m in messages))

    signatures = asyncio.run(main())
    for message, signature in zip(messages, signatures, strict=True):
        signer.public_key.verify(signature, message, signer.algorithm)  # cryptography underneath
    records = list(log.records())
    assert sum(r.kind == "signature" for r in records) == len(messages)
    assert sum(r.kind == "checkpoint" for r in records) == len(messages) // 5


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256, KeySpec.RSA2048], ids=str)
def test_audited_sign_async_never_signs_on_the_loop_thread(file_store: FileKeyStore, tmp_path: Path,
                                                           spec: KeySpec) -> None:
    """The contract's `event-loop` row: `sign_async` yields; a file key signs on the worker pool."""
    signer = file_store.create_key(f"off-loop-{spec.name.lower()}", spec)
    threads: list[int] = []
    real = signer.sign

    def sign(message: bytes) -> bytes:
        threads.append(threading.get_ident())
        return real(message)

    signer.sign = sign  # type: ignore[method-assign]  # our own object: records the thread, signs for real
    audited = AuditedSigner(signer, SQLiteAuditLog(tmp_path / "audit.db"), checkpoint_every=None)

    async def main() -> int:
        await audited.sign_async(b"m")
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads and threads[0] != loop_thread


def test_a_signer_with_only_sign_is_audited_asynchronously(file_store: FileKeyStore, tmp_path: Path) -> None:
    real = file_store.create_key("sign-only", KeySpec.ED25519)

    class SignOnly:  # the least a Signer can be: no sign_async of its own
        key_id, uri, algorithm, public_key = real.key_id, real.uri, real.algorithm, real.public_key

        def sign(self, message: bytes) -> bytes:
            return bytes(real.sign(message))

    log = SQLiteAuditLog(tmp_path / "audit.db")
    signature = asyncio.run(AuditedSigner(SignOnly(), log, checkpoint_every=None).sign_async(b"m"))  # type: ignore[arg-type]
    real.public_key.verify(signature, b"m", real.algorithm)
    assert [r.kind for r in log.records()] == ["signature"]


def test_a_signer_with_its_own_async_path_is_recorded_through_append_async(file_store: FileKeyStore,
                                                                          tmp_path: Path) -> None:
    """A native async signer (here: one that signs after yielding) records through the log's group commit."""
    real = file_store.create_key("own-async", KeySpec.ED25519)

    class OwnAsync:
        key_id, uri, algorithm, public_key = real.key_id, real.uri, real.algorithm, real.public_key

        def sign(self, message: bytes) -> bytes:
            raise AssertionError("the async path must not fall back to sign")

        async def sign_async(self, message: bytes) -> bytes:
            await asyncio.sleep(0)
            return bytes(real.sign(message))

    class CountingLog(SQLiteAuditLog):
        async_appends = 0

        async def append_async(self, fields: Any, seal: Any = None) -> Any:
            type(self).async_appends += 1
            return await super().append_async(fields, seal)

    log = CountingLog(tmp_path / "audit.db")
    audited = AuditedSigner(OwnAsync(), log, checkpoint_every=None)  # type: ignore[arg-type]
    signatures = asyncio.run(_gather([audited.sign_async(f"m{n}".encode()) for n in range(8)]))
    for n, signature in enumerate(signatures):
        real.public_key.verify(signature, f"m{n}".encode(), real.algorithm)
    assert CountingLog.async_appends == 8 and len(list(log.records())) == 8
