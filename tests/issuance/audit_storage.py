"""Storage-level edits of an audit log (what an attacker, or a bad disk, could do), in both formats."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["read_records", "write_records"]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The stored records, in storage order."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    with sqlite3.connect(path) as db:
        return [json.loads(r[0]) for r in db.execute("SELECT record FROM audit ORDER BY seq")]


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the stored records in storage order (SQLite rows keep their positions 1..n)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)")
        db.execute("DELETE FROM audit")
        db.executemany("INSERT INTO audit (seq, record) VALUES (?, ?)",
                       [(i, json.dumps(r)) for i, r in enumerate(records, start=1)])
