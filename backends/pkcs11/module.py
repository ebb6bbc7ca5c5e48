"""Loading a PKCS#11 module once per process, initialised so that threads are safe.

python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module that the application
will never call it from two threads at once. SoftHSM2 then switches its internal locking
off, and a session pool used from 8 threads crashed the interpreter (measured: 4 crashes
in 4 runs here, 6 in 7 in the issue). So we call ``C_Initialize`` ourselves first, with
``CKF_OS_LOCKING_OK``, through ctypes on the same shared object, and let python-pkcs11 use
the already initialised module.

Where that is impossible, every call into the module is serialised behind one lock
(`Module.guard`): when the module refuses OS locking (``CKR_CANT_LOCK``), when something
else in the process initialised it first (python-pkcs11 with ``NULL`` args, or C code),
or when ``KEYPLANE_PKCS11_LOCKING=serialize`` asks for it. Measurements of both
strategies are in docs/pkcs11.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from signers.errors import BackendUnavailable, ConfigError
from signers.sdk import require

__all__ = ["LOCKING_ENV", "Module", "load_module"]

LOCKING_ENV = "KEYPLANE_PKCS11_LOCKING"  # "os" (default) or "serialize"

_CKF_OS_LOCKING_OK = 0x2
_CKR_OK = 0x0
_CKR_CANT_LOCK = 0xA
_CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191


class _InitArgs(ctypes.Structure):
    """CK_C_INITIALIZE_ARGS: no mutex callbacks, so the module uses the OS's own locks."""

    _fields_ = [
        ("CreateMutex", ctypes.c_void_p),
        ("DestroyMutex", ctypes.c_void_p),
        ("LockMutex", ctypes.c_void_p),
        ("UnlockMutex", ctypes.c_void_p),
        ("flags", ctypes.c_ulong),
        ("pReserved", ctypes.c_void_p),
    ]


class _FunctionListHead(ctypes.Structure):
    """The first members of CK_FUNCTION_LIST (PKCS#11 2.40 order), with native alignment.

    python-pkcs11 exposes neither initialisation arguments nor C_GetSessionInfo, so these
    three are called through ctypes on the same function list.
    """

    _fields_ = [
        ("version", ctypes.c_ubyte * 2),
        ("C_Initialize", ctypes.c_void_p),
        ("C_Finalize", ctypes.c_void_p),
        *((name, ctypes.c_void_p) for name in (
            "C_GetInfo", "C_GetFunctionList", "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo",
            "C_GetMechanismList", "C_GetMechanismInfo", "C_InitToken", "C_InitPIN", "C_SetPIN",
            "C_OpenSession", "C_CloseSession", "C_CloseAllSessions")),
        ("C_GetSessionInfo", ctypes.c_void_p),
    ]


class _SessionInfo(ctypes.Structure):
    _fields_ = [("slotID", ctypes.c_ulong), ("state", ctypes.c_ulong), ("flags", ctypes.c_ulong),
                ("ulDeviceError", ctypes.c_ulong)]


_C_GetSessionInfo = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(_SessionInfo))
_USER_STATES = frozenset({1, 3})  # CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS


_C_Initialize = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)


@functools.cache
def _function_list(path: str) -> Any:
    """The module's CK_FUNCTION_LIST head, or None (looked up once per path; the list is static)."""
    dll = ctypes.CDLL(path)  # dlopen of the same file returns the handle python-pkcs11 uses
    function_list = ctypes.POINTER(_FunctionListHead)()
    rv = dll.C_GetFunctionList(ctypes.byref(function_list))
    return function_list.contents if rv == _CKR_OK and function_list else None


def _initialize(path: str, flags: int) -> int:
    """Call the module's C_Initialize with `flags` (or NULL args when 0); returns the CK_RV."""
    functions = _function_list(path)
    if functions is None:
        return 0x5  # CKR_GENERAL_ERROR
    if path in _inherited:
        # A forked child inherits the parent's initialised module, sessions and login; PKCS#11
        # says the child starts over, so finalize the copy first.
        _inherited.discard(path)
        _C_Initialize(functions.C_Finalize)(None)
    initialize = _C_Initialize(functions.C_Initialize)
    if flags == 0:
        return int(initialize(None))
    args = _InitArgs(flags=flags)
    return int(initialize(ctypes.byref(args)))


@dataclass
class Module:
    """A loaded PKCS#11 module: the python-pkcs11 `lib`, and the guard every call goes through."""

    path: str
    lib: Any
    locking: str  # "os": the module locks itself; "serialize": `guard` is one process-wide lock
    guard: contextlib.AbstractContextManager[Any] = field(repr=False)

    @property
    def description(self) -> str:
        return f"{self.lib.manufacturer_id} {self.lib.library_description}".strip()

    def logged_in(self, session: Any) -> bool | None:
        """Whether `session` (a python-pkcs11 Session) has the user logged in; None if the module cannot say.

        Needed because a token answers a search for private objects made without a login
        with an empty list, not an error: a lost login would otherwise look like a missing key.
        """
        functions = _function_list(self.path)
        if functions is None or not functions.C_GetSessionInfo:
            return None
        info = _SessionInfo()
        with self.guard:
            rv = _C_GetSessionInfo(functions.C_GetSessionInfo)(session.handle, ctypes.byref(info))
        return info.state in _USER_STATES if rv == _CKR_OK else None


_modules: dict[str, Module] = {}
_modules_lock = threading.Lock()
_inherited: set[str] = set()  # modules initialised by the parent of this (forked) process


def load_module(path: str) -> Module:
    """The process-wide Module for the shared object at `path` (loaded and initialised once)."""
    if not os.path.isfile(path):
        raise ConfigError(f"PKCS#11 module not found: {path} (set module-path= or KEYPLANE_PKCS11_MODULE)")
    real = os.path.realpath(path)
    with _modules_lock:
        module = _modules.get(real)
        if module is None:
            module = _modules[real] = _load(real, path)
        return module


def _load(path: str, alias: str) -> Module:
    """Load the module at `path` (a real path); `alias` is the path the caller gave (python-pkcs11 keys by it)."""
    pkcs11 = require("pkcs11", "pkcs11", "pkcs11")
    from pkcs11 import _pkcs11

    wanted = os.environ.get(LOCKING_ENV, "os").strip().lower() or "os"
    if wanted not in ("os", "serialize"):
        raise ConfigError(f"{LOCKING_ENV} must be 'os' or 'serialize', not {wanted!r}")

    existing = pkcs11._loaded.get(path) or pkcs11._loaded.get(alias)
    if existing is not None:
        # python-pkcs11 already initialised it with NULL args: the module does no locking.
        return Module(path, existing, "serialize", threading.RLock())

    outcome: dict[str, str] = {}

    class _Lib(_pkcs11.lib):
        """python-pkcs11's lib whose `initialize` (a cpdef, so overridable) passes our flags."""

        def initialize(self) -> None:
            rv = _initialize(path, _CKF_OS_LOCKING_OK if wanted == "os" else 0)
            if rv == _CKR_CANT_LOCK:
                rv = _initialize(path, 0)
                outcome.setdefault("locking", "serialize")
            elif rv == _CKR_CRYPTOKI_ALREADY_INITIALIZED:
                outcome.setdefault("locking", "serialize")  # someone else chose; assume the worst
                rv = _CKR_OK
            if rv != _CKR_OK:
                raise pkcs11.GeneralError(f"C_Initialize returned CK_RV 0x{rv:x}")
            outcome.setdefault("locking", wanted)

    try:
        lib = _Lib(path)
    except pkcs11.PKCS11Error as e:
        if "loading" in str(e):
            raise ConfigError(f"cannot load PKCS#11 module {path}: not a PKCS#11 shared object") from e
        raise BackendUnavailable(
            f"PKCS#11 module {path} failed to initialise ({type(e).__name__}); check its configuration", e
        ) from e
    # Later `pkcs11.lib(path)` calls in this process (a user's own code, our benchmark) share
    # this instance instead of calling C_Initialize(NULL) on an initialised module.
    pkcs11._loaded[path] = pkcs11._loaded[alias] = lib
    locking = outcome.get("locking", wanted)
    guard: contextlib.AbstractContextManager[Any] = threading.RLock() if locking == "serialize" else _NoLock()
    return Module(path, lib, locking, guard)


class _NoLock(contextlib.AbstractContextManager[None]):
    """The guard when the module locks itself: costs one method call."""

    def __exit__(self, *exc: object) -> None:
        return None


def _forget_after_fork() -> None:
    """A forked child must initialise the module again (PKCS#11 2.40 section 6.7.7)."""
    global _modules_lock
    _modules_lock = threading.Lock()  # the parent's may have been held by another thread at fork time
    _inherited.update(_modules)
    _modules.clear()
    try:
        import pkcs11
    except ImportError:
        return
    for path in list(pkcs11._loaded):
        pkcs11._loaded.pop(path, None)


os.register_at_fork(after_in_child=_forget_after_fork)
