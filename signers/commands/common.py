"""What every command module shares: exit codes, output, the configuration and opening keys.

`signers.cli` (the entry point) and every command module import this at the top, so the
command modules never reach back into `signers.cli` (which imports them) from inside a
function. The configuration is passed explicitly: `config_of(args)` loads the file named
by ``--config`` (or, without the flag, ``$KEYPLANE_CONFIG`` / ``./keyplane.toml``, as
`Config.load` documents) once per invocation, and `open_key` / `open_store` hand it to
the registry; nothing is passed through ``os.environ``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..algorithms import SignatureAlgorithm
from ..clock import duration
from ..config import Config
from ..errors import (
    AlgorithmNotSupported,
    BackendUnavailable,
    ConfigError,
    InvalidSignature,
    KeyplaneError,
    TokenError,
)
from ..registry import open as open_signer
from ..registry import open_store as open_key_store
from ..signer import KeyStore, Signer

__all__ = [
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PIPE_CLOSED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "action",
    "command_group",
    "config_of",
    "environment_default",
    "exit_code",
    "key_argument",
    "open_key",
    "open_store",
    "print_result",
    "seconds",
    "store_argument",
]

EXIT_OK = 0
EXIT_INVALID = 1  # a signature, token or certificate was refused: never used for a crash
EXIT_USAGE = 2  # usage, configuration or input error (a missing or unreadable file included)
EXIT_UNAVAILABLE = 3  # the back end could not be reached; retrying later may work
EXIT_ERROR = 4  # any other error: wrong credentials, key exists, an unexpected failure
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what `yes | head` reports: the reader went away

_CONFIG_ATTRIBUTE = "_keyplane_config"


def print_result(args: argparse.Namespace, data: dict[str, Any], text: str | Sequence[str]) -> None:
    """Print `data` as JSON under --json, else the human text (a string or lines)."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text if isinstance(text, str) else "\n".join(text))


def command_group(subparsers: Any, name: str, summary: str) -> Any:
    """Register ``keyplane NAME ACTION ...`` (`summary` is its --help line); returns what `action` adds to."""
    parser = subparsers.add_parser(name, help=summary)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def action(sub: Any, name: str, summary: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """Register one command (or a group's action) that `handler` runs; returns its parser, for the arguments."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary)
    parser.set_defaults(func=handler)
    return parser


def key_argument(parser: argparse.ArgumentParser, whose: str = "") -> None:
    """The positional KEY a signing command takes: a key URI, or a key's name in keyplane.toml."""
    parser.add_argument("key", help=f"{f'the {whose} ' if whose else ''}key URI or name from keyplane.toml")


def exit_code(error: KeyplaneError) -> int:
    """The documented exit code for a keyplane error."""
    if isinstance(error, InvalidSignature | TokenError):
        return EXIT_INVALID
    if isinstance(error, ConfigError | AlgorithmNotSupported):
        return EXIT_USAGE
    if isinstance(error, BackendUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


def config_of(args: argparse.Namespace) -> Config:
    """The configuration for this invocation, loaded on first use and kept on `args`.

    Raises ConfigError naming ``--config`` when the flag's file does not exist, or naming
    the file when it is malformed.
    """
    cached = getattr(args, _CONFIG_ATTRIBUTE, None)
    if isinstance(cached, Config):
        return cached
    path = getattr(args, "config", None)
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"--config {path}: no such file")
    config = Config.load(path)
    setattr(args, _CONFIG_ATTRIBUTE, config)
    return config


def _is_name(reference: str) -> bool:
    return ":" not in reference


def open_key(args: argparse.Namespace, reference: str, algorithm: SignatureAlgorithm | str | None = None) -> Signer:
    """`signers.open` with this invocation's configuration (loaded only for a key name).

    Raises what `signers.open` raises: ConfigError, KeyNotFound, AuthenticationFailed, ...
    """
    config = config_of(args) if _is_name(reference) else None
    return open_signer(reference, algorithm, config=config)


def open_store(args: argparse.Namespace, reference: str) -> KeyStore:
    """`signers.open_store` with this invocation's configuration (loaded only for a store name)."""
    config = config_of(args) if _is_name(reference) else None
    return open_key_store(reference, config=config)


def environment_default(given: str | None, variable: str) -> str | None:
    """An option's value, else the environment variable documented as its default, else None.

    The one place a command module reads the environment (``$KEYPLANE_STORE``,
    ``$KEYPLANE_REVOCATIONS``, ``$KEYPLANE_AGENTS``): a default for one option, never a way
    to pass configuration between layers.
    """
    return given or os.environ.get(variable) or None


def store_argument(given: str | None) -> str:
    """The ``--store`` value, else ``$KEYPLANE_STORE``; ConfigError when neither is set."""
    store = environment_default(given, "KEYPLANE_STORE")
    if not store:
        raise ConfigError("no store given: use --store URI (or a store name from keyplane.toml) or set KEYPLANE_STORE")
    return store


def seconds(what: str, *, allow_zero: bool = True) -> Callable[[str], float]:
    """An argparse ``type=``: finite, non-negative seconds (NaN, inf and negatives are usage errors)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number of seconds, not {text[:40]!r}") from None
        try:
            return duration(value, what, allow_zero=allow_zero)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = "seconds"
    return parse
