"""The agent gate against a bare `verify_passport` on the same Ed25519 passport, and rejection events.

    python benchmarks/bench_agents.py [--seconds 1.0] [--rounds 6] [--json out.json]

Keys are Ed25519 keys of a file store in a temporary directory. Every case verifies the
same passport; phases alternate (A B B A ...) so drift hits both sides alike. Ratios are
p50 latency over the baseline's (1.00: nothing added):

- ``verify_passport`` with a revocation store (the baseline), memory and SQLite;
- ``verify_agent_passport`` (adds stage, subject and group revocation);
- ``Gate.decide`` with every passport check (policy, signature, claims, issuer, expiry,
  token / agent / group revocation, stage, trust, scopes, code hash);
- ``Gate.decide`` with a proof of possession and an action token too (two more signature
  verifications, so about 3x by construction: shown, not hidden).

Rejection events: the throughput of refused verifications with no hub, against a hub
whose asynchronous subscriber sleeps 10 ms per event (it must not slow verification:
events beyond the bounded queue are dropped and counted).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from latency import sample_for, summarize  # noqa: E402

import signers  # noqa: E402
from signers import KeySpec  # noqa: E402
from signers.agents.actions import sign_agent_action  # noqa: E402
from signers.agents.events import RejectionEvents  # noqa: E402
from signers.agents.gate import Gate  # noqa: E402
from signers.agents.lifecycle import Approvers, advance, register  # noqa: E402
from signers.agents.passports import issue_agent_passport, verify_agent_passport  # noqa: E402
from signers.agents.policy import GatePolicy  # noqa: E402
from signers.agents.possession import ChallengeBook  # noqa: E402
from signers.errors import TokenError  # noqa: E402
from signers.jose import JWKS  # noqa: E402
from signers.passport import code_hash_of, prove_possession, verify_passport  # noqa: E402
from signers.revocation import MemoryRevocationStore, SQLiteRevocationStore  # noqa: E402

STAGES = (("VETTING", "approver"), ("TESTING", "approver"), ("DEV_APPROVED", "approver"),
          ("PROD_APPROVED", "release"), ("ACTIVE", "release"))
PARAMS = {"to": "acct-2", "amount": 100}


def _setup(directory: Path) -> dict[str, Any]:
    password = directory / "password"
    password.write_text("bench password\n")
    password.chmod(0o600)
    store = signers.open_store(f"file:{directory / 'keys'}?password-source=file:{password}")
    for name in ("issuer", "registrar", "approver", "release", "agent"):
        store.create_key(name, KeySpec.ED25519)
    keys = {name: store.open(name) for name in ("issuer", "registrar", "approver", "release", "agent")}
    approvers = Approvers.of({"registrar": [keys["registrar"]], "approver": [keys["approver"]],
                              "release-approver": [keys["release"]]})
    code = code_hash_of(b"bench agent")
    history = register(keys["registrar"], "bench-agent", code, approvers)
    for stage, who in STAGES:
        history = advance(keys[who], history, stage, approvers, reason="bench")
    passport = issue_agent_passport(keys["issuer"], history, name="bench", agent_key=keys["agent"].public_key,
                                    trust_score=90, scopes=["tools:read", "pay"], groups=["fleet-a", "fleet-b"],
                                    iss="https://issuer.bench")
    return {"keys": keys, "passport": passport, "code": code, "jwks": JWKS.of(keys["issuer"])}


def _alternate(cases: dict[str, Callable[[], Any]], seconds: float, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            samples[name] += sample_for(cases[name], seconds / rounds)
    return samples


def _gate_cases(world: dict[str, Any], revocations: Any, seconds: float) -> dict[str, Callable[[], Any]]:
    keys, token, jwks = world["keys"], world["passport"], world["jwks"]
    passport_only = GatePolicy.from_dict({
        "issuer": "https://issuer.bench",
        "servers": {"s": {"tools": {"read": {"min_stage": "PROD_APPROVED", "min_trust": 50, "scopes": ["tools:read"],
                                             "code_hashes": [world["code"]]}}}},
    })
    gate = Gate(passport_only, jwks, revocations=revocations)
    full_policy = GatePolicy.from_dict({"servers": {"s": {"tools": {"pay": {
        "min_stage": "ACTIVE", "scopes": ["pay"], "proof": True, "action_token": True}}}}})
    book = ChallengeBook("s", max_outstanding=1_000_000)
    full = Gate(full_policy, jwks, revocations=revocations, challenges=book)
    action = sign_agent_action(keys["issuer"], "bench-agent", "pay", PARAMS, ttl=3600)
    # one fresh challenge per call, answered before timing starts (more than the case can use)
    proofs = [prove_possession(keys["agent"], book.issue(), ttl=3600) for _ in range(int(20_000 * seconds) + 100)]

    def decide_full() -> None:
        decision = full.decide(token, server="s", tool="pay", proof=proofs.pop(), action_token=action, params=PARAMS)
        assert decision.allow, decision.reason

    def decide() -> None:
        assert gate.decide(token, server="s", tool="read").allow

    return {
        "verify_passport": lambda: verify_passport(token, jwks, revocations=revocations),
        "verify_agent_passport": lambda: verify_agent_passport(token, jwks, revocations=revocations,
                                                               required_stage="PROD_APPROVED"),
        "Gate.decide (passport checks)": decide,
        "Gate.decide (+ proof + action)": decide_full,
    }


def _events_cases(world: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    token, jwks = world["passport"], world["jwks"]
    hub = RejectionEvents(queue_size=1000)
    hub.subscribe(lambda event: time.sleep(0.01), asynchronous=True)

    def refused(events: RejectionEvents | None) -> Callable[[], None]:
        def call() -> None:
            try:
                verify_agent_passport(token, jwks, min_trust_score=99, events=events)
            except TokenError:
                return
            raise AssertionError("the passport should be refused")
        return call

    quick = RejectionEvents()
    quick.subscribe(lambda event: None)
    world["hub"] = hub
    return {"refusal, no events": refused(None), "refusal, no-op sync subscriber": refused(quick),
            "refusal, sleeping subscriber": refused(hub)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per case")
    parser.add_argument("--rounds", type=int, default=6, help="alternating phases per case")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        world = _setup(Path(tmp))
        sqlite = SQLiteRevocationStore(Path(tmp) / "revocations.db")
        for store_name, store in (("memory", MemoryRevocationStore()), ("sqlite", sqlite)):
            cases = _gate_cases(world, store, args.seconds)
            results = _alternate(cases, args.seconds, args.rounds)
            base = summarize(results["verify_passport"])[1]
            for name, samples in results.items():
                rate, p50, p99 = summarize(samples)
                rows.append({"group": f"gate ({store_name} revocations)", "case": name, "per_second": rate,
                             "p50_ms": p50, "p99_ms": p99, "ratio": p50 / base})
        events = _events_cases(world)
        results = _alternate(events, args.seconds, args.rounds)
        base_rate = summarize(results["refusal, no events"])[0]
        for name, samples in results.items():
            rate, p50, p99 = summarize(samples)
            rows.append({"group": "rejection events", "case": name, "per_second": rate, "p50_ms": p50,
                         "p99_ms": p99, "ratio": base_rate / rate})
        hub = world["hub"]
        note = f"events reported {hub.reported}, dropped (queue full) {hub.dropped}"
        hub.close()
        sqlite.close()
    print(f"{'group':<30} {'case':<32} {'ops/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7}")
    for row in rows:
        print(f"{row['group']:<30} {row['case']:<32} {row['per_second']:>10.0f} {row['p50_ms']:>9.3f} "
              f"{row['p99_ms']:>9.3f} {row['ratio']:>7.2f}")
    print(f"(gate ratios: p50 over verify_passport's; events ratio: throughput without / with; {note})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "note": note}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
