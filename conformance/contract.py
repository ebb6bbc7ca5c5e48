"""The up-front contract check: the store and one signer against the Signer / KeyStore contract.

One row per member (the store's ``uri``, ``capabilities``, ``from_uri``, the item types of
``list_keys``; a signer's ``uri``, ``key_id``, ``algorithm``, ``public_key``, ``sign``),
so a plugin that misses one reads one clear row instead of a hundred rows repeating the
same AttributeError. When a member every other check needs is missing, the verdict says
so and the other rows are not run (each says why).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.composite import CompositeAlgorithm, CompositePublicKey
from signers.errors import KeyplaneError
from signers.keys import PublicKey
from signers.signer import Capabilities, KeyInfo

from .checks import CheckFailed, Unsupported
from .plan import STORE, slug
from .specs import create_key, is_composite
from .store_checks import page_spec

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["check_contract"]

# Rows whose failure stops the run: every other check needs these members.
_BLOCKING = ("contract:store.uri", "contract:store.capabilities", "contract:signer.uri", "contract:signer.key_id",
             "contract:signer.algorithm", "contract:signer.public_key")


def _member(obj: Any, name: str, kind: type | tuple[type, ...], what: str) -> str:
    if not hasattr(obj, name):
        raise CheckFailed(f"{what} has no attribute {name!r}")
    value = getattr(obj, name)
    if not isinstance(value, kind):
        wanted = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CheckFailed(f"{what}.{name} is a {type(value).__name__}, the contract says {wanted}")
    return f"{what}.{name}: {type(value).__name__}"


def _from_uri(store: Any) -> str:
    method = getattr(type(store), "from_uri", None)
    if method is None:
        raise CheckFailed(f"{type(store).__name__} has no classmethod from_uri (the registry builds stores with it)")
    if not callable(method) or not isinstance(inspect.getattr_static(type(store), "from_uri"), classmethod):
        raise CheckFailed(f"{type(store).__name__}.from_uri is not a classmethod")
    return f"{type(store).__name__}.from_uri is a classmethod"


def _list_items(worker: Worker) -> str:
    caps = getattr(worker.store, "capabilities", None)
    if not isinstance(caps, Capabilities) or not caps.list:
        raise Unsupported("the store does not claim list (Capabilities.list is False)")
    problems: list[str] = []
    count = 0
    try:
        items = list(worker.store.list_keys())
    except KeyplaneError as e:  # a typed refusal (e.g. an empty key ring that does not exist yet)
        return f"list_keys raised {type(e).__name__} before the run made a key (the listing row judges listing)"
    for info in items:
        count += 1
        if not isinstance(info, KeyInfo):
            problems.append(f"an item is a {type(info).__name__}, not KeyInfo")
        elif not isinstance(info.name, str) or not isinstance(info.uri, str):
            problems.append("KeyInfo.name / .uri is not a str")
        elif info.spec is not None and not isinstance(info.spec, KeySpec):
            problems.append(f"KeyInfo.spec is a {type(info.spec).__name__}, not KeySpec or None")
        if problems or count >= 200:
            break
    if problems:
        raise CheckFailed(problems[0])
    return f"list_keys yields KeyInfo items ({count} looked at)"


def _signer(worker: Worker) -> tuple[Any, str | None]:
    """One signer to inspect: a new key of a claimed spec (deleted afterwards), or a provisioned one."""
    caps = worker.capabilities
    spec = page_spec(worker)
    if spec is None:
        raise Unsupported("no claimed key spec to make a signer of")
    if caps.create:
        name = worker.key_name(None, "contract")
        return create_key(worker.store, name, spec), name
    return worker.store.open(f"{worker.target.key_prefix}-{slug(spec)}"), None


def check_contract(worker: Worker) -> str | None:
    """Emit the contract rows; return why the run cannot go on (a blocking member failed), or None."""
    store = worker.store
    failed: list[str] = []

    def row(check: str, fn: Any) -> None:
        before = len(failed)
        worker.record(STORE, check, lambda: _guard(fn, failed, check))
        if len(failed) > before and check not in _BLOCKING:
            failed.pop()

    row("contract:store.uri", lambda: _member(store, "uri", str, "store"))
    row("contract:store.capabilities", lambda: _member(store, "capabilities", Capabilities, "store"))
    row("contract:store.from_uri", lambda: _from_uri(store))
    row("contract:store.list_keys", lambda: _list_items(worker))
    box: dict[str, Any] = {}

    def get_signer() -> Any:
        if "error" in box:
            raise box["error"]
        if "signer" not in box:
            try:
                box["signer"], box["name"] = _signer(worker)
            except Unsupported:
                raise
            except Exception as e:  # not a contract defect: the create / open rows judge it
                box["error"] = _NoSigner(f"could not make a signer to inspect: {type(e).__name__}: {e}")
                raise box["error"] from e
        return box["signer"]

    row("contract:signer.uri", lambda: _member(get_signer(), "uri", str, "signer"))
    row("contract:signer.key_id", lambda: _member(get_signer(), "key_id", str, "signer"))
    # A composite store's signers carry a composite algorithm and public key (signers.composite).
    composite = any(is_composite(s) for s in worker.target.spec_list())
    algorithm, public_key = (CompositeAlgorithm, CompositePublicKey) if composite else (SignatureAlgorithm, PublicKey)
    row("contract:signer.algorithm", lambda: _member(get_signer(), "algorithm", algorithm, "signer"))
    row("contract:signer.public_key", lambda: _member(get_signer(), "public_key", public_key, "signer"))
    row("contract:signer.sign", lambda: _sign(get_signer()))
    if box.get("name"):
        try:
            store.delete_key(box["name"])
        except Exception as e:  # cleanup only
            worker.watch.check_exception("delete_key", e)
    return "; ".join(failed) if failed else None


def _sign(signer: Any) -> str:
    for name in ("sign", "sign_async"):
        if not callable(getattr(signer, name, None)):
            raise CheckFailed(f"signer has no method {name}()")
    if not inspect.iscoroutinefunction(signer.sign_async):
        raise CheckFailed("signer.sign_async is not a coroutine function (async def)")
    try:
        signature = signer.sign(b"keyplane conformance: contract")
    except KeyplaneError as e:  # a typed refusal is the contract's shape; sign-verify judges it
        return f"sign() raised {type(e).__name__} (judged by sign-verify); sign_async is async"
    if not isinstance(signature, bytes):
        raise CheckFailed(f"sign() returned a {type(signature).__name__}, not bytes")
    return "sign() returns bytes; sign_async is async"


class _NoSigner(CheckFailed):
    """No signer could be made at all: a failure of create / open, not a missing member."""


def _guard(fn: Any, failed: list[str], check: str) -> str:
    try:
        result: str = fn()
        return result
    except _NoSigner:
        raise
    except CheckFailed as e:
        failed.append(f"{check}: {e}")
        raise
    except Unsupported:
        raise
    except Exception as e:
        failed.append(f"{check}: {type(e).__name__}: {e}")
        raise
