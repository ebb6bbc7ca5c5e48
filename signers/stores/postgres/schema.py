"""The keyplane schema in PostgreSQL: versioned, migrated by keyplane, never downgraded.

`migrate(pool)` applies the missing steps under an advisory lock (several processes may
start at once); a database whose schema is newer than this keyplane is refused with a
ConfigError naming both versions, and nothing is written to it.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from .connection import pg_call

__all__ = ["LATEST", "migrate", "schema_version"]

_LOCK = 0x6B6579706C616E65  # "keyplane": the advisory lock that serialises migrations

# Each step takes the schema from version i to i + 1; steps are only ever appended.
_STEPS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS keyplane_revocations ("
        " seq bigserial UNIQUE, kind text NOT NULL, id text NOT NULL, reason text NOT NULL,"
        " revoked_at timestamptz NOT NULL, PRIMARY KEY (kind, id))",
        "CREATE TABLE IF NOT EXISTS keyplane_audit ("
        " log text NOT NULL, seq bigint NOT NULL CHECK (seq > 0), record text NOT NULL, PRIMARY KEY (log, seq))",
        "CREATE TABLE IF NOT EXISTS keyplane_replay (key text PRIMARY KEY, expires_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS keyplane_replay_expiry ON keyplane_replay (expires_at)",
        "CREATE TABLE IF NOT EXISTS keyplane_status_index (list text PRIMARY KEY, next bigint NOT NULL)",
    ),
    (  # 2: the agent registry (histories append-only by compare-and-set on (agent, seq))
        "CREATE TABLE IF NOT EXISTS keyplane_agent_history ("
        " agent text NOT NULL, seq bigint NOT NULL CHECK (seq > 0), prev text NOT NULL, hash text NOT NULL,"
        " token text NOT NULL, PRIMARY KEY (agent, seq))",
        "CREATE TABLE IF NOT EXISTS keyplane_agent_approvers ("
        " version bigint PRIMARY KEY CHECK (version > 0), document text NOT NULL)",
    ),
    (  # 3: the spend ledger (payments per agent and asset, exact amounts)
        "CREATE TABLE IF NOT EXISTS keyplane_spend ("
        " agent text NOT NULL, asset text NOT NULL, at double precision NOT NULL,"
        " amount numeric NOT NULL CHECK (amount >= 0))",
        "CREATE INDEX IF NOT EXISTS keyplane_spend_window ON keyplane_spend (agent, asset, at)",
    ),
)
LATEST = len(_STEPS)


def schema_version(pool: Any) -> int:
    """The schema version in the database (0 when keyplane never ran there)."""
    with pg_call(pool, "reading the keyplane schema version") as conn:
        exists = conn.execute("SELECT to_regclass('keyplane_schema') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        row = conn.execute("SELECT version FROM keyplane_schema WHERE id = 1").fetchone()
        return int(row[0]) if row else 0


def _refuse_newer(version: int) -> None:
    if version > LATEST:
        raise ConfigError(f"the database has keyplane schema version {version}, newer than this keyplane's "
                          f"{LATEST}: upgrade keyplane before pointing it at this database")


def migrate(pool: Any, *, allowed: bool = True) -> int:
    """Bring the schema to LATEST (or check it is there when `allowed` is False); the version reached.

    Raises ConfigError for a newer schema, or for an older one when migrating is not allowed.
    """
    current = schema_version(pool)
    _refuse_newer(current)
    if current == LATEST:
        return current
    if not allowed:
        raise ConfigError(f"the keyplane schema is at version {current}, this keyplane needs {LATEST}: "
                          "run `keyplane store migrate URI`")
    with pg_call(pool, "migrating the keyplane schema") as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS keyplane_schema (id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)")
        row = conn.execute("SELECT version FROM keyplane_schema WHERE id = 1").fetchone()
        current = int(row[0]) if row else 0
        _refuse_newer(current)
        for step in _STEPS[current:]:
            for statement in step:
                conn.execute(statement)
        conn.execute("INSERT INTO keyplane_schema (id, version) VALUES (1, %s) "
                     "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version", (LATEST,))
    return LATEST
