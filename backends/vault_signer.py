"""The Transit Signer: one key version, one HTTP round trip per signature (or per batch chunk).

Concurrent `sign_async` calls of one event-loop tick go out as one ``batch_input`` request
(`backends.vault_coalesce`), each caller getting its own signature or its own item's error.

Every signature Transit returns is verified with the cached public key before it is handed
out, so a server that lost its state and holds another key under the same name and version
makes the signer raise KeyNotFound, never return a signature its public key rejects.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

from signers.algorithms import KeyFamily, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    BackendUnavailable,
    BatchSignError,
    ConfigError,
    KeyNotFound,
    KeyplaneError,
)
from signers.keys import PublicKey
from signers.signature_format import checked_digest, digest
from signers.signer import BaseSigner

from .vault_coalesce import Coalescer
from .vault_wire import digest_is_valid, sign_parameters, signature_from

if TYPE_CHECKING:  # the store imports this module; the signer only holds a reference to it
    from .vault_transit import VaultTransitKeyStore

__all__ = ["BATCH_BYTES", "BATCH_ITEMS", "VaultTransitSigner"]

BATCH_ITEMS = 250  # messages per batch_input request
BATCH_BYTES = 4 << 20  # about this much base64 input per request (Transit's default limit is 32 MiB)


class VaultTransitSigner(BaseSigner):
    """Signs with one version of one Transit key: one HTTP round trip per signature."""

    def __init__(
        self, store: VaultTransitKeyStore, name: str, version: int, uri: str,
        algorithm: SignatureAlgorithm, public_key: PublicKey,
    ) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the connection alive as long as the signer
        self.name = name
        self.version = version
        self._path = f"{store.mount}/sign/{name}"
        self._body = sign_parameters(algorithm, version)
        self._what = f"signing with {name!r} v{version}"
        self._outages_seen = store.connection.outages
        self._coalescer = Coalescer(self._sign_each, self.worker_pool)

    async def sign_async(self, message: bytes) -> bytes:
        """`sign` without blocking the loop; the concurrent calls of one loop tick share one batch request.

        Every signature is verified with the public key before it is returned, as `sign`
        does. Raises ConfigError for a message that is not bytes, this item's own typed
        error (Transit refused it), or what the request as a whole raised (KeyNotFound for a
        key replaced on the server, BackendUnavailable, AuthenticationFailed...).
        """
        if not isinstance(message, bytes | bytearray | memoryview):
            raise ConfigError(f"a message to sign must be bytes, not {type(message).__name__}")
        return await self._coalescer.submit(bytes(message))

    def _sign_each(self, messages: list[bytes]) -> list[bytes | KeyplaneError]:
        """Each message's verified signature or typed error (one request per chunk; a lone one via `sign`)."""
        if len(messages) == 1:
            return [self.sign(messages[0])]
        return self._sign_all(messages, verify_all=True)

    def sign(self, message: bytes) -> bytes:
        if self._outages_seen != self._store.connection.outages:
            self._recheck()
        message = bytes(message)
        data = digest(self.algorithm, message) if self.algorithm.hash_name else message
        body = dict(self._body, input=base64.b64encode(data).decode("ascii"))
        reply = self._store.connection.post_json(self._path, body, self._what)
        signature = signature_from(reply, self.name, self.version, self.algorithm)
        if not self.public_key.is_valid(signature, message, self.algorithm):
            self._refuse(signature)
        return signature

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed digest (Transit ``prehashed=true``): ECDSA and RSA; never hashed again.

        Raises ConfigError for a digest of the wrong length, AlgorithmNotSupported for
        Ed25519 and ML-DSA (Transit signs their whole message). Verified before it is returned.
        """
        digest = checked_digest(self.algorithm, digest)
        if self._outages_seen != self._store.connection.outages:
            self._recheck()
        body = dict(self._body, input=base64.b64encode(digest).decode("ascii"))
        reply = self._store.connection.post_json(self._path, body, self._what)
        signature = signature_from(reply, self.name, self.version, self.algorithm)
        if not digest_is_valid(self.public_key, signature, digest, self.algorithm):
            self._refuse(signature)
        return signature

    def sign_mu(self, mu: bytes) -> bytes:
        """ML-DSA over a caller-computed FIPS 204 mu (64 bytes): OpenBao's ``hash_algorithm=mldsa-mu``.

        What composite signatures need (their ML-DSA context is the composite label).
        Raises ConfigError unless 64 bytes, AlgorithmNotSupported for non-ML-DSA keys.
        """
        if self.algorithm.family is not KeyFamily.MLDSA:
            raise AlgorithmNotSupported(f"external mu is ML-DSA only, not {self.algorithm.value}")
        if len(mu) != 64:
            raise ConfigError(f"an ML-DSA mu is 64 bytes, not {len(mu)}")
        if self._outages_seen != self._store.connection.outages:
            self._recheck()
        body = dict(self._body, input=base64.b64encode(bytes(mu)).decode("ascii"), prehashed=True,
                    hash_algorithm="mldsa-mu")
        reply = self._store.connection.post_json(self._path, body, self._what)
        signature = signature_from(reply, self.name, self.version, self.algorithm)
        try:
            self.public_key.verify_mu(signature, bytes(mu))
        except KeyplaneError:
            self._refuse(signature)
        return signature

    def _refuse(self, signature: bytes) -> None:
        """A signature this signer's public key rejects: find out why, and never hand it out.

        The usual cause is a server that was restarted or restored and holds another key
        under the same name and version (urllib3 reconnects silently, so no outage is
        seen): KeyNotFound. The same key answering a bad signature is a server fault.
        """
        self._recheck()  # KeyNotFound when the key is gone or replaced
        raise BackendUnavailable(f"Transit returned a signature for {self.name!r} v{self.version} that its "
                                 f"public key rejects ({len(signature)} bytes); not handing it out")

    def _recheck(self) -> None:
        """After an outage, make sure the server still holds this key version before signing with it.

        A restarted or restored server may have lost the key, or hold a different key under
        the same name and version; signing on would return signatures this signer's
        public_key does not verify.
        """
        outages = self._store.connection.outages
        try:
            current = self._store._read(self.name).public_key(self.version)
        except KeyNotFound as e:
            raise KeyNotFound(f"key {self.name!r} v{self.version} is no longer on the server ({e}); "
                              "it was deleted, or the server lost its state") from e
        if current != self.public_key:
            raise KeyNotFound(f"key {self.name!r} v{self.version} on the server is no longer the key this signer "
                              "opened (deleted and re-created?); open it again")
        self._outages_seen = outages

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign every message with Transit's ``batch_input``, in chunks; signatures in input order.

        Chunks hold at most `BATCH_ITEMS` messages and about `BATCH_BYTES` of input, so a
        request stays far below Transit's size limit. The first signature of each chunk is
        verified locally (one request is signed by one server with one key version, so that
        catches a key replaced under the same name); `sign` verifies every one. A failed item (Transit's per-item ``error``, or a chunk that failed as a
        whole) raises BatchSignError whose ``results`` carries every item's signature or
        typed error, so the successful signatures are never lost; once a chunk fails as a
        whole (server unreachable, token refused) the chunks after it are not sent and
        carry the same error. A key replaced under the signer raises KeyNotFound.
        """
        bad = [i for i, m in enumerate(messages) if not isinstance(m, bytes | bytearray | memoryview)]
        if bad:  # refused before anything is sent: a typed error naming the items
            raise ConfigError(f"batch items {bad[:5]} are not bytes; nothing was signed")
        results = self._sign_all([bytes(m) for m in messages], verify_all=False)
        failed = [i for i, r in enumerate(results) if not isinstance(r, bytes)]
        if failed:
            raise BatchSignError(f"{len(failed)} of {len(results)} signatures with {self.name!r} failed "
                                 f"(first: item {failed[0]}: {results[failed[0]]!s})", results)
        return [r for r in results if isinstance(r, bytes)]

    def _sign_all(self, messages: list[bytes], *, verify_all: bool) -> list[bytes | KeyplaneError]:
        """Each message's signature or typed error, chunk by chunk; KeyNotFound (key replaced) raises.

        Once a chunk fails as a whole, the chunks after it are not sent and carry its error.
        """
        inputs = [self._input(m) for m in messages]
        results: list[bytes | KeyplaneError] = []
        chunk_error: KeyplaneError | None = None
        for start, end in _chunks(inputs):
            if chunk_error is None:
                try:
                    results.extend(self._sign_chunk(inputs[start:end], messages[start:end], verify_all))
                    continue
                except KeyNotFound:
                    raise
                except KeyplaneError as e:
                    chunk_error = e
            results.extend([chunk_error] * (end - start))
        return results

    def _input(self, message: bytes) -> str:
        data = digest(self.algorithm, message) if self.algorithm.hash_name else message
        return base64.b64encode(data).decode("ascii")

    def _sign_chunk(self, inputs: list[str], messages: list[bytes], verify_all: bool = False
                    ) -> list[bytes | KeyplaneError]:
        """One ``batch_input`` request; each item's signature or typed error.

        The first signature is verified (see `sign_many`), or every one with `verify_all`
        (`sign_async`: each caller gets what `sign` would have handed it, a verified signature).
        """
        if self._outages_seen != self._store.connection.outages:
            self._recheck()
        body = dict(self._body, batch_input=[{"input": text} for text in inputs])
        reply = self._store.connection.post_json(self._path, body, self._what + " (batch)")
        try:
            items = reply["data"]["batch_results"]
        except (KeyError, TypeError) as e:
            raise BackendUnavailable(f"Transit answered a batch for {self.name!r} without batch_results", e) from e
        if not isinstance(items, list) or len(items) != len(inputs):
            raise BackendUnavailable(f"Transit answered {len(items) if isinstance(items, list) else 'no'} results "
                                     f"for a batch of {len(inputs)}")
        out: list[bytes | KeyplaneError] = []
        checked = False
        for item, message in zip(items, messages, strict=True):
            if not isinstance(item, dict) or item.get("error"):
                detail = str(item.get("error") if isinstance(item, dict) else item)[:300]
                out.append(self._store.connection.item_error(detail, self._what))
                continue
            try:
                signature = signature_from({"data": item}, self.name, self.version, self.algorithm)
            except KeyplaneError as e:
                out.append(e)
                continue
            # One request is answered by one server with one key: verifying its first signature
            # proves the key is still ours (a replaced key fails here), at 1/len(chunk) of the cost.
            if verify_all or not checked:
                if not self.public_key.is_valid(signature, message, self.algorithm):
                    self._refuse(signature)  # KeyNotFound when replaced, else BackendUnavailable for the batch
                checked = True
            out.append(signature)
        return out

    def rotate(self) -> VaultTransitSigner:
        """Add a key version on the server; a Signer for it (this one keeps its version)."""
        return self._store.rotate_key(self.name, self.algorithm)


def _chunks(inputs: list[str]) -> list[tuple[int, int]]:
    """(start, end) ranges of `inputs` with at most BATCH_ITEMS items and about BATCH_BYTES each."""
    ranges: list[tuple[int, int]] = []
    start, size = 0, 0
    for index, text in enumerate(inputs):
        if index > start and (index - start >= BATCH_ITEMS or size + len(text) > BATCH_BYTES):
            ranges.append((start, index))
            start, size = index, 0
        size += len(text)
    if start < len(inputs):
        ranges.append((start, len(inputs)))
    return ranges
