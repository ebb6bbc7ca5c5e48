"""``keyplane agent ... --registry URI``: the agent commands on a state store's agent registry.

Where ``--registry`` is a state-store URI (``sqlite:///...``, ``postgresql://...``,
``redis://...``) instead of a directory, the approvers document and the histories are those a
`keyplane serve` replica with ``[server] registry = URI`` keeps, so an operator can verify,
advance or add an approver from the command line against the shared state. Writes are
compare-and-set: a history that moved meanwhile, or an approvers document another writer
changed, is a Conflict and nothing is written. The store layer is imported only here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, Conflict

if TYPE_CHECKING:
    from signers.agents.lifecycle import AgentHistory, Approvers, Lifecycle

__all__ = ["is_uri", "stored_append", "stored_approvers", "stored_history", "update_stored_approvers"]

_RETRIES = 20


def is_uri(location: str) -> bool:
    """True when a ``--registry`` value is a state-store URI rather than a directory."""
    return "://" in location


def _opened(uri: str, verify: Callable[[list[str], str], Any]) -> tuple[Any, Any]:
    # lazy: signers.stores loads the engine and the token layer; only --registry URI needs it
    from signers.stores import open_state

    state = open_state(uri)
    try:
        return state, state.agent_registry(verify)
    except BaseException:
        state.close()
        raise


def _verifier(approvers: Approvers, lifecycle: Lifecycle) -> Callable[[list[str], str], AgentHistory]:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import verify_history

    return lambda tokens, agent: verify_history(tokens, approvers, lifecycle=lifecycle, agent=agent)


def _approvers(document: dict[str, Any] | None, uri: str, *, empty_ok: bool = False) -> Approvers:
    # lazy: signers.agents loads the whole token layer; only agent commands need it
    from signers.agents.lifecycle import Approvers
    from signers.jose import JWKS

    if document is None:
        if empty_ok:
            return Approvers(JWKS(), {})
        raise ConfigError(f"no approvers in {uri}: add approvers with `keyplane agent approver KEY --role ... "
                          f"--registry {uri}`")
    return Approvers.from_dict(document)


def stored_approvers(uri: str) -> Approvers:
    """The approvers document of the registry at `uri`; ConfigError when it has none yet."""
    state, registry = _opened(uri, lambda tokens, agent: tokens)  # only the document is read here
    with state:
        return _approvers(registry.approvers()[1], state.uri)


def update_stored_approvers(uri: str, change: Callable[[Approvers], Approvers]) -> Approvers:
    """Replace the approvers document with `change(current)`, by compare-and-set (re-read on a lost race)."""
    state, registry = _opened(uri, lambda tokens, agent: tokens)
    with state:
        for _ in range(_RETRIES):
            version, document = registry.approvers()
            updated = change(_approvers(document, state.uri, empty_ok=True))
            try:
                registry.put_approvers(updated.to_dict(), expected=version)
                return updated
            except Conflict:
                continue
    raise Conflict(f"the approvers document of {uri} kept changing; try again")


def stored_history(uri: str, agent: str, approvers: Approvers, lifecycle: Lifecycle) -> AgentHistory | None:
    """The agent's verified history in the registry at `uri`, or None; HistoryInvalid / StateCorrupt if refused."""
    state, registry = _opened(uri, _verifier(approvers, lifecycle))
    with state:
        found: AgentHistory | None = registry.history(agent)
        return found


def stored_append(uri: str, history: AgentHistory, approvers: Approvers, lifecycle: Lifecycle) -> None:
    """Append `history`'s last transition if the stored head is still the one it follows; Conflict if not."""
    last = history.transitions[-1]
    state, registry = _opened(uri, _verifier(approvers, lifecycle))
    with state:
        registry.append(history.agent, last.token, after=last.prev)
