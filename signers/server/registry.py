"""The agent registry the service keeps: a directory (the ``keyplane agent`` layout) or a state store by URI.

A directory holds ``approvers.json`` (the approvers' public keys and roles) and one
``<agent>.history`` file per agent, a transition token a line, so ``keyplane agent history
AGENT --registry DIR`` verifies what the service wrote, offline. It serves one process.

A state-store URI (``[server] registry = "postgresql://..."``, or sqlite: / redis:) puts the
histories and the approvers document in the agent registry kind of `signers.stores`, so
several `keyplane serve` replicas share agent state: an append names the head it extends
(compare-and-set), and a replica that lost the race gets Conflict (HTTP 409) and wrote nothing.

Either way the service's own key is listed as an approver with the roles it is configured to
exercise, and every history is verified on load (a forged or damaged one is refused).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..agents.errors import HistoryInvalid, PolicyError
from ..agents.lifecycle import DEFAULT_LIFECYCLE, AgentHistory, Approvers, Lifecycle, verify_history
from ..closing import Closing
from ..errors import ConfigError, Conflict, KeyplaneError, StateCorrupt
from ..stores import open_state
from ..stores.agent_registry import AGENT_ID
from ..tokens.jwk import JWKS
from ..workers import run_blocking

__all__ = ["AGENT_ID", "SERVICE_ROLES", "AgentRegistry"]

SERVICE_ROLES = ("registrar", "approver", "release-approver", "operator")
_CACHED = 10_000  # verified histories kept, keyed by the exact tokens
_RACY_NS = 2_000_000_000  # a history file changed this recently is read again (its stamp may not show a change)
_APPROVER_RETRIES = 20  # replicas starting at once each add their key: compare-and-set, then retry


def _merged(entries: list[dict[str, Any]], service_keys: JWKS, roles: tuple[str, ...]) -> tuple[Approvers, bool]:
    """The approvers of `entries` plus every service key not yet listed (with `roles`); and whether any was added."""
    listed = {str((e.get("jwk") or {}).get("kid")) for e in entries if isinstance(e, dict)}
    added = [{"jwk": jwk.to_dict(), "roles": list(roles)} for jwk in service_keys if jwk.kid not in listed]
    return Approvers.from_dict({"approvers": [*entries, *added]}), bool(added)


class AgentRegistry(Closing):
    """Verified histories by agent id, in a directory or a state store; thread-safe.

    `location` is a directory (Path) or a state-store URI (str). Raises ConfigError for a
    directory that cannot be made or a bad URI, BackendUnavailable when the store is down,
    StateCorrupt when the stored approvers document is damaged.
    """

    def __init__(self, location: Path | str, service_keys: JWKS, *, roles: Iterable[str] = SERVICE_ROLES,
                 lifecycle: Lifecycle = DEFAULT_LIFECYCLE) -> None:
        self.lifecycle = lifecycle
        self._lock = threading.RLock()
        self._verified: dict[str, tuple[tuple[str, ...], AgentHistory]] = {}
        self._files: dict[str, tuple[tuple[int, int, int, int], list[str]]] = {}  # directory: stamp, lines
        self._state: Any = None
        self._store: Any = None
        self._version = 0
        if isinstance(location, str):
            self.uri: str | None = location
            self.directory: Path | None = None
            self._state = open_state(location)
            try:
                self._store = self._state.agent_registry(self._verify)
                self.approvers = self._shared_approvers(service_keys, tuple(roles))
            except BaseException:
                self._state.close()
                raise
            self.uri = self._state.uri  # the public form: never a secret
            return
        self.uri = None
        self.directory = Path(location)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the agent registry {self.directory}: {e.strerror}") from e
        self.approvers = self._directory_approvers(service_keys, tuple(roles))

    # -- approvers -------------------------------------------------------------------------------

    def _directory_approvers(self, service_keys: JWKS, roles: tuple[str, ...]) -> Approvers:
        assert self.directory is not None
        file = self.directory / "approvers.json"
        entries: list[dict[str, Any]] = []
        if file.is_file():
            try:
                entries = list(json.loads(file.read_text(encoding="utf-8")).get("approvers", []))
            except (OSError, ValueError, AttributeError) as e:
                raise ConfigError(f"cannot read approvers file {file}: {type(e).__name__}") from e
        approvers, _ = _merged(entries, service_keys, roles)
        temporary = file.with_suffix(".tmp")
        temporary.write_text(json.dumps(approvers.to_dict(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(file)
        return approvers

    def _stored_approvers(self) -> tuple[int, list[dict[str, Any]]]:
        version, document = self._store.approvers()
        entries = [] if document is None else document.get("approvers")
        if not isinstance(entries, list):
            raise StateCorrupt(f"agent registry {self.uri}: the approvers document has no 'approvers' list")
        return version, entries

    def _shared_approvers(self, service_keys: JWKS, roles: tuple[str, ...]) -> Approvers:
        for _ in range(_APPROVER_RETRIES):
            version, entries = self._stored_approvers()
            try:
                approvers, added = _merged(entries, service_keys, roles)
            except PolicyError as e:
                raise StateCorrupt(f"agent registry {self.uri}: the approvers document is damaged ({e})") from e
            if not added:
                self._version = version
                return approvers
            try:
                self._version = self._store.put_approvers(approvers.to_dict(), expected=version)
                return approvers
            except Conflict:
                continue  # another replica added its key first: merge into theirs
        raise Conflict(f"agent registry {self.uri}: the approvers document kept changing; try again")

    def _refreshed(self) -> bool:
        """Re-read the shared approvers document; True when it changed (another replica's key, a new role)."""
        version, entries = self._stored_approvers()
        if version == self._version:
            return False
        try:
            approvers = Approvers.from_dict({"approvers": entries})
        except PolicyError as e:
            raise StateCorrupt(f"agent registry {self.uri}: the approvers document is damaged ({e})") from e
        with self._lock:
            self.approvers, self._version = approvers, version
        return True

    # -- histories -------------------------------------------------------------------------------

    def _verify(self, tokens: Sequence[str], agent: str) -> AgentHistory:
        """Verify `tokens` (the store calls this on every read and before every append)."""
        key = tuple(tokens)
        cached = self._verified.get(agent)
        if cached is not None and cached[0] == key:
            return cached[1]  # the same tokens verified before: verifying them again proves nothing new
        try:
            history = verify_history(list(tokens), self.approvers, lifecycle=self.lifecycle, agent=agent)
        except HistoryInvalid:
            if self._store is None or not self._refreshed():
                raise
            history = verify_history(list(tokens), self.approvers, lifecycle=self.lifecycle, agent=agent)
        with self._lock:
            self._verified[agent] = (key, history)
            while len(self._verified) > _CACHED:
                self._verified.pop(next(iter(self._verified)))
        return history

    def check_id(self, agent: object) -> str:
        """`agent` if it is a valid agent id, else PolicyError (checked before anything is signed)."""
        if not isinstance(agent, str) or not AGENT_ID.match(agent):
            raise PolicyError("agent ids are letters, digits and . _ @ : - (at most 200 characters)")
        return agent

    def path(self, agent: str) -> Path:
        """The history file of `agent` in a directory registry; PolicyError for an id that is not a safe name."""
        self.check_id(agent)
        if self.directory is None:
            raise ConfigError(f"the agent registry {self.uri} is a state store, not a directory")
        return self.directory / f"{agent}.history"

    def history(self, agent: str) -> AgentHistory | None:
        """The verified history, or None when the agent is not registered (or its id is not valid).

        Raises HistoryInvalid / StateCorrupt for a forged or damaged history (fail closed),
        BackendUnavailable when the store cannot be reached.
        """
        try:
            self.check_id(agent)
        except PolicyError:
            return None
        if self._store is not None:
            found: AgentHistory | None = self._store.history(agent)
            return found
        tokens = self._file_tokens(agent, self.path(agent))
        return None if tokens is None else self._verify(tokens, agent)

    def _file_tokens(self, agent: str, file: Path) -> list[str] | None:
        """The history file's lines, re-read only when its inode, size, mtime or ctime changed.

        One ``stat`` instead of an open, a read and a close on every issuance. A file changed
        within the last `_RACY_NS` is read every time: two writes in one timestamp tick can
        leave the same stamp (git's "racily clean" rule), so a recent stamp proves nothing.
        """
        try:
            st = os.stat(file)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            held = self._files.get(agent)
            if held is not None and held[0] == stamp and time.time_ns() - st.st_ctime_ns > _RACY_NS:
                return held[1]
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ConfigError(f"cannot read history of {agent!r}: {e.strerror}") from e
        tokens = [line.strip() for line in text.splitlines() if line.strip()]
        with self._lock:
            if len(self._files) >= _CACHED:
                self._files.clear()
            self._files[agent] = (stamp, tokens)
        return tokens

    async def history_async(self, agent: str) -> AgentHistory | None:
        """`history` from an event loop: a directory's small file is read inline, a state store on the I/O pool.

        The file read is a few microseconds and its verification is cached, so a hop to a
        worker thread would cost more than the read; a database round trip is not inline.
        """
        if self._store is None:
            return self.history(agent)
        return await run_blocking(self.history, agent)

    def save(self, history: AgentHistory) -> None:
        """Store `history`, whose last transition extends the stored head (or registers the agent).

        Raises Conflict when another writer extended the agent first (nothing written),
        PolicyError when `history` skips stored transitions.
        """
        if self._store is not None:
            last = history.transitions[-1]
            self._store.append(history.agent, last.token, after=last.prev)
            return
        with self._lock:
            stored = self.history(history.agent)
            if stored is not None and history.tokens[: len(stored.tokens)] != stored.tokens:
                raise Conflict(f"agent {history.agent!r} changed meanwhile: retry with its current history")
            if stored is None and len(history.tokens) != 1:
                raise PolicyError(f"agent {history.agent!r} is not registered")
            file = self.path(history.agent)
            temporary = file.with_suffix(".tmp")
            temporary.write_text("\n".join(history.tokens) + "\n", encoding="utf-8")
            temporary.replace(file)

    def agents(self) -> Iterator[AgentHistory]:
        """Every registered agent whose history verifies (damaged ones are skipped here; `history` raises)."""
        if self._store is not None:
            names: list[str] = self._store.agents()
        else:
            assert self.directory is not None
            names = [file.stem for file in sorted(self.directory.glob("*.history"))]
        for name in names:
            try:
                found = self.history(name)
            except KeyplaneError:
                continue
            if found is not None:
                yield found

    def close(self) -> None:
        """Close the state store this registry opened (a directory has nothing to close)."""
        if self._state is not None:
            self._state.close()

    def __repr__(self) -> str:
        return f"AgentRegistry({self.uri or str(self.directory)!r})"
