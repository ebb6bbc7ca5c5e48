"""The agent registry the service keeps: the directory layout of ``keyplane agent``.

``approvers.json`` (the approvers' public keys and roles) and one ``<agent>.history`` file
per agent, a transition token a line, so ``keyplane agent history AGENT --registry DIR``
verifies what the service wrote, offline. The service's own key is listed as an approver
with the roles it is configured to exercise; every history is verified on load and
written atomically (a reader sees the old or the new history, never half of one).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..agents.errors import PolicyError
from ..agents.lifecycle import DEFAULT_LIFECYCLE, AgentHistory, Approvers, Lifecycle, verify_history
from ..errors import ConfigError, KeyplaneError
from ..tokens.jwk import JWKS

__all__ = ["AGENT_ID", "SERVICE_ROLES", "AgentRegistry"]

AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,199}$")
SERVICE_ROLES = ("registrar", "approver", "release-approver", "operator")
_CACHED = 10_000  # verified histories kept, keyed by the exact file contents


class AgentRegistry:
    """Verified histories by agent id, in `directory`; thread-safe.

    A history is verified whenever its file's contents differ from the last verified
    contents (so an edit on disk is re-verified at once, a forged one refused).
    """

    def __init__(self, directory: Path, service_keys: JWKS, *, roles: Iterable[str] = SERVICE_ROLES,
                 lifecycle: Lifecycle = DEFAULT_LIFECYCLE) -> None:
        self.directory = Path(directory)
        self.lifecycle = lifecycle
        self._lock = threading.RLock()
        self._verified: dict[str, tuple[str, AgentHistory]] = {}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the agent registry {self.directory}: {e.strerror}") from e
        self.approvers = self._approvers(service_keys, tuple(roles))

    def _approvers(self, service_keys: JWKS, roles: tuple[str, ...]) -> Approvers:
        file = self.directory / "approvers.json"
        entries: list[dict[str, Any]] = []
        if file.is_file():
            try:
                entries = list(json.loads(file.read_text(encoding="utf-8")).get("approvers", []))
            except (OSError, ValueError, AttributeError) as e:
                raise ConfigError(f"cannot read approvers file {file}: {type(e).__name__}") from e
        listed = {str((e.get("jwk") or {}).get("kid")) for e in entries if isinstance(e, dict)}
        for jwk in service_keys:
            if jwk.kid not in listed:
                entries.append({"jwk": jwk.to_dict(), "roles": list(roles)})
        approvers = Approvers.from_dict({"approvers": entries})
        temporary = file.with_suffix(".tmp")
        temporary.write_text(json.dumps(approvers.to_dict(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(file)
        return approvers

    def path(self, agent: str) -> Path:
        """The history file of `agent`; PolicyError for an id that is not a safe file name."""
        if not isinstance(agent, str) or not AGENT_ID.match(agent):
            raise PolicyError("agent ids are letters, digits and . _ @ : - (at most 200 characters)")
        return self.directory / f"{agent}.history"

    def history(self, agent: str) -> AgentHistory | None:
        """The verified history, or None when the agent is not registered (or its id is not valid)."""
        try:
            file = self.path(agent)
        except PolicyError:
            return None
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ConfigError(f"cannot read history of {agent!r}: {e.strerror}") from e
        cached = self._verified.get(agent)
        if cached is not None and cached[0] == text:
            return cached[1]  # the same bytes verified before: verifying them again proves nothing new
        tokens = [line.strip() for line in text.splitlines() if line.strip()]
        history = verify_history(tokens, self.approvers, lifecycle=self.lifecycle, agent=agent)
        with self._lock:
            self._verified[agent] = (text, history)
            while len(self._verified) > _CACHED:
                self._verified.pop(next(iter(self._verified)))
        return history

    def save(self, history: AgentHistory) -> None:
        """Write a history that extends (or starts) the stored one; PolicyError if another write came first."""
        with self._lock:
            stored = self.history(history.agent)
            if stored is not None and history.tokens[: len(stored.tokens)] != stored.tokens:
                raise PolicyError(f"agent {history.agent!r} changed meanwhile: retry with its current history")
            if stored is None and len(history.tokens) != 1:
                raise PolicyError(f"agent {history.agent!r} is not registered")
            file = self.path(history.agent)
            temporary = file.with_suffix(".tmp")
            temporary.write_text("\n".join(history.tokens) + "\n", encoding="utf-8")
            temporary.replace(file)

    def agents(self) -> Iterator[AgentHistory]:
        """Every registered agent whose history verifies (damaged ones are skipped here; `history` raises)."""
        for file in sorted(self.directory.glob("*.history")):
            try:
                found = self.history(file.stem)
            except KeyplaneError:
                continue
            if found is not None:
                yield found
