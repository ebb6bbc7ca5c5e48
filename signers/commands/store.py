"""``keyplane store migrate|info URI``: the shared state stores (PostgreSQL, Redis, SQLite)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ..stores import open_state
from .common import action, command_group, print_result

__all__ = ["register"]


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "store", "state stores shared by a fleet: migrate, info")
    migrate = action(sub, "migrate", "create or upgrade the keyplane schema (PostgreSQL)", _migrate)
    migrate.add_argument("uri", help="postgresql://user@host/db?password-source=env:PGPASSWORD")
    info = action(sub, "info", "what the store is and what 'durable' means on it", _info)
    info.add_argument("uri", help="sqlite:///path, postgresql://..., redis://...")


def _migrate(args: argparse.Namespace) -> int:
    if not args.uri.startswith(("postgresql:", "postgres:")):
        raise ConfigError("only postgresql: stores have a schema to migrate (sqlite: and redis: need none)")
    # lazy: signers.stores.postgres loads the token layer it backs (100 ms); only `store migrate` needs it
    from signers.stores.postgres.schema import LATEST

    with open_state(args.uri) as state:  # opening migrates (migrate=true is the default)
        print_result(args, {"ok": True, "uri": state.uri, "schema_version": LATEST},
                     f"{state.uri}: keyplane schema at version {LATEST}")
    return 0


def _info(args: argparse.Namespace) -> int:
    with open_state(args.uri) as state:
        f = state.features
        data = {"ok": True, "uri": state.uri, "engine": f.engine, "durability": f.durability,
                "push": f.push, "shared": f.shared}
        print_result(args, data, [f"store:      {state.uri}", f"engine:     {f.engine}",
                                  f"durability: {f.durability}", f"push:       {'yes' if f.push else 'no (poll)'}",
                                  f"shared:     {'yes' if f.shared else 'no (one machine)'}"])
    return 0
