"""One linear audit chain from 8 writer processes appending to PostgreSQL at once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from signers.audit import verify_chain
from signers.stores import open_state

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
from signers.stores import open_state
with open_state(sys.argv[1]) as state:
    log = state.audit_log(sys.argv[2])
    for i in range(int(sys.argv[3])):
        log.append({"ts": "2026-12-01T00:00:00Z", "kind": "signature", "key_id": sys.argv[4], "alg": "Ed25519",
                    "message_sha256": f"{i:064x}", "context": {"writer": sys.argv[4], "i": i}})
"""


def test_eight_writer_processes_make_one_chain(postgres_uri: str, summary_lines: list[str]) -> None:
    name = f"writers-{uuid.uuid4().hex[:8]}"
    per_writer = 40
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, postgres_uri, name, str(per_writer), f"w{n}"], cwd=ROOT)
             for n in range(8)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    with open_state(postgres_uri) as state:
        log = state.audit_log(name)
        records = list(log.records())
        assert [r.seq for r in records] == list(range(1, 8 * per_writer + 1))  # no gap, no fork
        assert {r.context["writer"] for r in records} == {f"w{n}" for n in range(8)}
        assert verify_chain(log).ok
    summary_lines.append(f"fleet: 8 PostgreSQL writer processes appended {len(records)} records as one linear chain")
