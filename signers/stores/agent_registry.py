"""The agent registry kind: each agent's history of signed stage transitions, and the approvers document.

A history is the ordered list of transition tokens of `signers.agents.lifecycle`; each row
keeps the token with its position (``seq``), the hash of the transition it follows
(``prev``, ``GENESIS`` for the first) and its own hash (SHA-256 of the token). The contract,
the same on every engine:

- **append-only, compare-and-set**: `append(agent, token, after=HEAD)` names the head it
  extends; if another writer extended the agent first, it raises `Conflict` and writes
  nothing (the engine's unique ``(agent, seq)`` key or one Lua script makes it atomic), so
  two issuer replicas advancing one agent at once cannot fork the history;
- **verified**: the store is given the verifier (``verify(tokens, agent)``, which checks every
  signature and lifecycle rule: the layer above owns those rules). It runs on the whole
  history before anything is appended and on every read, after the store's own check that
  the rows form one chain (``seq`` 1..n, each ``prev`` the hash of the row before, each hash
  its token's). A row that fails is StateCorrupt (or the verifier's TokenInvalid): fail closed;
- **durable once returned, never removed**: there is no delete;
- the **approvers document** (JSON, the `Approvers` file form) is kept in numbered versions,
  replaced only by compare-and-set on the version (`put_approvers(..., expected=N)`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..closing import Closing
from ..errors import ConfigError, Conflict, StateCorrupt

__all__ = ["AGENT_ID", "GENESIS", "AgentRegistryStore", "HistoryRow", "INSERT_DOCUMENT", "INSERT_ROW", "SELECT_DOCUMENT",
           "SELECT_NAMES", "SELECT_ROWS", "Verifier", "check_agent", "row_parameters", "token_hash"]

AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,199}$")
GENESIS = "0" * 64  # the `prev` of an agent's first transition (= signers.agents.lifecycle.GENESIS)
_HASH = re.compile(r"^[0-9a-f]{64}$")
_MAX_TOKEN = 64 * 1024
_MAX_DOCUMENT = 4 * 1024 * 1024

# The statements SQLite and PostgreSQL share (``?`` placeholders; PostgreSQL's are ``%s``), with
# `{history}` / `{approvers}` the engine's table names. The insert is the compare-and-set: it
# adds row ``seq`` only when row ``seq - 1`` holds the hash named as ``prev`` (or seq 1 follows
# GENESIS), and the primary key ``(agent, seq)`` refuses a second row at the same position.
SELECT_ROWS = "SELECT seq, prev, hash, token FROM {history} WHERE agent = ? ORDER BY seq"
INSERT_ROW = (
    "INSERT INTO {history} (agent, seq, prev, hash, token) SELECT ?, ?, ?, ?, ? "
    "WHERE (? = 1 AND ? = '" + GENESIS + "') OR EXISTS "
    "(SELECT 1 FROM {history} WHERE agent = ? AND seq = ? AND hash = ?) ON CONFLICT DO NOTHING"
)
SELECT_NAMES = "SELECT DISTINCT agent FROM {history}"
SELECT_DOCUMENT = "SELECT version, document FROM {approvers} ORDER BY version DESC LIMIT 1"
INSERT_DOCUMENT = (
    "INSERT INTO {approvers} (version, document) SELECT ?, ? "
    "WHERE coalesce((SELECT max(version) FROM {approvers}), 0) = ? ON CONFLICT DO NOTHING"
)


def row_parameters(agent: str, row: HistoryRow) -> tuple[Any, ...]:
    """The parameters of INSERT_ROW for `row`."""
    return (agent, row.seq, row.prev, row.hash, row.token, row.seq, row.prev, agent, row.seq - 1, row.prev)


H = TypeVar("H")
Verifier = Callable[[list[str], str], Any]  # (tokens, agent) -> the verified history; raises when forged


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a transition token: what the next transition names as ``prev``."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class HistoryRow:
    """One stored transition: position, the hash it follows, its own hash, the token."""

    seq: int
    prev: str
    hash: str
    token: str


def check_agent(agent: object) -> str:
    """`agent` if it is a valid agent id (letters, digits, ``. _ @ : -``, at most 200), else ConfigError."""
    if not isinstance(agent, str) or not AGENT_ID.match(agent):
        raise ConfigError("agent ids are letters, digits and . _ @ : - (at most 200 characters)")
    return agent


def _check_token(token: object) -> str:
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN or not token.isascii() \
            or token.count(".") != 2 or any(c.isspace() for c in token):
        raise ConfigError(f"a transition token is a compact JWS (ASCII, no spaces, at most {_MAX_TOKEN} characters)")
    return token


class AgentRegistryStore(Closing, Generic[H]):
    """The engine-independent half of the agent registry; engines implement the five primitives.

    Thread-safe when the primitives are. Every public method raises ConfigError for bad input
    (nothing written), Conflict for a lost compare-and-set, StateCorrupt for damaged rows,
    BackendUnavailable when the engine cannot be reached, and whatever the verifier raises
    (HistoryInvalid, a TokenInvalid) for a history that does not verify.
    """

    what = "agent registry"

    def __init__(self, verify: Callable[[list[str], str], H]) -> None:
        if not callable(verify):
            raise ConfigError("an agent registry needs a verifier: verify(tokens, agent) -> history")
        self._verify = verify

    # -- the engine's primitives -------------------------------------------------------------------

    def _rows(self, agent: str) -> list[HistoryRow]:  # pragma: no cover - abstract
        """The agent's rows ordered by seq (empty when unknown)."""
        raise NotImplementedError

    def _insert(self, agent: str, row: HistoryRow) -> bool:  # pragma: no cover - abstract
        """Atomically add `row` if the stored head is still ``row.prev`` at ``row.seq - 1``; False if not."""
        raise NotImplementedError

    def _names(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _document(self) -> tuple[int, str | None]:  # pragma: no cover - abstract
        """The newest approvers document version and its text ((0, None) when there is none)."""
        raise NotImplementedError

    def _insert_document(self, version: int, text: str) -> bool:  # pragma: no cover - abstract
        """Atomically store version `version` if the newest is `version - 1`; False if not."""
        raise NotImplementedError

    # -- the contract ------------------------------------------------------------------------------

    def history(self, agent: str) -> H | None:
        """The agent's verified history, or None when it has none; StateCorrupt / TokenInvalid when damaged."""
        rows = self._checked_rows(check_agent(agent))
        return self._verify([r.token for r in rows], agent) if rows else None

    def head(self, agent: str) -> str:
        """The hash of the agent's last transition (GENESIS when it has none), from checked rows."""
        rows = self._checked_rows(check_agent(agent))
        return rows[-1].hash if rows else GENESIS

    def append(self, agent: str, token: str, *, after: str) -> H:
        """Append `token` to the agent's history if its head is still `after` (GENESIS to register).

        The whole history with the new token is verified first; nothing is written unless
        it verifies. Raises Conflict when the head moved (another writer came first).
        """
        check_agent(agent)
        _check_token(token)
        if not isinstance(after, str) or not _HASH.match(after):
            raise ConfigError("after is the head's hash: 64 lowercase hex digits (GENESIS for a new agent)")
        rows = self._checked_rows(agent)
        head = rows[-1].hash if rows else GENESIS
        if head != after:
            raise Conflict(f"agent {agent!r} has moved on (its head is no longer the one named): re-read and retry")
        verified = self._verify([*(r.token for r in rows), token], agent)
        row = HistoryRow(len(rows) + 1, after, token_hash(token), token)
        if not self._insert(agent, row):
            raise Conflict(f"agent {agent!r} was extended by another writer meanwhile: re-read and retry")
        return verified

    def agents(self) -> list[str]:
        """Every agent with a history, sorted (their histories are verified when read)."""
        return sorted(self._names())

    def approvers(self) -> tuple[int, dict[str, Any] | None]:
        """The newest approvers document and its version ((0, None) before the first)."""
        version, text = self._document()
        if text is None:
            return version, None
        try:
            document = json.loads(text)
        except ValueError as e:
            raise StateCorrupt(f"{self.what}: approvers document version {version} is not JSON") from e
        if not isinstance(document, dict):
            raise StateCorrupt(f"{self.what}: approvers document version {version} is not an object")
        return version, document

    def put_approvers(self, document: Mapping[str, Any], *, expected: int) -> int:
        """Store a new approvers document if the newest version is still `expected`; the new version.

        Raises Conflict when another writer stored one first, ConfigError for a document that
        is not a JSON object of at most 4 MiB.
        """
        if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
            raise ConfigError("expected is the approvers document version read (0 before the first)")
        if not isinstance(document, Mapping):
            raise ConfigError("an approvers document is a JSON object ({'approvers': [...]})")
        try:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"the approvers document is not JSON: {type(e).__name__}") from e
        if len(text) > _MAX_DOCUMENT:
            raise ConfigError("the approvers document is larger than 4 MiB")
        if not self._insert_document(expected + 1, text):
            raise Conflict(f"{self.what}: the approvers document changed meanwhile: re-read and retry")
        return expected + 1

    def _checked_rows(self, agent: str) -> list[HistoryRow]:
        rows = self._rows(agent)
        prev = GENESIS
        for position, row in enumerate(rows, start=1):
            if not isinstance(row.token, str) or not row.token.isascii():
                raise StateCorrupt(f"{self.what}: transition {position} of {agent!r} is not a token")
            if row.seq != position or row.prev != prev \
                    or not hmac.compare_digest(str(row.hash), token_hash(row.token)):
                raise StateCorrupt(f"{self.what}: the history of {agent!r} is damaged at transition {position} "
                                   "(sequence, chain or hash does not match)")
            prev = row.hash
        return rows

    def close(self) -> None:
        """Nothing of its own: the StateBackend that made it owns the connection."""
