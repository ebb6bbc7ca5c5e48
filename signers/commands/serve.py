"""``keyplane serve``: run the issuer service (``pip install 'keyplane[server]'``).

Reads the ``[server]`` section of the configuration (``--config``, else ``$KEYPLANE_CONFIG``,
else ./keyplane.toml), opens the issuer key in its back end (it never leaves it), the state
stores by URI, and serves on 127.0.0.1:8400 unless ``listen`` / ``--listen`` say otherwise.
SIGTERM / SIGINT stop it gracefully: in-flight requests finish, queued webhooks get a grace
period and what is left is reported as dropped.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the issuer service: JWKS, passports, revocation, gate, dashboard")
    serve.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE",
                       help="keyplane.toml with a [server] section (default: $KEYPLANE_CONFIG, else ./keyplane.toml)")
    serve.add_argument("--listen", metavar="HOST:PORT", help="override [server] listen (default 127.0.0.1:8400)")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds to let in-flight requests finish on stop")
    serve.set_defaults(func=_serve)


def _config_path(args: argparse.Namespace) -> Path:
    # lazy: `keyplane --help` imports every command module
    from signers.errors import ConfigError

    for candidate in (getattr(args, "config", None), os.environ.get("KEYPLANE_CONFIG"), "keyplane.toml"):
        if candidate:
            if not Path(candidate).is_file():
                raise ConfigError(f"config file {candidate} does not exist")
            return Path(candidate)
    raise ConfigError("no configuration: give --config keyplane.toml (with a [server] section)")


def _serve(args: argparse.Namespace) -> int:
    # lazy: `keyplane --help` must not import the web stack (the sdk check below names the extra)
    import dataclasses

    from signers.errors import ConfigError
    from signers.sdk import require
    from signers.server.config import ServerConfig

    uvicorn = require("uvicorn", "server", "keyplane serve")
    require("starlette", "server", "keyplane serve")
    # lazy: needs starlette, checked just above
    from signers.server.app import build
    from signers.server.logs import configure_logging

    config = ServerConfig.load(_config_path(args))
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("--listen must be HOST:PORT, such as 127.0.0.1:8400")
        config = dataclasses.replace(config, host=host.strip("[]"), port=int(port))
    configure_logging(config.log_level)
    app = build(config)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_config=None,
                                           access_log=False, timeout_graceful_shutdown=args.grace,
                                           server_header=False, lifespan="on"))
    # uvicorn re-raises the stop signal after its graceful shutdown; a stop we asked for is a clean exit
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    server.run()
    return 0


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)
