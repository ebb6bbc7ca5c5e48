"""A fleet replica for the multi-process test: ``python -m tests.fleet.replica issuer|verifier ...``.

issuer STATE_URI REVOCATION_URI NAME
    appends an audit record every few milliseconds to the shared audit log on PostgreSQL and
    prints ``ACK <seq>`` after each append returns (what an issuer acknowledges to a caller);
    ``REVOKE <jti>`` on stdin revokes in the shared revocation store and prints ``REVOKED <jti> <t>``.
    Store outages print ``DOWN <error>`` and the loop goes on: the process is never restarted.
verifier REVOCATION_URI BOUND
    keeps a RevocationCache; ``WATCH <jti>`` makes it report ``SEEN <jti> <t>`` (wall time) when
    the cache first answers "revoked"; ``PROBE`` prints ``OK`` or ``STALE`` (fail-closed refusal).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

from signers.errors import BackendUnavailable, KeyplaneError
from signers.stores import open_state
from signers.stores.cache import RevocationCache

_out = threading.Lock()


def say(*words: object) -> None:
    with _out:
        print(*words, flush=True)


def issuer(state_uri: str, revocation_uri: str, name: str) -> None:
    state = open_state(state_uri)
    revocations = open_state(revocation_uri).revocations()
    log = state.audit_log("fleet")

    def commands() -> None:
        for line in sys.stdin:
            verb, _, arg = line.strip().partition(" ")
            if verb == "REVOKE":
                started = time.time()
                revocations.revoke(arg, reason=f"revoked at {name}")
                say("REVOKED", arg, repr(started))

    threading.Thread(target=commands, daemon=True).start()
    say("READY")
    i = 0
    while True:
        try:
            record = log.append({"ts": "2026-12-01T00:00:00Z", "kind": "signature", "key_id": name, "alg": "Ed25519",
                                 "message_sha256": f"{i:064x}", "context": {"issuer": name, "i": i}})
            say("ACK", record.seq)
            i += 1
        except KeyplaneError as e:
            say("DOWN", type(e).__name__)
            time.sleep(0.05)  # back off while the database is away
        time.sleep(0.005)  # a steady load, not a spin


def verifier(revocation_uri: str, bound: str) -> None:
    store = open_state(revocation_uri).revocations()
    cache = RevocationCache(store, staleness_bound=float(bound), push_timeout=0.25, poll_interval=0.05)
    watching: set[str] = set()
    lock = threading.Lock()

    def watch() -> None:
        while True:
            with lock:
                pending = list(watching)
            for jti in pending:
                try:
                    if cache.is_revoked(jti):
                        say("SEEN", jti, repr(time.time()))
                        with lock:
                            watching.discard(jti)
                except BackendUnavailable:
                    pass
            time.sleep(0.001)

    threading.Thread(target=watch, daemon=True).start()
    say("READY")
    for line in sys.stdin:
        verb, _, arg = line.strip().partition(" ")
        if verb == "WATCH":
            with contextlib.suppress(BackendUnavailable):
                cache.is_revoked(arg)  # cached as "not revoked" now: the push must correct it
            with lock:
                watching.add(arg)
            say("WATCHING", arg)
        elif verb == "PROBE":
            try:
                cache.is_revoked(arg or "probe")
                say("OK", arg)
            except BackendUnavailable:
                say("STALE", arg)


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    issuer(*args) if role == "issuer" else verifier(*args)
