"""The per-key-spec checks a worker runs (the matrix columns), beyond the primitives in `checks`.

Each returns a short detail (pass) or raises CheckFailed / Unsupported, like every check.
They take the worker (for the store, its Capabilities and the other specs' keys) and the
state of one spec.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from signers.algorithms import KeySpec
from signers.composite import CompositeAlgorithm
from signers.errors import AlgorithmNotSupported, KeyDisabled, KeyExists, KeyNotFound, KeyplaneError

from . import checks
from .checks import CheckFailed, SpecState, Unsupported
from .plan import slug
from .specs import Spec, create_key, open_key

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["create", "refuse_unclaimed", "run"]


def run(name: str, worker: Worker, state: SpecState) -> str:
    """The per-spec check called `name` (create has its own step)."""
    table: dict[str, Callable[[], str]] = {
        "open": lambda: checks.check_open(state),
        "sign-verify": lambda: checks.check_sign_verify(state),
        "signature-format": lambda: checks.check_signature_format(state),
        "negatives": lambda: checks.check_negatives(state),
        "algorithms": lambda: check_algorithms(state),
        "deterministic": lambda: check_deterministic(worker, state),
        "duplicate-create": lambda: check_duplicate_create(worker, state),
        "key-id": lambda: checks.check_key_id(state, worker.capabilities.process_local),
        "delete": lambda: check_delete(worker, state),
    }
    return table[name]()


def create(worker: Worker, state: SpecState) -> str:
    store = worker.store
    if worker.capabilities.create:
        try:
            state.signer = create_key(store, state.name, state.spec)
        except AlgorithmNotSupported as e:
            worker.refused.add(state.spec)
            hint = ""
            if worker.target.uri.startswith("awskms:") and state.spec.family.name == "MLDSA":
                hint = " (moto <= 5.2.5 has no ML-DSA; use `keyplane emulator aws`)"
            raise CheckFailed(f"the store claims {state.spec.value} (Capabilities.key_specs) but create_key refused "
                              f"it: AlgorithmNotSupported: {e}{hint}") from e
        state.created = True
        got = state.signer.public_key.spec
        if got is not state.spec:
            raise CheckFailed(f"create_key({state.spec.value}) made a {got.value} key")
        return f"created {state.name}"
    # A store that cannot create keys is judged on keys provisioned as <prefix>-<spec>.
    state.name = f"{worker.target.key_prefix}-{slug(state.spec)}"
    try:
        state.signer = store.open(state.name)
    except KeyNotFound:
        raise Unsupported(
            f"the store cannot create keys (Capabilities.create is False) and has no key {state.name!r}"
        ) from None
    return f"opened pre-provisioned {state.name}"


def refuse_unclaimed(worker: Worker, spec: Spec) -> str:
    """A spec the store does not claim must be refused with AlgorithmNotSupported."""
    reason = worker.unclaimed_reason(spec)
    if not worker.capabilities.create:
        raise Unsupported(f"{reason}; the store does not create keys")
    name = worker.key_name(spec)
    try:
        create_key(worker.store, name, spec)
    except AlgorithmNotSupported as e:
        worker.watch.check_exception("create_key of an unclaimed spec", e)
        raise Unsupported(f"AlgorithmNotSupported: {e}") from None
    except Exception as e:
        raise CheckFailed(
            f"create_key of unclaimed {spec.value} raised {type(e).__name__}: {e} (expected AlgorithmNotSupported)"
        ) from e
    try:
        worker.store.delete_key(name)
    except Exception as e:
        worker.watch.check_exception("delete_key", e)
    raise CheckFailed(f"create_key of unclaimed {spec.value} succeeded (expected AlgorithmNotSupported)")


def check_algorithms(state: SpecState) -> str:
    """Every algorithm the spec allows is opened and signed, and verified under exactly that algorithm.

    A store that does not offer one says AlgorithmNotSupported at open (then listed as refused);
    a signer that signs with another padding or hash fails, with what it did instead.
    """
    signer = state.need_signer()
    verified, refused, problems = [], [], []
    for algorithm in state.spec.algorithms:
        try:
            opened = open_key(state.store, state.name, algorithm)
        except AlgorithmNotSupported as e:
            if algorithm is state.spec.default_algorithm:
                problems.append(f"{algorithm.value} (the default) refused: {e}")
            else:
                refused.append(algorithm.value)
            continue
        if opened.algorithm is not algorithm:
            problems.append(f"open(..., {algorithm.value}) gave a {opened.algorithm.value} signer")
            continue
        if opened.public_key != signer.public_key:
            problems.append(f"open(..., {algorithm.value}) gave another public key")
            continue
        message = os.urandom(48)
        signature = opened.sign(message)
        state.extra.append((message, signature))
        if signer.public_key.is_valid(signature, message, algorithm):
            verified.append(algorithm.value)
        else:
            why = checks.diagnose(signer.public_key, algorithm, signature, message, opened.uri)
            problems.append(f"{algorithm.value}: the signature does not verify under {algorithm.value}{why}")
    if isinstance(state.spec, CompositeAlgorithm):
        problems += _wrong_variants_refused(state)
    if problems:
        raise CheckFailed("; ".join(problems))
    note = f"; not offered (AlgorithmNotSupported at open): {', '.join(refused)}" if refused else ""
    if isinstance(state.spec, CompositeAlgorithm):
        note += "; opening it as a variant of other key specs raises AlgorithmNotSupported"
    return f"{', '.join(verified)} sign and verify{note}"


def _wrong_variants_refused(state: SpecState) -> list[str]:
    """A composite key opened as a variant of other key specs must be refused, typed."""
    variant = state.spec
    assert isinstance(variant, CompositeAlgorithm)
    # A variant with another ML-DSA half and one with another traditional half: neither can be this key.
    # (Variants with the same two key specs, e.g. RSA-PSS and PKCS#1 v1.5, differ only in label and
    # padding; a store keeps no variant beside the keys, so it may open the pair as either.)
    others = [next(v for v in CompositeAlgorithm if v.mldsa_spec is not variant.mldsa_spec),
              next(v for v in CompositeAlgorithm if v.classical_spec is not variant.classical_spec)]
    problems = []
    for other in others:
        try:
            opened = open_key(state.store, state.name, other)
        except AlgorithmNotSupported:
            continue
        except Exception as e:
            problems.append(f"open(..., {other.value}) raised {type(e).__name__}: {e} (expected AlgorithmNotSupported)")
            continue
        problems.append(f"a {state.spec.value} key opened as {other.value} (gave a {opened.algorithm} signer)")
    return problems


def check_deterministic(worker: Worker, state: SpecState) -> str:
    """Ed25519 always, and every spec the store claims deterministic: the same message, the same bytes."""
    claimed = state.spec in worker.capabilities.deterministic
    if state.spec is not KeySpec.ED25519 and not claimed:
        raise Unsupported(f"{state.spec.value} is not claimed deterministic (Capabilities.deterministic)")
    signer = state.need_signer()
    message = b"keyplane conformance: deterministic " + os.urandom(16)
    first, second = signer.sign(message), signer.sign(message)
    state.extra += [(message, first), (message, second)]
    if first != second:
        why = "Ed25519 (RFC 8032) is deterministic" if not claimed else "the store claims it deterministic"
        raise CheckFailed(f"signing the same message twice gave different signatures; {why}")
    if not signer.public_key.is_valid(first, message, signer.algorithm):
        raise CheckFailed("the repeated signature does not verify")
    return "the same message signed twice gives the same bytes" + ("" if claimed else " (Ed25519, not claimed)")


def check_duplicate_create(worker: Worker, state: SpecState) -> str:
    """A second create_key with a taken name raises KeyExists and leaves the original key as it was."""
    if not worker.capabilities.create:
        raise Unsupported("the store does not create keys (Capabilities.create is False)")
    signer = state.need_signer()
    if not state.created:
        raise Unsupported("the key was not created by this run")
    before = signer.public_key
    try:
        create_key(worker.store, state.name, state.spec)
    except KeyExists as e:
        worker.watch.check_exception("KeyExists", e)
        outcome = None
    except Exception as e:
        outcome = f"raised {type(e).__name__}: {e} (expected KeyExists)"
    else:
        outcome = "succeeded (expected KeyExists)"
    after = worker.store.open(state.name).public_key
    replaced = "; the original key was replaced (another public key under the name)" if after != before else ""
    if outcome is not None or replaced:
        raise CheckFailed(f"a second create_key({state.name!r}) {outcome or 'raised KeyExists'}{replaced}")
    return "KeyExists; the original public key is unchanged"


def check_delete(worker: Worker, state: SpecState) -> str:
    """Deleting one key removes exactly that key: a sibling of the same spec and every other spec's
    key still open with the same public key. Per Capabilities.deletion, a store that schedules,
    soft-deletes or disables passes when open (or a signature) afterwards gives KeyNotFound / KeyDisabled."""
    caps = worker.capabilities
    if not caps.delete:
        raise Unsupported("the store does not claim delete (Capabilities.delete is False)")
    if not state.created:
        raise Unsupported("the key was not created by this run, so it is not deleted")
    state.need_signer()
    sibling_name = worker.key_name(state.spec, "sibling")
    sibling = create_key(worker.store, sibling_name, state.spec) if caps.create else None
    try:
        worker.store.delete_key(state.name)
        state.deleted = True
        worker.key_event(state)
        gone = _after_delete(worker, state)
        problems = _others_intact(worker, state, sibling_name, sibling)
    finally:
        if sibling is not None:
            try:
                worker.store.delete_key(sibling_name)
            except Exception as e:  # cleanup only; the verdict stands
                worker.watch.check_exception("delete_key of the sibling", e)
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{gone}; " + ("the sibling and " if sibling is not None else "") + "every other key open unchanged"


def _after_delete(worker: Worker, state: SpecState) -> str:
    deletion = worker.capabilities.deletion
    try:
        opened = worker.store.open(state.name)
    except KeyNotFound:
        return "open after delete raises KeyNotFound"
    except KeyDisabled as e:
        if deletion == "immediate":
            raise CheckFailed(f"open after delete raises KeyDisabled, but Capabilities.deletion is immediate: {e}") from e
        return f"open after delete raises KeyDisabled (deletion {deletion})"
    if deletion == "immediate":
        raise CheckFailed("open after delete_key still succeeds (Capabilities.deletion is immediate)")
    try:
        opened.sign(b"keyplane conformance: after delete")
    except (KeyDisabled, KeyNotFound) as e:
        return f"a signature after delete raises {type(e).__name__} (deletion {deletion})"
    except KeyplaneError as e:
        raise CheckFailed(f"a signature after delete raised {type(e).__name__} (expected KeyDisabled)") from e
    raise CheckFailed(f"the deleted key still opens and signs (Capabilities.deletion is {deletion})")


def _others_intact(worker: Worker, state: SpecState, sibling_name: str, sibling: object) -> list[str]:
    problems = []
    others: list[tuple[str, bytes | None]] = []
    if sibling is not None:
        others.append((sibling_name, checks.public_key_der(sibling.public_key)))  # type: ignore[attr-defined]
    for other in worker.states.values():
        if other is state or other.deleted or not other.created:
            continue
        der = checks.public_key_der(other.signer.public_key) if other.signer is not None else other.expected_der
        others.append((other.name, der))
    for name, der in others:
        try:
            opened = worker.store.open(name)
        except Exception as e:
            problems.append(f"deleting {state.name} broke {name}: open raised {type(e).__name__}: {e}")
            continue
        if der is not None and checks.public_key_der(opened.public_key) != der:
            problems.append(f"deleting {state.name} changed {name}'s public key")
    return problems
