"""Must show: 3 issuer and 4 verifier processes sharing PostgreSQL and Redis, all on 127.0.0.1.

- a revocation at any issuer is refused by every verifier within the bound (p50 / p99 printed);
- kill -9 of an issuer mid-load loses nothing it acknowledged; the audit chain is one linear
  chain that verifies;
- Redis stopped: verifiers fall back to polling, refuse (fail closed) past the bound, recover;
- PostgreSQL restarted: the issuers' stores reconnect without restarting the processes.

Private servers (started here, in temp dirs, on free ports) are used so that stopping them
never touches the machine's own services.
"""

from __future__ import annotations

import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from signers.audit import verify_chain
from signers.stores import open_state

from ..fixtures.state_servers import PrivatePostgres, PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
BOUND = 2.0


class Replica:
    """One child process; its stdout lines are queued as they arrive."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fleet.replica", *args], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.acks: list[int] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("READY", within=60)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if line.startswith("ACK "):
                self.acks.append(int(line.split()[1]))
            else:
                self.lines.put(line)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, prefix: str, within: float = 30) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line within {within} s")

    def probe_until(self, answer: str, within: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            self.send(f"PROBE {uuid.uuid4().hex}")
            line = self.expect("", within=10)
            while not line.startswith(("OK", "STALE")):
                line = self.expect("", within=10)
            if line.startswith(answer):
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"verifier never answered {answer} within {within} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    postgres = PrivatePostgres()
    redis = PrivateRedis(appendonly=True)  # revocations must survive the Redis restart below
    yield postgres, redis
    redis.destroy()
    postgres.destroy()


def test_a_fleet_of_issuers_and_verifiers(servers: tuple[PrivatePostgres, PrivateRedis],
                                          summary_lines: list[str]) -> None:
    postgres, redis = servers
    state_uri = f"{postgres.uri}?timeout=2&connect-timeout=1"
    revocation_uri = f"{redis.uri}?timeout=0.5&connect-timeout=0.5"
    issuers = [Replica("issuer", state_uri, revocation_uri, f"issuer-{n}") for n in range(3)]
    verifiers = [Replica("verifier", revocation_uri, str(BOUND)) for _ in range(4)]
    try:
        # 1. propagation: revoke at one issuer, every verifier refuses
        delays: list[float] = []
        for i in range(15):
            jti = f"jti-{i}-{uuid.uuid4().hex[:6]}"
            for v in verifiers:
                v.send(f"WATCH {jti}")
                v.expect("WATCHING")
            issuers[i % 3].send(f"REVOKE {jti}")
            started = float(issuers[i % 3].expect("REVOKED").split()[2])
            for v in verifiers:
                seen = v.expect(f"SEEN {jti}", within=BOUND + 5)
                delays.append(float(seen.split()[2]) - started)
        delays.sort()
        p50, p99 = statistics.median(delays), delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        assert p99 < BOUND
        summary_lines.append(f"fleet: revocation propagation to 4 verifiers (Redis stream push): "
                             f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over {len(delays)} samples")

        # 2. kill -9 one issuer mid-load: nothing acknowledged is lost, one linear chain
        deadline = time.monotonic() + 30
        while len(issuers[0].acks) < 50 and time.monotonic() < deadline:  # mid-load: it is writing
            time.sleep(0.01)
        issuers[0].process.send_signal(signal.SIGKILL)
        issuers[0].process.wait(timeout=30)
        acknowledged = {*issuers[0].acks}

        # 3. restart PostgreSQL: the surviving issuers reconnect by themselves
        postgres.stop("fast")
        issuers[1].expect("DOWN", within=30)
        postgres.start()
        before = len(issuers[1].acks)
        deadline = time.monotonic() + 60
        while len(issuers[1].acks) <= before + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(issuers[1].acks) > before + 5, "issuer did not resume after PostgreSQL came back"

        # 4. stop Redis: verifiers fail closed past the bound, then recover
        redis.stop()
        refused_after = verifiers[0].probe_until("STALE", within=BOUND + 15)
        for v in verifiers[1:]:
            v.probe_until("STALE", within=BOUND + 15)
        redis.start()
        for v in verifiers:
            v.probe_until("OK", within=30)
        summary_lines.append(f"fleet: with Redis stopped a verifier refused after {refused_after:.1f} s "
                             f"(bound {BOUND:g} s) and recovered when it returned")
    finally:
        for r in issuers + verifiers:
            r.stop()
    acknowledged |= {*issuers[1].acks, *issuers[2].acks}
    with open_state(state_uri) as state:
        log = state.audit_log("fleet")
        records = list(log.records())
        seqs = [r.seq for r in records]
        assert seqs == list(range(1, len(seqs) + 1)), "the chain has a gap or a fork"
        assert acknowledged <= set(seqs), "an acknowledged append was lost"
        assert verify_chain(log).ok
    summary_lines.append(f"fleet: {len(records)} audit records from 3 issuers (one killed -9), "
                         f"all {len(acknowledged)} acknowledged present, one linear chain")
