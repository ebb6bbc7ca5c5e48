"""One row per optional-capability Protocol (signers.signer), plus the `prehash` claim.

Each row tests exactly what the store implements, discovered as callers discover it
(`capabilities_of(store)` and isinstance on a real signer); a Protocol the store does not
implement is a not-supported row with the reason "not implemented", never a fail, so a
back end that implements none of them passes every core row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signers.algorithms import KeyFamily, KeySpec
from signers.errors import (
    AlgorithmNotSupported,
    BatchSignError,
    ConfigError,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
)
from signers.keys import PublicKey
from signers.local_keys import generate_private_key
from signers.signer import (
    BatchSigner,
    DigestSigner,
    DisablingKeyStore,
    ImportingKeyStore,
    NativeAsyncSigner,
    RotatingKeyStore,
    Signer,
)

from .checks import CheckFailed, Unsupported
from .specs import create_key
from .store_checks import page_spec

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["PROTOCOL_RUNNERS", "check_prehash"]

NOT_IMPLEMENTED = "not implemented"


def _implementing(worker: Worker, protocol: type) -> Any:
    """The store, when it satisfies the store Protocol `protocol`; else the row is not-supported."""
    if not isinstance(worker.store, protocol):
        raise Unsupported(NOT_IMPLEMENTED)
    return worker.store


@contextlib.contextmanager
def _temporary(worker: Worker, suffix: str) -> Iterator[tuple[str, Signer]]:
    """A key made for one check, deleted again whatever the verdict."""
    spec = page_spec(worker)
    if spec is None or not worker.capabilities.create:
        raise Unsupported("implemented, but the check needs a key it can create (no claimed spec / create)")
    name = worker.key_name(None, suffix)
    signer = create_key(worker.store, name, spec)
    try:
        yield name, signer
    finally:
        _cleanup(worker, name)


def _cleanup(worker: Worker, name: str) -> None:
    try:
        worker.store.delete_key(name)
    except Exception as e:  # cleanup only; the verdict stands
        worker.watch.check_exception("delete_key", e)


def _verifies(signer: Signer, public_key: PublicKey, message: bytes) -> bool:
    return public_key.is_valid(signer.sign(message), message, signer.algorithm)


# -- store Protocols ---------------------------------------------------------------------


def check_rotate(worker: Worker) -> str:
    store = _implementing(worker, RotatingKeyStore)
    with _temporary(worker, "rotate") as (name, old):
        message = b"keyplane conformance: before rotation"
        old_signature = old.sign(message)
        new = store.rotate_key(name)
        problems = []
        if new.public_key == old.public_key:
            problems.append("the rotated key has the same public key")
        if new.key_id == old.key_id:
            problems.append("key_id did not change with the key")
        if not _verifies(new, new.public_key, b"keyplane conformance: after rotation"):
            problems.append("the new version's signature does not verify under its public key")
        if not old.public_key.is_valid(old_signature, message, old.algorithm):
            problems.append("a signature of the old version no longer verifies against the old public key")
        try:
            again = old.sign(message)
            if not old.public_key.is_valid(again, message, old.algorithm):
                problems.append("a signer opened before the rotation signs with another key than its public key")
        except KeyplaneError:
            pass  # refusing is allowed; a wrong signature is not
        current = store.open(name)
        if current.public_key != new.public_key:
            problems.append("open after rotate does not give the new version")
        versions = (getattr(old, "version", None), getattr(new, "version", None))
        if versions[1] is None:
            problems.append("the rotated Signer has no .version")
        elif versions[0] is not None and versions[0] == versions[1]:
            problems.append(f"version stayed {versions[1]!r}")
        if problems:
            raise CheckFailed("; ".join(problems))
        return f"version {versions[0]} -> {versions[1]}: new key signs, old signature verifies, key_id changed"


def check_disable(worker: Worker) -> str:
    store = _implementing(worker, DisablingKeyStore)
    with _temporary(worker, "disable") as (name, signer):
        store.disable_key(name)
        refused = []
        for how, sign in (("the signer opened before", lambda: signer.sign(b"disabled")),
                          ("a signer opened after", lambda: store.open(name).sign(b"disabled"))):
            try:
                sign()
            except KeyDisabled:
                refused.append(how)
                continue
            raise CheckFailed(f"{how} disable_key still signs (expected KeyDisabled)")
        store.enable_key(name)
        if not _verifies(store.open(name), signer.public_key, b"keyplane conformance: enabled again"):
            raise CheckFailed("after enable_key the signature does not verify")
        try:
            store.disable_key(worker.key_name(None, "missing"))
        except KeyNotFound:
            pass
        else:
            raise CheckFailed("disable_key of a key that does not exist did not raise KeyNotFound")
        return "disabled: KeyDisabled for signers opened before and after; enabled: signs and verifies again"


def check_import(worker: Worker) -> str:
    store = _implementing(worker, ImportingKeyStore)
    claimed = [s for s in (KeySpec.P256, KeySpec.ED25519, KeySpec.RSA2048, *KeySpec) if worker.judged(s)]
    refusals = []
    for spec in dict.fromkeys(claimed):
        private = generate_private_key(spec)
        expected = PublicKey(private.public_key())
        name = worker.key_name(spec, "imported")
        try:
            signer = store.import_key(name, private)
        except AlgorithmNotSupported as e:
            refusals.append(f"{spec.value}: {e}")
            continue
        try:
            problems = []
            if signer.public_key != expected:
                problems.append("the imported key's public key is not the one imported")
            if not _verifies(signer, expected, b"keyplane conformance: imported"):
                problems.append("a signature of the imported key does not verify")
            if store.open(name).public_key != expected:
                problems.append("open after import gives another public key")
            try:
                store.import_key(name, private)
                problems.append("importing again under the same name succeeded (expected KeyExists)")
            except KeyExists:
                pass
            if problems:
                raise CheckFailed(f"{spec.value}: " + "; ".join(problems))
            return f"{spec.value} generated locally, imported: signs, verifies, same public key; re-import KeyExists"
        finally:
            _cleanup(worker, name)
    raise Unsupported("implemented, but every claimed spec was refused: " + "; ".join(refusals[:3]))


# -- signer Protocols ----------------------------------------------------------------------


def _signer_with(worker: Worker, protocol: type, families: tuple[KeyFamily, ...] | None = None) -> Signer | None:
    """A signer of the run that satisfies `protocol` (preferring `families`), or None."""
    for spec, state in worker.states.items():
        if not worker.judged(spec) or state.deleted or (families and spec.family not in families):
            continue
        try:
            signer = state.need_signer()
        except Exception:
            continue
        if isinstance(signer, protocol):
            return signer
    return None


def _implemented(worker: Worker, name: str, protocol: type) -> bool:
    if name in worker.capabilities.protocols:
        return True
    return _signer_with(worker, protocol) is not None


def _prehashed_verify(public_key: PublicKey, signature: bytes, digest: bytes, algorithm: Any) -> None:
    key, h = public_key.key, algorithm.hash_algorithm()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, digest, ec.ECDSA(Prehashed(h)))
    elif isinstance(key, rsa.RSAPublicKey):
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if algorithm.is_pss else padding.PKCS1v15()
        key.verify(signature, digest, pad, Prehashed(h))
    else:
        raise CheckFailed(f"no Prehashed form for {public_key.spec.value}")


def check_sign_digest(worker: Worker) -> str:
    if not _implemented(worker, "sign-digest", DigestSigner):
        raise Unsupported(NOT_IMPLEMENTED)
    signer = _signer_with(worker, DigestSigner, (KeyFamily.EC, KeyFamily.RSA))
    signer = signer or _signer_with(worker, DigestSigner)
    if signer is None:
        raise Unsupported("implemented by the signer class, but no signer of this run satisfies DigestSigner")
    assert isinstance(signer, DigestSigner)
    algorithm = signer.algorithm
    if algorithm.hash_name is None:
        try:
            signer.sign_digest(bytes(32))
        except AlgorithmNotSupported as e:
            return f"{algorithm.value} has no digest form: AlgorithmNotSupported ({e})"
        raise CheckFailed(f"sign_digest on {algorithm.value} (no pre-hash) did not raise AlgorithmNotSupported")
    message = b"keyplane conformance: digest " + os.urandom(16)
    digest = hashes.Hash(algorithm.hash_algorithm())
    digest.update(message)
    value = digest.finalize()
    public_key: PublicKey = signer.public_key
    problems = []
    signature = signer.sign_digest(value)
    if not public_key.is_valid(signature, message, algorithm):
        problems.append("a signature of the message's digest does not verify as a signature of the message")
    known = hashlib.sha256(b"keyplane conformance known digest").digest()[: len(value)]
    try:
        _prehashed_verify(public_key, signer.sign_digest(known), known, algorithm)
    except Exception as e:
        problems.append(f"a signature of a known digest does not verify with cryptography's Prehashed ({e!r})")
    try:
        signer.sign_digest(value[:-1])
        problems.append(f"a {len(value) - 1}-byte digest was signed (expected ConfigError)")
    except ConfigError:
        pass
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{algorithm.value}: sign_digest agrees with sign; a known digest verifies with Prehashed; wrong length ConfigError"


def check_sign_many(worker: Worker) -> str:
    if not _implemented(worker, "sign-many", BatchSigner):
        raise Unsupported(NOT_IMPLEMENTED)
    signer = _signer_with(worker, BatchSigner)
    if signer is None:
        raise Unsupported("implemented by the signer class, but no signer of this run satisfies BatchSigner")
    assert isinstance(signer, BatchSigner)
    public_key: PublicKey = signer.public_key
    algorithm = signer.algorithm
    messages = [f"keyplane conformance batch #{i} ".encode() + os.urandom(8) for i in range(6)]
    problems = []
    for how, results in (("sign_many", signer.sign_many(messages)),
                         ("sign_many_async", asyncio.run(signer.sign_many_async(messages)))):
        if len(results) != len(messages):
            problems.append(f"{how} returned {len(results)} results for {len(messages)} messages")
            continue
        if not all(public_key.is_valid(s, m, algorithm) for s, m in zip(results, messages, strict=True)):
            problems.append(f"{how}: a result does not verify for its own message (order not preserved?)")
    problems += _batch_failure(signer, messages)
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{len(messages)} messages: results in order and verify (sync and async); a bad item is reported as itself"


def _batch_failure(signer: Any, messages: list[bytes]) -> list[str]:
    batch: list[Any] = [messages[0], "not bytes", messages[2]]
    try:
        signer.sign_many(batch)
    except BatchSignError as e:
        errors = e.errors
        if set(errors) != {1}:
            return [f"BatchSignError names items {sorted(errors)}, the bad one is 1"]
        if not all(isinstance(e.results[i], bytes) for i in (0, 2)):
            return ["BatchSignError lost the signatures of the good items"]
        return []
    except KeyplaneError:
        return []  # refused up front with a typed error: allowed
    except Exception as e:
        return [f"a bad item raised {type(e).__name__} (expected BatchSignError for that item)"]
    return ["a batch with a str item was signed without an error"]


def check_native_async(worker: Worker) -> str:
    if not _implemented(worker, "native-async", NativeAsyncSigner):
        raise Unsupported(NOT_IMPLEMENTED)
    spec = next((s for s in worker.states if worker.judged(s) and not worker.states[s].deleted), None)
    if spec is None:
        raise Unsupported("implemented, but no key of this run to open")
    signer = worker.store.open(worker.states[spec].name)  # a signer of its own: aclose() releases its client
    if not isinstance(signer, NativeAsyncSigner):
        raise Unsupported("implemented by the signer class, but the opened signer does not satisfy NativeAsyncSigner")
    messages = [f"keyplane conformance native async #{i}".encode() for i in range(16)]

    async def run() -> list[bytes]:
        try:
            return list(await asyncio.gather(*(signer.sign_async(m) for m in messages)))
        finally:
            await signer.aclose()

    results = asyncio.run(run())
    public_key: PublicKey = signer.public_key
    if not all(public_key.is_valid(s, m, signer.algorithm) for s, m in zip(results, messages, strict=True)):
        raise CheckFailed("a native sign_async signature does not verify")
    return f"{len(messages)} concurrent native sign_async verify; aclose() releases the client"


def check_prehash(worker: Worker) -> str:
    """A store claiming prehash (the service signs digests we compute) still signs whole messages of any size."""
    if not worker.capabilities.prehash:
        raise Unsupported("not claimed (Capabilities.prehash is False)")
    signer = _signer_with(worker, object, (KeyFamily.EC, KeyFamily.RSA))
    if signer is None:
        raise Unsupported("claimed, but no ECDSA or RSA key of this run to sign with")
    for size in (0, 4097, 1 << 20):
        message = os.urandom(size)
        if not signer.public_key.is_valid(signer.sign(message), message, signer.algorithm):
            raise CheckFailed(f"a {size}-byte message hashed locally and signed as a digest does not verify")
    return f"{signer.algorithm.value}: messages of 0 B, 4097 B and 1 MiB hashed locally, signed, verify"


PROTOCOL_RUNNERS: dict[str, Callable[[Worker], str]] = {
    "rotate": check_rotate,
    "disable": check_disable,
    "import": check_import,
    "sign-digest": check_sign_digest,
    "sign-many": check_sign_many,
    "native-async": check_native_async,
}
