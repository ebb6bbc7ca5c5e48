"""From a ``postgresql://`` URI to a psycopg connection pool, and psycopg's errors to keyplane's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    KeyplaneError,
    PermissionDenied,
    StateCorrupt,
)
from ...sdk import require
from ...secrets import Secret, resolve_secret
from ...translation import translated
from ...uri_options import checked_uri

__all__ = ["PostgresLocation", "connect_pool", "parse_postgres_uri", "pg_call", "pg_errors"]

_QUERY = {"password-source", "sslmode", "sslrootcert", "sslcert", "sslkey", "connect-timeout", "timeout",
          "pool-size", "migrate", "application-name"}


@dataclass(frozen=True)
class PostgresLocation:
    """Where and how to connect; `password` is a Secret that never prints."""

    host: str
    port: int
    dbname: str
    user: str | None
    password: Secret | None
    tls: dict[str, str]
    connect_timeout: float
    timeout: float  # per statement and per pool checkout
    pool_size: int
    migrate: bool
    public_uri: str

    def conninfo(self) -> str:
        psycopg = require("psycopg", "postgres", "PostgreSQL state store")
        params: dict[str, Any] = {"host": self.host, "port": self.port, "dbname": self.dbname,
                                  "connect_timeout": max(1, round(self.connect_timeout)),
                                  "application_name": "keyplane",
                                  "options": f"-c statement_timeout={int(self.timeout * 1000)}", **self.tls}
        if self.user:
            params["user"] = self.user
        if self.password is not None:
            params["password"] = self.password.reveal()
        return str(psycopg.conninfo.make_conninfo(**params))


def parse_postgres_uri(uri: str) -> PostgresLocation:
    """The location in a ``postgresql://[user@]host[:port]/db?...`` URI; ConfigError if malformed.

    A password inside the URI is refused: it comes from ``password-source=env:NAME|file:PATH``.
    """
    parsed, options = checked_uri(uri, schemes={"postgresql", "postgres"}, query=_QUERY)
    authority = parsed.authority or ""
    user, _, hostport = authority.rpartition("@")
    if ":" in user:
        raise ConfigError("postgresql: URI must not carry a password; use ?password-source=env:NAME")
    host, _, port_text = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    if not host:
        raise ConfigError("postgresql: URI needs a host (postgresql://user@127.0.0.1:5432/db)")
    port = 5432
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError("postgresql: URI port must be a number from 1 to 65535")
        port = int(port_text)
    dbname = parsed.path.lstrip("/")
    if not dbname or "/" in dbname:
        raise ConfigError("postgresql: URI needs a database name as its path (postgresql://host/keyplane)")
    source = options.text("password-source")
    tls = {name: value for name in ("sslmode", "sslrootcert", "sslcert", "sslkey")
           if (value := options.text(name)) is not None}
    return PostgresLocation(
        host=host, port=port, dbname=dbname, user=user or None,
        password=resolve_secret(source, "password-source") if source else None,
        tls=tls,
        connect_timeout=options.number("connect-timeout", 5.0, minimum=0.1, maximum=300),
        timeout=options.number("timeout", 10.0, minimum=0.1, maximum=3600),
        pool_size=options.integer("pool-size", 8, minimum=1, maximum=256),
        migrate=options.flag("migrate", True),
        public_uri=str(parsed),
    )


def connect_pool(location: PostgresLocation) -> Any:
    """An open psycopg_pool.ConnectionPool that checks each connection before lending it."""
    pool_module = require("psycopg_pool", "postgres", "PostgreSQL state store")
    with translated(pg_errors, f"connecting to {location.public_uri}"):
        pool = pool_module.ConnectionPool(
            location.conninfo(), min_size=1, max_size=location.pool_size, timeout=location.timeout,
            kwargs={"autocommit": True}, check=pool_module.ConnectionPool.check_connection, open=False,
            name="keyplane",
        )
        try:
            pool.open(wait=True, timeout=location.connect_timeout + location.timeout)
        except Exception:
            pool.close()
            raise
    return pool


_AUTH_STATES = frozenset({"28P01", "28000"})


def pg_errors(exc: BaseException, what: str) -> KeyplaneError | None:
    """psycopg / psycopg_pool exceptions as keyplane errors (the one table for this engine)."""
    psycopg = require("psycopg", "postgres", "PostgreSQL state store")
    pool_module = require("psycopg_pool", "postgres", "PostgreSQL state store")
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc).lower()
    if state in _AUTH_STATES or "password authentication failed" in text or "no password supplied" in text:
        return AuthenticationFailed(f"{what}: PostgreSQL refused the credentials")
    if state == "42501":
        return PermissionDenied(f"{what}: the database user lacks a privilege ({state})")
    if state.startswith("XX") or isinstance(exc, psycopg.DataError):
        return StateCorrupt(f"{what}: the database reports damaged data ({state or type(exc).__name__})")
    if isinstance(exc, pool_module.PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError):
        return BackendUnavailable(f"{what}: PostgreSQL unavailable ({type(exc).__name__})", exc)
    if state == "57014":  # statement_timeout
        return BackendUnavailable(f"{what}: PostgreSQL did not answer within the timeout", exc)
    if isinstance(exc, psycopg.Error):
        return BackendUnavailable(f"{what}: PostgreSQL error {state or type(exc).__name__}", exc)
    return None


@contextmanager
def pg_call(pool: Any, what: str) -> Iterator[Any]:
    """A pooled connection for one operation, with psycopg's errors translated."""
    with translated(pg_errors, what), pool.connection() as conn:
        yield conn
