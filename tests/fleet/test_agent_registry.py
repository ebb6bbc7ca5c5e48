"""The agent registry kind, one contract suite run against SQLite, PostgreSQL and Redis.

Append-only by compare-and-set on the head (two writers from one head: one wins, the other
gets Conflict and nothing is written), every history verified on read (a tampered row is
StateCorrupt, a re-signed one HistoryInvalid), durable and visible to a second connection,
bad input typed, and several processes appending at once make one linear history.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

import signers
from signers import KeySpec
from signers.agents.errors import HistoryInvalid
from signers.agents.lifecycle import GENESIS as LIFECYCLE_GENESIS
from signers.agents.lifecycle import (
    TRANSITION_TYP,
    AgentHistory,
    Approvers,
    advance,
    register,
    transition_hash,
    verify_history,
)
from signers.cli import main
from signers.errors import ConfigError, Conflict, StateCorrupt
from signers.jose import sign_jwt
from signers.passport import code_hash_of
from signers.stores import StateBackend, open_state
from signers.stores.agent_registry import GENESIS, HistoryRow, token_hash
from signers.stores.postgres.schema import LATEST

ROOT = Path(__file__).resolve().parents[2]
CODE = code_hash_of(b"registry agent v1")
WRITERS = 4
PER_WRITER = 6


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("registry-keys")
    password = directory / "password"
    password.write_text("registry test password\n", encoding="utf-8")
    password.chmod(0o600)
    uri = f"file:{directory / 'keys'}?password-source=file:{password}"
    with signers.open_store(uri) as store:
        for name in ("approver", "outsider", *(f"w{n}" for n in range(WRITERS))):
            store.create_key(name, KeySpec.ED25519)
        yield uri, {name: store.open(name) for name in ("approver", "outsider", *(f"w{n}" for n in range(WRITERS)))}


@pytest.fixture(scope="module")
def keys(key_dir: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return key_dir[1]


@pytest.fixture(scope="module")
def approvers(keys: dict[str, Any]) -> Approvers:
    return Approvers.of({"approver": [keys["approver"], *(keys[f"w{n}"] for n in range(WRITERS))],
                         "visitor": [keys["outsider"]]})


def _verifier(approvers: Approvers) -> Any:
    return lambda tokens, agent: verify_history(tokens, approvers, agent=agent)


def _agent() -> str:
    return f"agent-{uuid.uuid4().hex[:12]}"


def _registered(store: Any, keys: dict[str, Any], approvers: Approvers) -> AgentHistory:
    agent = _agent()
    first = register(keys["approver"], agent, CODE, approvers)
    return store.append(agent, first.tokens[-1], after=GENESIS)  # type: ignore[no-any-return]


def _next(keys: dict[str, Any], approvers: Approvers, history: AgentHistory, who: str = "approver") -> str:
    to = "INTAKE" if history.stage == "SUSPENDED" else "SUSPENDED"  # a cycle the lifecycle allows forever
    return advance(keys[who], history, to, approvers, reason=f"to {to}").tokens[-1]


def test_genesis_is_the_lifecycles() -> None:
    assert GENESIS == LIFECYCLE_GENESIS and token_hash("a.b.c") == transition_hash("a.b.c")


def test_append_read_and_verify(state: StateBackend, keys: dict[str, Any], approvers: Approvers) -> None:
    store = state.agent_registry(_verifier(approvers))
    history = _registered(store, keys, approvers)
    assert store.history(history.agent) == history and store.head(history.agent) == history.head
    advanced = store.append(history.agent, _next(keys, approvers, history), after=history.head)
    assert [t.to_stage for t in advanced.transitions] == ["INTAKE", "SUSPENDED"]
    assert store.history(history.agent) == advanced
    assert history.agent in store.agents()
    assert store.history(_agent()) is None and store.head(_agent()) == GENESIS
    with open_state(state.uri) as other:  # durable once returned: a second connection sees it
        assert other.agent_registry(_verifier(approvers)).history(history.agent) == advanced


def test_two_writers_from_one_head_one_wins(state: StateBackend, keys: dict[str, Any], approvers: Approvers) -> None:
    store = state.agent_registry(_verifier(approvers))
    history = _registered(store, keys, approvers)
    first, second = _next(keys, approvers, history, "w0"), _next(keys, approvers, history, "w1")
    store.append(history.agent, first, after=history.head)
    with pytest.raises(Conflict):
        store.append(history.agent, second, after=history.head)
    assert store.history(history.agent).tokens == [*history.tokens, first]  # type: ignore[union-attr]
    with pytest.raises(Conflict):  # registering again: the agent's head is no longer GENESIS
        store.append(history.agent, history.tokens[0], after=GENESIS)


def test_the_engine_refuses_a_stale_insert_itself(state: StateBackend, keys: dict[str, Any],
                                                  approvers: Approvers) -> None:
    """The compare-and-set is the engine's, not only the Python check before it."""
    store = state.agent_registry(_verifier(approvers))
    history = _registered(store, keys, approvers)
    token = _next(keys, approvers, history)
    store.append(history.agent, token, after=history.head)
    other = _next(keys, approvers, history, "w2")  # a second writer's transition from the same head
    assert store._insert(history.agent, HistoryRow(2, history.head, token_hash(other), other)) is False
    assert len(store.history(history.agent).tokens) == 2  # type: ignore[union-attr]


def test_nothing_unverified_is_written(state: StateBackend, keys: dict[str, Any], approvers: Approvers) -> None:
    store = state.agent_registry(_verifier(approvers))
    history = _registered(store, keys, approvers)
    forged = _forge(keys["outsider"], history, "SUSPENDED")  # signed by a key without a role
    with pytest.raises(HistoryInvalid):
        store.append(history.agent, forged, after=history.head)
    stranger = register(keys["approver"], _agent(), CODE, approvers).tokens[-1]  # another agent's registration
    with pytest.raises(HistoryInvalid):
        store.append(history.agent, stranger, after=history.head)
    assert store.history(history.agent) == history


def _forge(key: Any, history: AgentHistory, to: str) -> str:
    """A well-formed next transition signed by `key`, whatever roles it holds."""
    claims = {"iss": key.key_id, "sub": history.agent, "jti": uuid.uuid4().hex, "iat": int(time.time()),
              "seq": len(history.transitions) + 1, "from": history.stage, "to": to, "approver": key.key_id,
              "reason": "forged", "code_hash": history.code_hash, "prev": history.head}
    return sign_jwt(key, claims, typ=TRANSITION_TYP)


def _tamper(state: StateBackend, request: pytest.FixtureRequest, agent: str, seq: int, row: dict[str, Any]) -> None:
    engine = state.features.engine
    if engine == "sqlite":
        import sqlite3

        with sqlite3.connect(f"{state.path}.agents.db") as db:  # type: ignore[attr-defined]
            db.execute("UPDATE agent_history SET prev = ?, hash = ?, token = ? WHERE agent = ? AND seq = ?",
                       (row["prev"], row["hash"], row["token"], agent, seq))
    elif engine == "postgresql":
        with psycopg.connect(request.getfixturevalue("postgres_uri"), autocommit=True) as conn:
            conn.execute("UPDATE keyplane_agent_history SET prev = %s, hash = %s, token = %s WHERE agent = %s "
                         "AND seq = %s", (row["prev"], row["hash"], row["token"], agent, seq))
    else:
        uri = request.getfixturevalue("redis_uri")
        base, _, prefix = uri.partition("?prefix=")
        client = redis.Redis.from_url(base)
        client.lset(f"{prefix}agents:history:{agent}", seq - 1, json.dumps({"seq": seq, **row}))
        client.close()


def test_a_tampered_row_is_refused(state: StateBackend, keys: dict[str, Any], approvers: Approvers,
                                   request: pytest.FixtureRequest) -> None:
    store = state.agent_registry(_verifier(approvers))
    history = _registered(store, keys, approvers)
    history = store.append(history.agent, _next(keys, approvers, history), after=history.head)
    original = history.transitions[1]
    # a token swapped without its hash: the store's own chain check refuses it
    swapped = _next(keys, approvers, AgentHistory(history.agent, history.transitions[:1]), "w3")
    _tamper(state, request, history.agent, 2, {"prev": original.prev, "hash": original.hash, "token": swapped})
    with pytest.raises(StateCorrupt):
        store.history(history.agent)
    with pytest.raises(StateCorrupt):  # and nothing is appended to a damaged history
        store.append(history.agent, _next(keys, approvers, history), after=original.hash)
    # a consistent row re-signed by a key without the role: the verifier refuses it
    resigned = _forge(keys["outsider"], AgentHistory(history.agent, history.transitions[:1]), "SUSPENDED")
    _tamper(state, request, history.agent, 2, {"prev": original.prev, "hash": token_hash(resigned),
                                               "token": resigned})
    with pytest.raises(HistoryInvalid):
        store.history(history.agent)


@pytest.mark.parametrize("agent", ["", "../etc/passwd", "a" * 201, "with space", "nul\x00", 7])
def test_bad_agent_ids_are_typed(state: StateBackend, approvers: Approvers, agent: Any) -> None:
    store = state.agent_registry(_verifier(approvers))
    with pytest.raises(ConfigError):
        store.history(agent)
    with pytest.raises(ConfigError):
        store.append(agent, "a.b.c", after=GENESIS)


@pytest.mark.parametrize(("token", "after"), [
    ("not a token", GENESIS), ("a.b.c\n", GENESIS), ("é.b.c", GENESIS), (b"a.b.c", GENESIS), ("a.b.c", "head"),
    ("a.b.c", "A" * 64), ("x" * 70_000 + ".b.c", GENESIS),
])
def test_bad_appends_are_typed_and_write_nothing(state: StateBackend, approvers: Approvers, token: Any,
                                                 after: str) -> None:
    store = state.agent_registry(_verifier(approvers))
    agent = _agent()
    with pytest.raises(ConfigError):
        store.append(agent, token, after=after)
    assert store.history(agent) is None and agent not in store.agents()


def test_a_verifier_is_required(state: StateBackend) -> None:
    with pytest.raises(ConfigError):
        state.agent_registry(None)  # type: ignore[arg-type]


def test_the_approvers_document_is_compare_and_set(state: StateBackend, approvers: Approvers) -> None:
    store = state.agent_registry(_verifier(approvers))
    version, _ = store.approvers()
    new = store.put_approvers(approvers.to_dict(), expected=version)
    assert new == version + 1 and store.approvers() == (new, approvers.to_dict())
    with pytest.raises(Conflict):
        store.put_approvers({"approvers": []}, expected=version)
    assert store.approvers() == (new, approvers.to_dict())
    for bad in ([1, 2], {"x": {1, 2}}, {"big": "x" * (4 * 1024 * 1024)}):
        with pytest.raises(ConfigError):
            store.put_approvers(bad, expected=new)  # type: ignore[arg-type]
    for expected in (-1, True, "1"):
        with pytest.raises(ConfigError):
            store.put_approvers({}, expected=expected)  # type: ignore[arg-type]
    assert store.approvers()[0] == new


WRITER = """
import sys, time
import signers
from signers.agents.lifecycle import Approvers, advance, verify_history
from signers.errors import Conflict
from signers.stores import open_state

state_uri, key_uri, name, agent, wanted = sys.argv[1:6]
with open_state(state_uri) as state, signers.open_store(key_uri) as keys:
    key = keys.open(name)
    registry = state.agent_registry(lambda t, a: None)
    approvers = Approvers.from_dict(registry.approvers()[1])
    registry = state.agent_registry(lambda t, a: verify_history(t, approvers, agent=a))
    won = lost = 0
    while won < int(wanted):
        history = registry.history(agent)
        to = "INTAKE" if history.stage == "SUSPENDED" else "SUSPENDED"
        token = advance(key, history, to, approvers, reason=name).tokens[-1]
        try:
            registry.append(agent, token, after=history.head)
            won += 1
        except Conflict:
            lost += 1
    print(won, lost)
"""


def test_concurrent_writer_processes_make_one_linear_history(
        state: StateBackend, key_dir: tuple[str, dict[str, Any]], approvers: Approvers,
        summary_lines: list[str]) -> None:
    keys = key_dir[1]
    store = state.agent_registry(_verifier(approvers))
    version, _ = store.approvers()
    store.put_approvers(approvers.to_dict(), expected=version)
    history = _registered(store, keys, approvers)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, state.uri, key_dir[0], f"w{n}", history.agent,
                               str(PER_WRITER)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for n in range(WRITERS)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * WRITERS
    final = store.history(history.agent)
    assert final is not None
    assert len(final.transitions) == 1 + WRITERS * PER_WRITER  # every acknowledged append, no gap
    assert [t.seq for t in final.transitions] == list(range(1, len(final.transitions) + 1))
    for before, after in zip(final.transitions, final.transitions[1:], strict=False):
        assert after.prev == before.hash  # one chain: no fork
    by_writer = {f"w{n}": sum(t.reason == f"w{n}" for t in final.transitions) for n in range(WRITERS)}
    assert by_writer == {f"w{n}": PER_WRITER for n in range(WRITERS)}
    conflicts = sum(int(o.split()[1]) for o in outputs)
    summary_lines.append(f"fleet: agent registry on {state.features.engine}: {WRITERS} writer processes, "
                         f"{WRITERS * PER_WRITER} appends, one linear history, {conflicts} lost compare-and-sets")


def test_postgres_schema_1_migrates_to_the_agent_registry(postgres_uri: str, keys: dict[str, Any],
                                                          approvers: Approvers,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert LATEST >= 2  # the agent registry came with schema step 2
    base, _, _ = postgres_uri.rpartition("/")
    name = f"keyplane_v1_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_uri, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with open_state(f"{base}/{name}") as state:
            state.revocations().revoke("kept-across-the-migration")
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:  # back to what keyplane 1 left
            conn.execute("DROP TABLE keyplane_agent_history, keyplane_agent_approvers")
            conn.execute("UPDATE keyplane_schema SET version = 1")
        with pytest.raises(ConfigError, match="keyplane store migrate"):
            open_state(f"{base}/{name}?migrate=false")
        assert main(["store", "migrate", f"{base}/{name}"]) == 0
        assert f"keyplane schema at version {LATEST}" in capsys.readouterr().out
        with open_state(f"{base}/{name}?migrate=false") as state:
            assert state.revocations().is_revoked("kept-across-the-migration")
            store = state.agent_registry(_verifier(approvers))
            assert store.history(_registered(store, keys, approvers).agent) is not None
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            assert conn.execute("SELECT version FROM keyplane_schema").fetchone()[0] == LATEST
            conn.execute("UPDATE keyplane_schema SET version = %s", (LATEST + 1,))  # a newer keyplane was here
        assert main(["store", "migrate", f"{base}/{name}"]) != 0
        assert "newer than this keyplane" in capsys.readouterr().err
    finally:
        with psycopg.connect(postgres_uri, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
