"""redis-py's exceptions as keyplane's: the one table every Redis store translates through."""

from __future__ import annotations

from ..errors import AuthenticationFailed, BackendUnavailable, KeyplaneError, PermissionDenied
from ..sdk import require

__all__ = ["redis_errors"]


def redis_errors(exc: BaseException, what: str) -> KeyplaneError | None:
    """redis-py exceptions as keyplane errors (the one table for this engine)."""
    exceptions = require("redis.exceptions", "redis", "Redis state store")
    if isinstance(exc, exceptions.AuthenticationError | exceptions.AuthenticationWrongNumberOfArgsError):
        return AuthenticationFailed(f"{what}: Redis refused the credentials")
    if isinstance(exc, exceptions.NoPermissionError):
        return PermissionDenied(f"{what}: the Redis user may not do this")
    if isinstance(exc, exceptions.ResponseError) and "NOAUTH" in str(exc):
        return AuthenticationFailed(f"{what}: Redis needs a password (password-source=)")
    if isinstance(exc, exceptions.RedisError):
        return BackendUnavailable(f"{what}: Redis unavailable ({type(exc).__name__})", exc)
    return None
