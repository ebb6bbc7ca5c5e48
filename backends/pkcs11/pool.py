"""One token, many threads: login once, a bounded pool of sessions, recovery from a lost token.

PKCS#11 login state belongs to the application, not to a session: the first ``C_Login``
logs in every session of the process on that token, and a ``C_Logout`` on any session
logs them all out. So there is one `TokenSessions` per (module, token) per process,
shared by every store that names the token and counted by reference. It keeps one
*anchor* session that carries the login and is never lent out (closing a lent session
therefore never logs the others out), and lends up to `max_sessions` further sessions,
one per concurrent operation. A session goes back to the pool on every path; one that
failed because the session, object or token was lost is closed instead, and the
operation is tried once more on a fresh session (after re-finding the token and logging
in again where the token itself was lost). The second failure is the caller's to
translate (BackendUnavailable).

python-pkcs11 objects are bound to the session they were found in, so each pooled
session caches the key objects it has looked up.

Lending and returning an idle session takes no lock: idle sessions sit in a deque, whose
``pop`` and ``append`` are atomic, and only sessions already counted against
`max_sessions` are ever in it. The condition variable is taken only to open a new
session, to wait for one (a returning session wakes a waiter), to discard one, and when
recovery or `close` starts a new generation; a session returned concurrently with that
is found stale by its generation and closed, by whichever side sees it first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from signers.errors import AuthenticationFailed, BackendUnavailable, ConfigError
from signers.secrets import Secret

from .module import Module

__all__ = ["LoginLost", "PooledSession", "TokenSelector", "TokenSessions", "acquire_token", "release_token"]

T = TypeVar("T")

SESSION_WAIT_SECONDS = 30.0  # how long an operation waits for a free session before BackendUnavailable
_SALT = os.urandom(16)  # per process: the PIN digest kept for comparison is useless outside it


@dataclass(frozen=True)
class TokenSelector:
    """The RFC 7512 token and slot attributes of a URI; an unset field matches anything."""

    label: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    slot_id: int | None = None
    slot_description: str | None = None
    slot_manufacturer: str | None = None

    def matches(self, slot: Any, token: Any) -> bool:
        wanted = {
            "label": (self.label, token.label),
            "serial": (self.serial, _text(token.serial)),
            "manufacturer": (self.manufacturer, token.manufacturer_id),
            "model": (self.model, _text(token.model)),
            "slot_description": (self.slot_description, slot.slot_description),
            "slot_manufacturer": (self.slot_manufacturer, slot.manufacturer_id),
        }
        if self.slot_id is not None and slot.slot_id != self.slot_id:
            return False
        return all(want is None or want == (have or "").strip() for want, have in wanted.values())

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in vars(self).items() if value is not None]
        return ", ".join(parts) or "any token"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


@dataclass(eq=False)  # compared by identity: the pool removes one particular session from its deque
class PooledSession:
    """A lent session plus the key objects already found in it."""

    session: Any
    generation: int
    object_epoch: int
    keys: dict[Any, Any] = field(default_factory=dict)


class TokenSessions:
    """The process's sessions on one token (see the module docstring)."""

    def __init__(self, module: Module, selector: TokenSelector, max_sessions: int, token: Any, slot: Any) -> None:
        if max_sessions < 1:
            raise ConfigError("max-sessions must be at least 1")
        self.module = module
        self.selector = selector
        self.max_sessions = max_sessions
        self._cond = threading.Condition()
        self._idle: deque[PooledSession] = deque()  # lock-free pop/append; never replaced, only drained
        self._open = 0  # lent + idle sessions of the current generation (changed under _cond only)
        self._waiting = 0  # threads waiting in _checkout_slow for a session (changed under _cond only)
        # The lock every module call takes when the module does not lock itself; None when it does.
        self._guard: Any = module.guard if module.locking == "serialize" else None
        self._anchor: Any = None
        self._pin_digest: bytes | None = None
        self._login_lock = threading.Lock()
        self._generation = 0
        self._object_epoch = 0
        self.login_epoch = 0  # changes whenever the login is made or dropped; stores compare it
        self._recover_lock = threading.Lock()
        self.refs = 0
        self.token, self.slot = token, slot
        self.label: str = self.token.label
        self.serial = _text(self.token.serial).strip()
        with module.guard:
            self.mechanisms: frozenset[int] = frozenset(int(m) for m in self.slot.get_mechanisms())

    @property
    def name(self) -> str:
        """How messages name the token: its label and the module it lives in."""
        return f"token {self.label!r} ({self.module.description or self.module.path})"

    # -- login -------------------------------------------------------------------------

    def login(self, pin: Secret | None) -> None:
        """Log the process in once; a later caller must present the same PIN (else AuthenticationFailed)."""
        if pin is None:
            raise ConfigError(f"{self.name} needs a PIN: add ?pin-source=env:NAME (or file:PATH) to the URI")
        digest = hmac.new(_SALT, pin.reveal().encode("utf-8"), hashlib.sha256).digest()
        with self._login_lock:
            if self._anchor is not None:
                if self._pin_digest is None or not hmac.compare_digest(digest, self._pin_digest):
                    # The token would not even look at it (already logged in), so we do.
                    raise AuthenticationFailed(f"wrong PIN for {self.name}")
                return
            with self.module.guard:
                self._anchor = self.token.open(rw=True, user_pin=pin.reveal())
            self._pin_digest = digest
            self.login_epoch += 1

    def _logout(self) -> None:
        with self._login_lock:
            anchor, self._anchor, self._pin_digest = self._anchor, None, None
            self.login_epoch += 1
        if anchor is not None:
            _close_quietly(self.module, anchor)  # C_Logout + C_CloseSession

    # -- lending sessions ----------------------------------------------------------------

    def run(self, op: Callable[..., T], *args: Any, recover_with: Secret | None) -> T:
        """Run ``op(pooled, *args)`` on a lent session; on a lost session/object/token, recover and try once more.

        The common case takes no lock: an idle session is popped from the deque, and pushed
        back when `op` is done (the module docstring says why that is safe).
        """
        idle = self._idle
        for attempt in (1, 2):
            generation = self._generation
            try:
                pooled: PooledSession | None = idle.pop()
            except IndexError:
                pooled = None
            if pooled is None or pooled.generation != generation or pooled.object_epoch != self._object_epoch:
                try:
                    pooled = self._checkout(pooled)
                except Exception as e:  # could not even open a session: the token may be gone
                    lost = loss_kind(e)
                    if lost is None or attempt == 2:
                        raise
                    self._recover("token", generation, recover_with)
                    continue
            lost = None
            try:
                guard = self._guard
                if guard is None:
                    return op(pooled, *args)
                with guard:
                    return op(pooled, *args)
            except Exception as e:
                lost = loss_kind(e)
                if lost is None or attempt == 2:
                    raise
            finally:
                if lost is None and pooled.generation == self._generation and self.refs > 0:
                    idle.append(pooled)
                    # Both read after the append: a waiter that counted itself before it will be woken,
                    # and a new generation begun before it will find this session stale.
                    if self._waiting or pooled.generation != self._generation:
                        self._returned(pooled)
                else:
                    self._discard(pooled)
            self._recover(lost, pooled.generation, recover_with)
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(self, pooled: PooledSession | None) -> PooledSession:
        """Lending when the lock-free pop was not enough: `pooled` (just popped, or None) may be stale."""
        while pooled is not None:
            if pooled.generation == self._generation:
                if pooled.object_epoch != self._object_epoch:
                    pooled.keys.clear()  # a key was deleted or created in this process
                    pooled.object_epoch = self._object_epoch
                return pooled
            # Returned while recovery or close started over: not counted in this generation's _open.
            _close_quietly(self.module, pooled.session)
            try:
                pooled = self._idle.pop()
            except IndexError:
                pooled = None
        return self._checkout_slow()

    def _checkout_slow(self) -> PooledSession:
        """Open a new session if fewer than max_sessions are open, else wait for one to come back."""
        deadline = time.monotonic() + SESSION_WAIT_SECONDS
        stale: list[PooledSession] = []
        pooled: PooledSession | None = None
        try:
            with self._cond:
                self._waiting += 1  # before looking at _idle: a session returned after this look will notify
                try:
                    while True:
                        try:
                            pooled = self._idle.pop()  # lock-free checkouts may race us to it
                        except IndexError:
                            pooled = None
                        if pooled is not None:
                            if pooled.generation == self._generation:
                                break
                            stale.append(pooled)
                            pooled = None
                            continue
                        if self._open < self.max_sessions:
                            self._open += 1
                            generation, epoch = self._generation, self._object_epoch
                            break
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise BackendUnavailable(
                                f"all {self.max_sessions} sessions on {self.name} stayed busy for "
                                f"{SESSION_WAIT_SECONDS:.0f} s"
                            )
                        self._cond.wait(remaining)
                finally:
                    self._waiting -= 1
        finally:
            for old in stale:  # returned while a new generation began: not counted in it
                _close_quietly(self.module, old.session)
        if pooled is not None:
            if pooled.object_epoch != self._object_epoch:
                pooled.keys.clear()
                pooled.object_epoch = self._object_epoch
            return pooled
        try:
            with self.module.guard:
                session = self.token.open(rw=True)  # no PIN: it shares the anchor's login
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise
        return PooledSession(session, generation, epoch)

    def _returned(self, pooled: PooledSession) -> None:
        """After `pooled` went back to the deque: wake a waiter; close it if a new generation began meanwhile."""
        if self._waiting:
            with self._cond:
                self._cond.notify()
        if pooled.generation != self._generation:
            self._sweep_stale()

    def _discard(self, pooled: PooledSession) -> None:
        """Close a session instead of returning it (it was lost, or its generation or its pool ended)."""
        with self._cond:
            if pooled.generation == self._generation:
                self._open -= 1
            self._cond.notify()
        _close_quietly(self.module, pooled.session)

    def _sweep_stale(self) -> None:
        """Close idle sessions of an earlier generation (returned while a new generation began)."""
        gone = []
        with self._cond:
            for pooled in list(self._idle):
                if pooled.generation != self._generation:
                    try:
                        self._idle.remove(pooled)
                    except ValueError:  # a checkout took it first, and closes it itself
                        continue
                    gone.append(pooled)
        for pooled in gone:
            _close_quietly(self.module, pooled.session)

    def _drain(self) -> list[PooledSession]:
        """Take every idle session out (under _cond, after the generation changed); the caller closes them."""
        drained = []
        while True:  # popleft one by one: a concurrent lock-free append is either taken here or swept
            try:
                drained.append(self._idle.popleft())
            except IndexError:
                return drained

    def objects_changed(self) -> None:
        """Every pooled session forgets its cached key objects (after a create or delete)."""
        with self._cond:
            self._object_epoch += 1

    # -- recovery ------------------------------------------------------------------------

    def _recover(self, lost: str | None, generation: int, pin: Secret | None) -> None:
        """After a lost session: nothing; lost object: the token must still be there; lost token: start over."""
        if lost == "session":
            return
        with self._recover_lock:
            if generation != self._generation:
                return  # another thread already recovered
            token, slot = find_token(self.module, self.selector)  # BackendUnavailable when the token is gone
            replaced = _text(token.serial).strip() != self.serial
            anchor = self._anchor
            if lost == "object" and not replaced and anchor is not None and self.module.logged_in(anchor):
                return  # the token and our login are fine: the object itself went away
            self.close()
            self.token, self.slot, self.serial = token, slot, _text(token.serial).strip()
            self.login(pin)

    def check_present(self, pooled: PooledSession) -> None:
        """Before calling a search result "no such key": the token is still there and we are still logged in.

        BackendUnavailable if the token is gone or replaced; LoginLost (which `run` recovers
        from once) if someone's C_Logout ended this process's login.
        """
        token, _ = find_token(self.module, self.selector)
        if _text(token.serial).strip() != self.serial:
            raise BackendUnavailable(f"{self.name} was replaced by another token with the same label")
        if self.module.logged_in(pooled.session) is False:
            raise LoginLost(f"the login to {self.name} was lost (another C_Logout in this process?)")

    def close(self) -> None:
        """Close every idle session and log out; lent sessions are closed when they come back.

        Recovery from a lost token uses it too, before logging in to the token found again.
        """
        with self._cond:
            self._generation += 1
            stale, self._open = self._drain(), 0
        for pooled in stale:
            _close_quietly(self.module, pooled.session)
        self._logout()


def find_token(module: Module, selector: TokenSelector) -> tuple[Any, Any]:
    """(token, slot) for the one token matching `selector`: BackendUnavailable if none, ConfigError if several."""
    found, broken = [], []
    with module.guard:
        try:
            slots = module.lib.get_slots(token_present=True)
        except Exception as e:
            if not type(e).__module__.startswith("pkcs11"):
                raise
            raise BackendUnavailable(f"{module.path} cannot list its slots ({type(e).__name__})", e) from e
        for slot in slots:
            try:
                token = slot.get_token()
            except Exception as e:  # token pulled, or (SoftHSM2) its directory deleted: CKR_GENERAL_ERROR
                if not type(e).__module__.startswith("pkcs11"):
                    raise
                broken.append(e)
                continue
            if selector.matches(slot, token):
                found.append((token, slot))
    if not found:
        cause = broken[0] if broken else None
        why = f" ({len(broken)} slot(s) did not answer)" if broken else ""
        raise BackendUnavailable(f"no PKCS#11 token matching {selector.describe()} in {module.path}{why}", cause) from cause
    if len(found) > 1:
        labels = ", ".join(repr(t.label) for t, _ in found)
        raise ConfigError(f"{len(found)} tokens match {selector.describe()} ({labels}); add serial= or slot-id=")
    return found[0]


class LoginLost(BackendUnavailable):
    """The process's login to the token ended; `run` logs in again once before letting this out."""


def loss_kind(error: BaseException) -> str | None:
    """'session', 'object' or 'token' when `error` means that thing was lost; None otherwise."""
    return _LOSS.get(type(error).__name__)


_LOSS: Mapping[str, str] = {
    "SessionHandleInvalid": "session",
    "SessionClosed": "session",
    "ObjectHandleInvalid": "object",
    "KeyHandleInvalid": "object",
    "DeviceRemoved": "token",
    "TokenNotPresent": "token",
    "TokenNotRecognised": "token",
    "UserNotLoggedIn": "token",
    "LoginLost": "token",
    "DeviceError": "token",
}


def _close_quietly(module: Module, session: Any) -> None:
    """Close a session whose fate no longer matters (it may already be gone with its token)."""
    try:
        with module.guard:
            session.close()
    except Exception:  # the session or token is already gone; nothing left to release
        pass


_tokens: dict[tuple[str, int, str], TokenSessions] = {}
_tokens_lock = threading.Lock()


def acquire_token(module: Module, selector: TokenSelector, max_sessions: int) -> TokenSessions:
    """The process's TokenSessions for the token `selector` names, its reference count raised.

    Keyed by the token found (slot and serial), not by the selector, because two URIs that
    name one token differently still share its one login.
    """
    token, slot = find_token(module, selector)
    key = (module.path, int(slot.slot_id), _text(token.serial).strip())
    with _tokens_lock:
        tokens = _tokens.get(key)
        if tokens is None:
            tokens = _tokens[key] = TokenSessions(module, selector, max_sessions, token, slot)
        tokens.refs += 1
        return tokens


def release_token(tokens: TokenSessions) -> None:
    """Drop one reference; the last one closes the sessions and logs out."""
    with _tokens_lock:
        tokens.refs -= 1
        if tokens.refs > 0:
            return
        for key, value in list(_tokens.items()):
            if value is tokens:
                del _tokens[key]
    tokens.close()


def _forget_after_fork() -> None:
    global _tokens_lock
    _tokens.clear()  # the child has none of the parent's sessions
    _tokens_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
