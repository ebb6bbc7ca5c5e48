"""The PKCS#11 Signer: one private key on a token, signing through its store's session pool.

A signature is the hot path (docs/pkcs11.md has the measurements against raw
python-pkcs11): what a signer needs (hash function, DigestInfo prefix, Mechanism and
parameter, key cache key) is worked out once when it is opened (`SignPlan`), the pool
lends an idle session without a lock, errors are translated by a try/except that costs
nothing unless something is raised, and r||s becomes DER without an int round trip.

A key replaced under the same label and id (deleted and re-created, here or by another
process) is never signed with: whenever a session has to find the key object again (first
use in that session, after a create/delete in this process, after a lost object or token),
the object's public key is compared with the one the signer was opened with, and a
mismatch is KeyNotFound. So a signer never returns a signature its `public_key` rejects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signers.algorithms import KeyFamily, SignatureAlgorithm
from signers.errors import KeyNotFound
from signers.keys import PublicKey
from signers.signature_format import checked_digest, ecdsa_raw_to_der
from signers.signer import BaseSigner
from signers.workers import WorkerPool

from .errors import translate
from .mechanisms import CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, DIGEST_INFO, HASHLIB, PSS_PARAMS, SIGN_MECHANISM, sdk
from .objects import describe, find_private, read_public, same_public_key
from .pool import PooledSession, TokenSessions

if TYPE_CHECKING:  # the store imports this module; the signer only holds a reference to it
    from .store import Pkcs11KeyStore

__all__ = ["Pkcs11Signer", "SignPlan"]


class SignPlan:
    """How one signer signs, worked out when it is opened rather than on every signature.

    The host-side digest (hashlib) and any DigestInfo prefix, the python-pkcs11 Mechanism
    and its parameter, whether r||s becomes DER, and the public key a re-found key object
    must have.
    """

    __slots__ = ("algorithm", "cache_key", "ec", "expected", "hash", "label", "mechanism", "object_id", "param",
                 "prefix")

    def __init__(self, algorithm: SignatureAlgorithm, label: str | None, object_id: bytes | None,
                 expected: PublicKey) -> None:
        family = algorithm.family
        hash_name = algorithm.hash_name
        self.algorithm = algorithm
        self.expected = expected
        self.label, self.object_id, self.cache_key = label, object_id, (label, object_id)
        self.ec = family is KeyFamily.EC
        self.prefix = b""
        self.param: Any = None
        self.hash: Any = None
        if family in (KeyFamily.EDDSA, KeyFamily.MLDSA):
            mechanism = SIGN_MECHANISM[family][False]  # pure: the token signs the message itself
        else:
            assert hash_name is not None  # ECDSA and RSA always hash
            self.hash = HASHLIB[hash_name]
            if family is KeyFamily.EC:
                mechanism = CKM_ECDSA
            elif algorithm.is_pss:
                mechanism, self.param = CKM_RSA_PKCS_PSS, PSS_PARAMS[hash_name]
            else:
                mechanism, self.prefix = CKM_RSA_PKCS, DIGEST_INFO[hash_name]
        self.mechanism = sdk().Mechanism(mechanism)

    def sign(self, pooled: PooledSession, data: bytes, tokens: TokenSessions) -> bytes:
        """The operation `TokenSessions.run` lends a session to: C_Sign with the key cached in that session."""
        key = pooled.keys.get(self.cache_key)
        if key is None:
            key = pooled.keys[self.cache_key] = self.find(pooled, tokens)
        param = self.param
        if param is None:  # one keyword fewer through python-pkcs11's **kwargs layers
            return bytes(key.sign(data, mechanism=self.mechanism))
        return bytes(key.sign(data, mechanism=self.mechanism, mechanism_param=param))

    def find(self, pooled: PooledSession, tokens: TokenSessions) -> Any:
        """The key object, once its public key is the one this signer was opened with (else KeyNotFound)."""
        pkcs11 = sdk()
        private = find_private(pkcs11, pooled, self.label, self.object_id, tokens)
        found_id = bytes(private[pkcs11.Attribute.ID])
        current = read_public(pkcs11, pooled.session, private, found_id, tokens)
        if not same_public_key(current, self.expected):
            raise KeyNotFound(
                f"key {describe(self.label, self.object_id)} on {tokens.name} was replaced: its public key is no "
                "longer the one this signer was opened with; open the key again"
            )
        return private

    def describe(self) -> str:
        """What failed, for an error message (built only on failure)."""
        return f"signing with {describe(self.label, self.object_id)}"


class Pkcs11Signer(BaseSigner):
    """A private key on a token; signs through its store's session pool (thread-safe)."""

    def __init__(self, store: Pkcs11KeyStore, uri: str, algorithm: SignatureAlgorithm, public_key: PublicKey,
                 label: str | None, object_id: bytes | None) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the pool alive as long as the signer
        self._label = label
        self._object_id = object_id
        self._plan = SignPlan(algorithm, label, object_id, public_key)  # worked out once
        self.batch_width = store.max_sessions  # sign_many spreads over every session of the pool

    def worker_pool(self) -> WorkerPool:
        """The store's own pool, one thread per session (sign_async / sign_many_async run there)."""
        return self._store.workers

    def sign(self, message: bytes) -> bytes:
        """Sign `message` (hashed here for ECDSA / RSA); DER for ECDSA.

        Raises KeyNotFound (the key is gone or was replaced), AuthenticationFailed,
        AlgorithmNotSupported, PermissionDenied or BackendUnavailable (the token stayed lost).
        """
        # The hot path, kept flat: no closures or context managers per call, nothing looked up
        # that the plan already holds, and errors translated by a try that costs nothing until
        # something is raised.
        plan = self._plan
        if type(message) is not bytes:
            message = bytes(message)  # a bytearray or memoryview is copied: it could change meanwhile
        digest = plan.hash
        return self._sign(message if digest is None else plan.prefix + digest(message).digest())

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed digest of the algorithm's hash length, never hashing it again (DigestSigner).

        Raw CKM_ECDSA over the digest, CKM_RSA_PKCS over DigestInfo || digest, or
        CKM_RSA_PKCS_PSS with the hash named in its parameters. Raises ConfigError for a digest
        of the wrong length, AlgorithmNotSupported for Ed25519 and ML-DSA (no digest form),
        and what `sign` raises.
        """
        value = checked_digest(self.algorithm, digest)
        return self._sign(self._plan.prefix + value)

    def _sign(self, data: bytes) -> bytes:
        plan, store = self._plan, self._store
        tokens = store._tokens
        if tokens is None or tokens.login_epoch != store._login_epoch:
            tokens = store._connect()
        try:
            raw = tokens.run(plan.sign, data, tokens, recover_with=store._pin)
        except Exception as e:
            error = translate(e, plan.describe(), tokens, plan.algorithm)
            if error is None:
                raise
            raise error from e
        return ecdsa_raw_to_der(raw) if plan.ec else raw
