"""The one error hierarchy every back end translates into.

Callers catch `KeyplaneError` (or one of its children) and never an SDK's own
exception: back ends raise these with the SDK's original chained (`raise ... from e`),
so the cause is still there for a debugger but never part of the contract.
Messages never contain a secret (PIN, password, token).
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotSupported",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BatchSignError",
    "ConfigError",
    "Conflict",
    "InvalidSignature",
    "KeyCorrupt",
    "KeyDisabled",
    "KeyExists",
    "KeyNotFound",
    "KeyplaneError",
    "PermissionDenied",
    "StateCorrupt",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenReplayed",
    "TokenRevoked",
]


class KeyplaneError(Exception):
    """Base of every error keyplane raises on purpose."""


class ConfigError(KeyplaneError, ValueError):
    """A URI, configuration file, option or missing extra is wrong; fix the input, do not retry."""


class KeyNotFound(KeyplaneError, LookupError):
    """The named key (or key version) does not exist in the store."""


class KeyExists(KeyplaneError):
    """A key with that name already exists; creating never overwrites."""


class KeyCorrupt(KeyplaneError):
    """The key material is present but unreadable (damaged file or record).

    The file back end tells a damaged key file apart from a wrong password this way:
    neither `AuthenticationFailed` nor `KeyNotFound` would be true.
    """


class AlgorithmNotSupported(KeyplaneError):
    """The key spec or signature algorithm is not offered by this back end or key."""


class AuthenticationFailed(KeyplaneError):
    """The credential (PIN, password, token) was rejected."""


class PermissionDenied(KeyplaneError):
    """The credential is valid but not allowed to do this, or a file's permissions are unsafe."""


class KeyDisabled(PermissionDenied):
    """The key exists but is disabled (or pending deletion) in its service: enable it to sign again."""


class BackendUnavailable(KeyplaneError):
    """The service or device could not be reached or failed; retrying later may work.

    `cause` is the underlying exception (also chained as `__cause__`).
    """

    retryable = True

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class StateCorrupt(KeyplaneError):
    """A state store (revocation store, audit log, replay cache) is damaged: a permanent fault.

    Not retryable, unlike BackendUnavailable: the answer it would give cannot be trusted,
    so every caller fails closed (a revocation check that cannot be read is a refusal).
    """

    retryable = False


class Conflict(KeyplaneError):
    """A compare-and-set write lost: another writer extended the same record first; nothing was written.

    Raised by append-only stores whose writes name the head they extend (the agent
    registry), so two replicas advancing one agent at once cannot fork its history. Re-read
    the current state and decide again; blindly repeating the same write would fail again.
    """

    retryable = False


class BatchSignError(KeyplaneError):
    """One or more items of a `sign_many` batch failed.

    `results` holds, in input order, each item's signature (bytes) or its KeyplaneError, so
    the signatures that succeeded are never lost.
    """

    def __init__(self, message: str, results: list[bytes | KeyplaneError]) -> None:
        super().__init__(message)
        self.results = results

    @property
    def errors(self) -> dict[int, KeyplaneError]:
        """Index -> error, for the items that failed."""
        return {i: r for i, r in enumerate(self.results) if isinstance(r, KeyplaneError)}


class InvalidSignature(KeyplaneError):
    """A signature did not verify."""


class TokenError(KeyplaneError):
    """A token (JWS/JWT, passport, action token, revocation list) was refused."""


class TokenExpired(TokenError):
    """The token's `exp` (plus leeway) has passed, or its `nbf` has not yet come."""


class TokenRevoked(TokenError):
    """The token's `jti` (or a certificate's serial) is revoked."""


class TokenInvalid(TokenError):
    """The token is malformed, tampered with, or signed by the wrong key or algorithm."""


class TokenReplayed(TokenError):
    """A single-use token (or a proof of possession's nonce) was presented a second time."""
