"""Group commit of audit appends: one durable write for concurrent appenders, and nothing weaker.

The durable write is observed, not faked: os.fsync is wrapped (the real fsync still runs)
to record how many lines the file held when each fsync finished, and SQLite's own trace
callback counts the transactions. A leader is held inside its durable write until the
other threads are queued, so the batching is deterministic rather than left to timing.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from signers.audit import AuditRecord, JsonlAuditLog, SQLiteAuditLog, verify_chain
from signers.errors import BackendUnavailable, ConfigError
from signers.tokens import audit_log as audit_log_module
from signers.tokens.audit_commit import CommitQueue, record_json

THREADS = 16


def fields(n: int) -> dict[str, Any]:
    return {"ts": "2026-12-01T00:00:00Z", "kind": "signature", "key_id": "k", "alg": "EdDSA",
            "message_sha256": f"{n:064x}", "context": {"n": n}}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `condition` (the queue is internal to the log: there is nothing to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def queued(log: Any) -> int:
    queue: CommitQueue = log._queue
    with queue._cond:
        return len(queue._queue)


def run_threads(target: Callable[[int], object], count: int = THREADS) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            target(n)
        except BaseException as e:  # collected: every thread's outcome is checked
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return errors


@contextlib.contextmanager
def another_writer(path: Path) -> Iterator[None]:
    """Another connection holds the SQLite database's write lock for the block (then rolls back)."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def assert_one_linear_chain(log: Any, count: int) -> None:
    records = list(log.records())
    assert [r.seq for r in records] == list(range(1, count + 1))
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.record_hash
    result = verify_chain(log)
    assert result.ok, result.reason
    assert result.records == count


class FsyncProbe:
    """Wraps os.fsync as the audit log module sees it: the real fsync, then a note of the lines it made durable."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.durable_lines = 0
        self.calls = 0
        self.hold: Callable[[int], None] | None = None  # called before the real fsync, with the call number
        self.fail_on: set[int] = set()
        real = os.fsync

        def fsync(fd: int) -> None:
            with self.lock:
                self.calls += 1
                call = self.calls
            if self.hold is not None:
                self.hold(call)
            if call in self.fail_on:
                raise OSError(errno.EIO, "Input/output error")
            real(fd)
            lines = self.path.read_bytes().count(b"\n")
            with self.lock:
                self.durable_lines = max(self.durable_lines, lines)

        monkeypatch.setattr(audit_log_module.os, "fsync", fsync)


@pytest.fixture
def jsonl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[JsonlAuditLog, FsyncProbe]]:
    path = tmp_path / "audit.jsonl"
    probe = FsyncProbe(path, monkeypatch)
    yield JsonlAuditLog(path), probe


def test_threads_appending_share_fsyncs_and_keep_one_linear_chain(jsonl: tuple[JsonlAuditLog, FsyncProbe]) -> None:
    log, probe = jsonl
    returned_before_durable: list[int] = []

    def append(n: int) -> None:
        for i in range(25):
            record = log.append(fields(n * 100 + i))
            with probe.lock:  # the line holding this record must have been fsynced already
                if probe.durable_lines < record.seq:
                    returned_before_durable.append(record.seq)

    assert run_threads(append) == []
    assert returned_before_durable == []
    assert_one_linear_chain(log, THREADS * 25)
    assert probe.calls <= THREADS * 25


def test_appends_queued_behind_a_write_go_out_in_one_fsync(jsonl: tuple[JsonlAuditLog, FsyncProbe]) -> None:
    log, probe = jsonl

    def hold(call: int) -> None:
        if call == 1:  # the first leader waits inside its durable write until everyone else queued
            wait_for(lambda: queued(log) == THREADS - 1, "the other appends to queue")

    probe.hold = hold
    assert run_threads(lambda n: log.append(fields(n))) == []
    assert probe.calls == 2  # the first leader's record, then the other fifteen together
    assert_one_linear_chain(log, THREADS)


def test_a_failed_fsync_fails_every_append_of_its_batch_and_leaves_no_line(
        jsonl: tuple[JsonlAuditLog, FsyncProbe]) -> None:
    log, probe = jsonl
    probe.hold = lambda call: wait_for(lambda: queued(log) == THREADS - 1, "the queue") if call == 1 else None
    probe.fail_on = {2}
    results: list[AuditRecord] = []
    errors = run_threads(lambda n: results.append(log.append(fields(n))))
    assert len(results) == 1 and results[0].seq == 1
    assert len(errors) == THREADS - 1
    assert all(type(e) is BackendUnavailable for e in errors)
    assert len({id(e) for e in errors}) == THREADS - 1  # each waiter raises its own copy
    assert log.path.read_bytes().count(b"\n") == 1  # the batch's lines were cut off again
    assert log.append(fields(99)).seq == 2  # the chain goes on from the acknowledged record
    assert_one_linear_chain(log, 2)


def test_a_record_that_cannot_be_built_fails_alone(jsonl: tuple[JsonlAuditLog, FsyncProbe]) -> None:
    log, probe = jsonl
    probe.hold = lambda call: wait_for(lambda: queued(log) == THREADS - 1, "the queue") if call == 1 else None

    def append(n: int) -> None:
        if n % 4 == 3:
            log.append({**fields(n), "context": {"bad": float("nan")}})
        elif n % 4 == 2:
            def seal(claims: Any) -> str:
                raise BackendUnavailable("the key is down")
            log.append({**fields(n), "kind": "checkpoint"}, seal=seal)
        else:
            log.append(fields(n))

    errors = run_threads(append)
    assert sorted(type(e).__name__ for e in errors) == sorted(["ConfigError"] * 4 + ["BackendUnavailable"] * 4)
    assert_one_linear_chain(log, THREADS - 8)  # no gap where the failed ones would have been


@pytest.mark.parametrize("name", ["a.jsonl", "a.db"])
def test_two_log_objects_on_one_file_do_not_trust_a_stale_head(tmp_path: Path, name: str) -> None:
    kind = JsonlAuditLog if name.endswith(".jsonl") else SQLiteAuditLog
    first, second = kind(tmp_path / name), kind(tmp_path / name)
    for n in range(10):
        (first if n % 3 else second).append(fields(n))
    assert_one_linear_chain(first, 10)


def test_sqlite_one_writer_appends_with_the_statements_of_the_raw_write(tmp_path: Path) -> None:
    log = SQLiteAuditLog(tmp_path / "audit.db")
    log.append(fields(0))
    statements: list[str] = []
    assert log._db is not None
    log._db.set_trace_callback(statements.append)
    log.append(fields(1))
    assert [statement.split()[0] for statement in statements] == ["BEGIN", "INSERT", "COMMIT"]


def test_sqlite_a_lost_race_chains_the_append_after_the_other_writers_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    first, second = SQLiteAuditLog(path), SQLiteAuditLog(path)
    first.append(fields(0))
    theirs = second.append(fields(1))
    mine = first.append(fields(2))  # first's head is stale: its seq 2 is taken, so it reads the head again
    assert (mine.seq, mine.prev_hash) == (3, theirs.record_hash)
    assert list(first.records())[-1] == mine  # what was acknowledged is what is stored
    assert_one_linear_chain(first, 3)


def test_sqlite_threads_share_transactions_and_keep_one_linear_chain(tmp_path: Path) -> None:
    log = SQLiteAuditLog(tmp_path / "audit.db")
    commits: list[str] = []
    assert log._db is not None
    held = threading.Event()

    def trace(statement: str) -> None:
        if statement == "COMMIT":
            commits.append(statement)
        if statement == "BEGIN IMMEDIATE" and not held.is_set():
            held.set()  # the first leader waits inside its transaction until everyone else queued
            wait_for(lambda: queued(log) == THREADS - 1, "the other appends to queue")

    log._db.set_trace_callback(trace)
    assert run_threads(lambda n: log.append(fields(n))) == []
    assert len(commits) == 2
    assert_one_linear_chain(log, THREADS)


def test_sqlite_a_failed_transaction_fails_every_waiter_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = SQLiteAuditLog(path, timeout=0.2)
    log.append(fields(0))
    with another_writer(path):  # every batch times out
        errors = run_threads(lambda n: log.append(fields(n)), count=8)
    assert len(errors) == 8 and all(type(e) is BackendUnavailable for e in errors)
    assert log.append(fields(9)).seq == 2
    assert_one_linear_chain(log, 2)


def test_read_only_and_closed_logs_still_refuse(tmp_path: Path) -> None:
    log = SQLiteAuditLog(tmp_path / "audit.db")
    log.close()
    with pytest.raises(ConfigError):
        log.append(fields(1))
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(ConfigError):
        JsonlAuditLog(tmp_path / "a.jsonl", read_only=True).append(fields(1))


@pytest.mark.parametrize("value", [
    {"b": 1, "a": "x", "c": None, "d": True, "e": False},
    {"s": "tab\there \"quoted\" back\\slash \x00\x01\x1f\x7f / \u2028 é 漢字 😀"},
    {"nested": {"z": [1, -2, 2**53 - 1, -(2**53 - 1), "x", {"k": []}], "a": {}}},
    {"big": 2**53},  # outside the safe range: refused by both
    {"f": 1.0, "g": 1e21, "h": 0.1},  # floats: the full implementation formats them
    {"\u00e9": 1, "e": 2, "\U0001f600": 3, "\uff61": 4},  # non-ASCII keys: UTF-16 order
    {"lone": "\ud800"},
    [1, "a", None],
])
def test_record_json_is_rfc8785(value: Any) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(ConfigError):
            record_json(value)
    else:
        assert record_json(value) == expected
        assert json.loads(record_json(value)) == value


CRASHING_APPENDER = """
import sys, threading
from signers.audit import open_audit_log
log = open_audit_log(sys.argv[1])
printing = threading.Lock()

def append(n):
    while True:
        record = log.append({"ts": "2026-12-01T00:00:00Z", "kind": "signature", "key_id": "k", "alg": "EdDSA",
                             "message_sha256": None, "context": {"thread": n}})
        with printing:  # acknowledged: the append returned
            sys.stdout.write(f"{record.seq} {record.record_hash}\\n")
            sys.stdout.flush()

for n in range(8):
    threading.Thread(target=append, args=(n,), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.parametrize("name", ["crash.jsonl", "crash.db"])
def test_a_crash_mid_batch_loses_only_unacknowledged_appends(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    process = subprocess.Popen([sys.executable, "-c", CRASHING_APPENDER, str(path)], stdout=subprocess.PIPE,
                               cwd=Path(__file__).resolve().parents[2])
    assert process.stdout is not None
    acknowledged: dict[int, str] = {}
    try:
        while len(acknowledged) < 300:  # batches are in flight in eight threads when the kill lands
            line = process.stdout.readline()
            assert line, "the appender died before the kill"
            seq, record_hash = line.decode().split()
            acknowledged[int(seq)] = record_hash
    finally:
        process.send_signal(signal.SIGKILL)
        rest, _ = process.communicate(timeout=30)
    for text in rest.decode().splitlines():  # acknowledged before the kill, still in the pipe
        seq, record_hash = text.split()
        acknowledged[int(seq)] = record_hash
    log = JsonlAuditLog(path) if name.endswith(".jsonl") else SQLiteAuditLog(path)
    stored = {record.seq: record.record_hash for record in log.records()}
    assert all(stored.get(seq) == record_hash for seq, record_hash in acknowledged.items())
    assert_one_linear_chain(log, len(stored))
    assert log.append(fields(1)).seq == len(stored) + 1  # and the chain goes on
