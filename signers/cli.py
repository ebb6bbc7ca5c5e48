"""``keyplane``: the command line.

Commands live in small modules under `signers.commands` (keys, demo, tokens, ca) and,
for what lives outside the core (``conformance``, ``bench``, ``emulator``), in the
entry-point group ``keyplane.commands``: each is a ``register(subparsers)`` function
that adds one sub-command whose handler is ``args.func(args) -> int``. What handlers
share (exit codes, `print_result`, the configuration) is in `signers.commands.common`.

`main` builds only what the command line needs: the command it names in full, every other
top-level command as a stub with its one-line help (`signers.commands.COMMANDS`), so
``keyplane --help`` imports no command module. `build_parser()` still builds the whole tree.

Exit codes: 0 ok, 1 verification failed, 2 usage, configuration or input error, 3 back
end unavailable, 4 any other error (an unexpected one included); 141 when the reader
of standard output went away (``| head``). Errors print as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .commands import COMMANDS, PLUGIN_COMMANDS
from .errors import KeyplaneError
from .plugins import entries

if TYPE_CHECKING:
    from types import ModuleType

    from .commands.common import EXIT_ERROR, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, print_result

__all__ = [
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "parser_for",
    "print_result",
]

COMMAND_GROUP = "keyplane.commands"
# Built-in command modules, each with register(subparsers); the one a command line names is
# imported at start-up, so they must import nothing heavy at module level.
_BUILTIN_COMMANDS = tuple(COMMANDS)
_GLOBAL_OPTIONS_WITH_VALUE = ("--config",)


# argparse echoes the offending argument ("invalid choice: '...'"): a URI with an inline
# secret, or a 100 kB blob, must not come back whole.
_INLINE_SECRET = re.compile(r"((?:pin|password|passphrase|secret|token)[\w-]*[=:])[^&;'\"\s]*", re.IGNORECASE)
_LONG_QUOTED = re.compile(r"'([^']{80})[^']+'")


def _common() -> ModuleType:
    """What the command handlers share (exit codes, the configuration), imported when first needed.

    It imports the core (keys, `cryptography`), which ``keyplane --help`` does not need.
    """
    # lazy: keyplane --help imports neither the core nor cryptography
    from .commands import common

    return common


if not TYPE_CHECKING:  # type checkers see the import above

    def __getattr__(name: str) -> Any:
        if name in ("EXIT_ERROR", "EXIT_INVALID", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "print_result"):
            return getattr(_common(), name)  # re-exported from signers.commands.common, loaded on first use
        raise AttributeError(f"module 'signers.cli' has no attribute {name!r}")


def usage_message(message: str) -> str:
    """An argparse error message safe to print: one line, inline secrets masked, long values cut."""
    first = " ".join(message.split()) or "bad usage"
    return _LONG_QUOTED.sub(r"'\1...'", _INLINE_SECRET.sub(r"\1***", first))


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {usage_message(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(_common().EXIT_USAGE)


def build_parser(command: str | None = None, *, whole: bool = True) -> argparse.ArgumentParser:
    """The command tree: built-in commands, then the ``keyplane.commands`` plugins.

    With `whole` (the default) every command is built. Without it, only the module that
    registers `command` (none when None) is imported and built; every other built-in
    command, and keyplane's own plugins, are stubs that carry only their help line.
    """
    parser = _Parser(prog="keyplane", description="One signing interface over HSMs, KMSs, Vault and files.")
    parser.add_argument("--version", action="version", version=f"keyplane {__version__}")
    parser.add_argument("--config", metavar="FILE",
                        help="keyplane.toml with named keys and stores (default: $KEYPLANE_CONFIG, else ./keyplane.toml)")
    parser.add_argument("--json", action="store_true", help="machine-readable output (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _BUILTIN_COMMANDS:
        if whole or any(c == command for c, _ in COMMANDS[name]):
            importlib.import_module(f"signers.commands.{name}").register(sub)
        else:
            for stub, text in COMMANDS[name]:
                _add_stub(sub, stub, text)
    for ep in entries(COMMAND_GROUP):  # read from the installed metadata without importlib.metadata (~30 ms)
        known = PLUGIN_COMMANDS.get(ep.value)
        if not whole and known is not None and known[0] != command:
            _add_stub(sub, *known)
            continue
        try:
            register: Callable[[Any], None] = ep.load()
        except (ImportError, AttributeError) as e:
            print(f"keyplane: warning: command plugin {ep.name!r} failed to load: {e}", file=sys.stderr)
            continue
        register(sub)
    for leaf in _leaf_parsers(parser):
        if "--json" not in leaf._option_string_actions:
            # SUPPRESS keeps `keyplane --json keys list` working: the sub-parser sets json only when given.
            leaf.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                              help="machine-readable output")
    parser.set_defaults(root_parser=parser)  # for `keyplane completion`, which describes the whole tree
    return parser


def _add_stub(sub: Any, name: str, text: str) -> None:
    """List `name` with its help line, without building its parser (`parser_for` builds it when named).

    Every stub shares one empty parser: an ArgumentParser costs about 1 ms to make (argparse
    looks its messages up in the locale catalogues each time), and there are 18 commands.
    """
    stub = getattr(sub, "_keyplane_stub", None)
    if stub is None:
        stub = sub._keyplane_stub = _Parser(prog=f"keyplane {name}", add_help=False)
    sub._name_parser_map[name] = stub
    sub._choices_actions.append(sub._ChoicesPseudoAction(name, (), text))


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser `main` uses for `argv`: built only as far as the command `argv` names needs.

    ``completion`` (which describes the whole tree) and a command no table knows (another
    distribution's plugin, a typo) get the whole tree.
    """
    command = _command_in(argv)
    known = {c for commands in COMMANDS.values() for c, _ in commands} | {c for c, _ in PLUGIN_COMMANDS.values()}
    if command is not None and (command == "completion" or command not in known):
        return build_parser()
    return build_parser(command, whole=False)


def _command_in(argv: Sequence[str]) -> str | None:
    """The first positional argument (the command), skipping the global options and --config's value."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if not word.startswith("-") or word == "-":
            return word
        if "=" not in word and len(word) > 2 and any(o.startswith(word) for o in _GLOBAL_OPTIONS_WITH_VALUE):
            next(words, None)  # --config FILE, or an abbreviation argparse accepts (--conf FILE)
    return None


def _leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below `parser` that has no sub-commands of its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                has_children = any(isinstance(a, argparse._SubParsersAction) for a in child._actions)
                if has_children:
                    yield from _leaf_parsers(child)
                else:
                    yield child


def _report(args: argparse.Namespace | None, error: KeyplaneError) -> int:
    if args is not None and getattr(args, "json", False) is True:
        print(json.dumps({"ok": False, "error": type(error).__name__, "message": str(error)}))
    else:
        print(f"keyplane: {type(error).__name__}: {_one_line(str(error))}", file=sys.stderr)
    return _common().exit_code(error)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _unexpected(error: BaseException) -> int:
    """Last resort: one line naming the exception type and where it came from, exit 4.

    The message itself is not printed: an exception nobody translated may carry anything,
    a secret included. The innermost keyplane frame is enough for a bug report.
    """
    where = ""
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(f"{os.sep}{top}{os.sep}" in filename for top in ("signers", "backends", "conformance")):
            parts = filename.split(os.sep)
            where = f" at {'/'.join(parts[-2:])}:{tb.tb_lineno}"
        tb = tb.tb_next
    print(f"keyplane: internal error: unexpected {type(error).__name__}{where} (a bug: please report it)",
          file=sys.stderr)
    return _common().EXIT_ERROR


def _pipe_closed() -> int:
    """Standard output's reader went away: stop quietly, and keep Python's exit-time flush quiet too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return _common().EXIT_PIPE_CLOSED


def _run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "config", None) is not None:
            _common().config_of(args)  # a --config flag is checked (and loaded) even when no key name needs it
        code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except KeyplaneError as e:
        return _report(args, e)
    except FileNotFoundError as e:
        print(f"keyplane: missing file: {e.filename or 'a file'} does not exist", file=sys.stderr)
        return _common().EXIT_USAGE
    except IsADirectoryError as e:
        print(f"keyplane: {e.filename or 'a path'} is a directory, not a file", file=sys.stderr)
        return _common().EXIT_USAGE
    except PermissionError as e:
        print(f"keyplane: permission denied: {e.filename or 'a file'}", file=sys.stderr)
        return _common().EXIT_ERROR
    except OSError as e:
        print(f"keyplane: {type(e).__name__}: {e.strerror or 'I/O error'}: {e.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return _common().EXIT_ERROR
    except UnicodeError:
        print("keyplane: an input is not UTF-8 text (a binary file where text belongs?)", file=sys.stderr)
        return _common().EXIT_USAGE
    except RecursionError:
        print("keyplane: an input is nested too deeply", file=sys.stderr)
        return _common().EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # last resort: never a traceback, never exit 1 for a crash
        return _unexpected(e)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``keyplane`` with `argv` (default: the process's); returns the exit code."""
    try:
        args = parser_for(sys.argv[1:] if argv is None else argv).parse_args(argv)
        if getattr(args, "command", None) and not getattr(args, "func", None):
            args = build_parser().parse_args(argv)  # parsed into a stub: `_command_in` read argv otherwise
    except SystemExit as e:  # --help, --version, usage errors: argparse's own exit, 0 or 2
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _pipe_closed()
        return e.code if isinstance(e.code, int) else _common().EXIT_USAGE
    except BrokenPipeError:
        return _pipe_closed()
    except Exception as e:  # a command plugin whose register() fails
        return _unexpected(e)
    if not getattr(args, "func", None):
        print("keyplane: error: no command given (see keyplane --help)", file=sys.stderr)
        return _common().EXIT_USAGE
    return _run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
