"""``keyplane``: the command line.

Commands live in small modules under `signers.commands` (keys, demo, tokens, ca) and,
for what lives outside the core (``conformance``, ``bench``, ``emulator``), in the
entry-point group ``keyplane.commands``: each is a ``register(subparsers)`` function
that adds one sub-command whose handler is ``args.func(args) -> int``.

Exit codes: 0 ok, 1 verification failed, 2 usage or configuration error, 3 back end
unavailable, 4 any other keyplane error. Errors print as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from .errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyplaneError,
    PermissionDenied,
    TokenError,
)

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "main", "print_result"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_ERROR = 4

COMMAND_GROUP = "keyplane.commands"
# Built-in command modules, each with register(subparsers); imported at start-up, so
# they must import nothing heavy at module level.
_BUILTIN_COMMANDS = ("keys", "demo", "tokens", "ca", "store")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default exit code is 2 too, but prints usage noise
        self.print_usage(sys.stderr)
        print(f"keyplane: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keyplane", description="One signing interface over HSMs, KMSs, Vault and files.")
    parser.add_argument("--config", help="keyplane.toml with named keys and stores (default: $KEYPLANE_CONFIG)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _BUILTIN_COMMANDS:
        module = importlib.import_module(f"signers.commands.{name}")
        module.register(sub)
    for ep in entry_points(group=COMMAND_GROUP):
        try:
            register: Callable[[Any], None] = ep.load()
        except ImportError as e:
            print(f"keyplane: warning: command plugin {ep.name!r} failed to load: {e}", file=sys.stderr)
            continue
        register(sub)
    return parser


def print_result(args: argparse.Namespace, data: dict[str, Any], text: str | Sequence[str]) -> None:
    """Print `data` as JSON under --json, else the human text."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text if isinstance(text, str) else "\n".join(text))


def _exit_code(error: KeyplaneError) -> int:
    if isinstance(error, InvalidSignature | TokenError):
        return EXIT_INVALID
    if isinstance(error, ConfigError | AlgorithmNotSupported):
        return EXIT_USAGE
    if isinstance(error, BackendUnavailable):
        return EXIT_UNAVAILABLE
    if isinstance(error, AuthenticationFailed | PermissionDenied):
        return EXIT_ERROR
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.config:
        import os

        os.environ["KEYPLANE_CONFIG"] = args.config
    try:
        return int(args.func(args))
    except KeyplaneError as e:
        if args.json:
            print(json.dumps({"ok": False, "error": type(e).__name__, "message": str(e)}))
        else:
            print(f"keyplane: {type(e).__name__}: {e}", file=sys.stderr)
        return _exit_code(e)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        print(f"keyplane: {type(e).__name__}: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
