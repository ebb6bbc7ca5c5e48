"""Audit appends against the raw durable write of the same bytes, same durability, same run.

    python benchmarks/bench_audit.py [--rounds 9] [--seconds 0.3] [--pairs 1500]

Rows (keyplane time / raw time, so 1.00 = no overhead; issue 21 item 4: within 1.2x):

* JSONL append (flock, head, hash chain, one write, fsync) vs open + O_APPEND write + fsync;
* SQLite append (BEGIN IMMEDIATE, head, hash chain, INSERT, COMMIT in WAL with
  ``synchronous=FULL``) vs the same INSERT + COMMIT on a raw sqlite3 connection with the
  same pragmas;
* 8 threads appending to one JSONL log (group commit: one fsync for all queued appends)
  vs 8 threads doing the raw durable write in turn (one writer at a time, as a chain
  needs, one fsync each): a speed-up, higher is better.

The same rows run inside benchmarks/run_all.py's one interleaved table.

Where the extra time goes (measured on a 2-CPU VM, ext4 on virtio): not I/O. strace shows
the keyplane append and the raw write make the same syscalls (SQLite: 2 pwrite64 and one
fdatasync a commit, the same bytes; JSONL adds one flock and two fstat). It is the append's
Python work: the record's RFC 8785 body and SHA-256, the stored JSON, the head check and the
group-commit queue, about 15 us hot, which on this VM runs three to four times slower right
after an fsync returns (cold caches: 50-70 us before COMMIT against about 15 us for the raw
INSERT). The record is now written in one pass (`audit_log._direct_record`), which took
about a quarter off that (cold); the rest is the chain itself. The fsync latency of such a disk also
drifts by 2x within seconds, so rounds alternate which side goes first (run_all.measure)
and the table gives the min-max over rounds: read a ratio together with its spread.

A second table pairs single calls: each keyplane append is timed next to one raw write (the
order alternating), so a drift of the disk hits both sides of every pair alike; it prints the
ratio of the medians and of the means over `--pairs` pairs. It is the steadier figure on
such a disk (two runs agree within about 0.03, where the slice medians swing by 0.3).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from signers.tokens.audit import JsonlAuditLog, SQLiteAuditLog  # noqa: E402

FIELDS = {"ts": "2026-12-01T00:00:00.000000Z", "kind": "signature", "key_id": "k" * 43, "alg": "ES256",
          "message_sha256": "0" * 64, "context": {"caller": "issuer", "op": "issue-passport", "request": "0" * 16}}
THREADS = 8
PER_THREAD = 8

# (name, keyplane op, raw op, target, higher_is_better)
Comparison = tuple[str, Callable[[], Any], Callable[[], Any], str, bool]


def _line() -> bytes:
    """A stored record of the same size as the ones the log writes."""
    record = {**FIELDS, "seq": 1, "prev_hash": "0" * 64, "record_hash": "0" * 64}
    return (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _raw_jsonl(path: Path, line: bytes) -> Callable[[], None]:
    def append() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    return append


def _raw_sqlite(path: Path, line: bytes) -> Callable[[], None]:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)")
    text = line.decode().strip()

    def insert() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO audit (record) VALUES (?)", (text,))
        db.execute("COMMIT")

    return insert


def _threaded(pool: ThreadPoolExecutor, op: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        list(pool.map(lambda _: [op() for _ in range(PER_THREAD)], range(THREADS)))

    return run


def comparisons(directory: Path) -> list[Comparison]:
    """The rows, on files under `directory` (the caller removes it)."""
    line = _line()
    jsonl = JsonlAuditLog(directory / "audit.jsonl")
    sqlite_log = SQLiteAuditLog(directory / "audit.db")
    shared = JsonlAuditLog(directory / "shared.jsonl")
    pool = ThreadPoolExecutor(THREADS)
    raw_shared = _raw_jsonl(directory / "raw-shared.jsonl", line)
    one_writer = threading.Lock()  # a chain has one writer at a time: the raw writes take turns too

    def raw_in_turn() -> None:
        with one_writer:
            raw_shared()

    return [
        ("JSONL append vs raw open+write+fsync", lambda: jsonl.append(FIELDS), _raw_jsonl(directory / "raw.jsonl", line),
         "<= 1.2", False),
        ("SQLite append vs raw INSERT+COMMIT (WAL, FULL)", lambda: sqlite_log.append(FIELDS),
         _raw_sqlite(directory / "raw.db", line), "<= 1.2", False),
        (f"{THREADS} threads JSONL: group commit vs raw fsync in turn (speed-up)",
         _threaded(pool, lambda: shared.append(FIELDS)), _threaded(pool, raw_in_turn), "", True),
    ]


def paired(ours: Callable[[], Any], base: Callable[[], Any], pairs: int) -> tuple[float, float, float, float]:
    """(median ours, median raw, ratio of medians, ratio of means) over `pairs` back-to-back calls, order alternating."""
    import statistics
    import time

    for _ in range(20):  # warm-up: files, connections, caches
        ours()
        base()
    mine: list[float] = []
    raw: list[float] = []
    for i in range(pairs):
        first, second, first_times, second_times = (ours, base, mine, raw) if i % 2 else (base, ours, raw, mine)
        started = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        first_times.append(middle - started)
        second_times.append(time.perf_counter() - middle)
    m, r = statistics.median(mine), statistics.median(raw)
    return m, r, m / r, statistics.mean(mine) / statistics.mean(raw)


def main() -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import tempfile

    from run_all import Row, measure, print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (fsync latency is noisy)")
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--pairs", type=int, default=1500, help="single-call pairs for the paired table (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keyplane-bench-audit-") as tmp:
        rows = [Row("audit", name, ours, base, target, higher) for name, ours, base, target, higher in
                comparisons(Path(tmp))]
        before = os.getloadavg()
        measure(rows, args.rounds, args.seconds)
        print_table(rows, args.rounds, args.seconds, before, os.getloadavg(), [])
        if args.pairs:
            print(f"\npaired single calls ({args.pairs} pairs, order alternating; target <= 1.2):")
            print("| comparison | keyplane median us | raw median us | ratio of medians | ratio of means |")
            print("|---|---|---|---|---|")
            (Path(tmp) / "paired").mkdir()
            for name, ours, base, _target, higher in comparisons(Path(tmp) / "paired"):
                if not higher:
                    m, r, ratio, mean_ratio = paired(ours, base, args.pairs)
                    print(f"| {name} | {m * 1e6:.0f} | {r * 1e6:.0f} | {ratio:.2f} | {mean_ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
