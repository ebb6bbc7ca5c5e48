"""Old import path of backends.pkcs11.pool (kept so existing imports keep working)."""

from backends.pkcs11.pool import (
    LoginLost,
    PooledSession,
    TokenSelector,
    TokenSessions,
    acquire_token,
    find_token,
    loss_kind,
    release_token,
)

__all__ = ["LoginLost", "PooledSession", "TokenSelector", "TokenSessions", "acquire_token", "find_token",
           "loss_kind", "release_token"]
