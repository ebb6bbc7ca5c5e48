"""`keyplane --help` without building every command (issue 21 item 5), and nothing lost by it.

`signers.cli.parser_for` builds the command a command line names in full and every other
one as a stub carrying its help line from `signers.commands.COMMANDS`. These tests hold
the table to what the modules really register, and show that every command still gets
its whole parser, so the stubs can only ever be listed, never parsed into.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys

import pytest

from signers.cli import build_parser, parser_for
from signers.commands import COMMANDS, PLUGIN_COMMANDS


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, str | None]]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(choice.dest, choice.help) for choice in sub._choices_actions]


def _help(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(argv)
    return out.getvalue()


def test_the_table_is_what_the_modules_register() -> None:
    whole = _commands(build_parser())
    listed = [entry for commands in COMMANDS.values() for entry in commands]
    assert whole[: len(listed)] == listed
    plugins = whole[len(listed):]
    assert set(PLUGIN_COMMANDS.values()) <= set(plugins), "a plugin's name or help changed: update PLUGIN_COMMANDS"


def test_top_level_help_is_the_same_as_with_the_whole_tree() -> None:
    assert parser_for(["--help"]).format_help() == build_parser().format_help()
    assert _commands(parser_for([])) == _commands(build_parser())


@pytest.mark.parametrize("command", [c for commands in COMMANDS.values() for c, _ in commands]
                         + [c for c, _ in PLUGIN_COMMANDS.values()])
def test_every_command_still_gets_its_whole_parser(command: str) -> None:
    expected = _help(build_parser(), [command, "--help"])
    assert _help(parser_for([command, "--help"]), [command, "--help"]) == expected
    assert _help(parser_for(["--json", "--config", "keyplane.toml", command, "--help"]),
                 ["--config", "keyplane.toml", command, "--help"]) == expected


def test_the_value_of_config_is_not_taken_for_the_command() -> None:
    # `--config keys` names a file called "keys"; the command is jwks, which must be whole.
    parser = parser_for(["--config", "keys", "jwks", "--help"])
    assert "usage: keyplane jwks" in _help(parser, ["--config", "keys", "jwks", "--help"])
    assert "usage: keyplane jwks" in _help(parser_for(["--conf", "keys", "jwks"]), ["--conf", "keys", "jwks", "--help"])


def _command_modules_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('signers.commands.'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60).stdout
    loaded = json.loads(out.splitlines()[-1])
    return [m.rsplit(".", 1)[1] for m in loaded if m.rsplit(".", 1)[1] in COMMANDS]


def test_keyplane_help_imports_no_command_module() -> None:
    assert _command_modules_after("import signers.cli\nsigners.cli.parser_for(['--help']).format_help()") == []


def test_a_command_imports_its_own_module_only() -> None:
    loaded = _command_modules_after("import signers.cli\nsigners.cli.parser_for(['keys', 'list'])")
    assert "keys" in loaded and "tokens" not in loaded and "agent" not in loaded
    assert len(_command_modules_after("import signers.cli\nsigners.cli.build_parser()")) == len(COMMANDS)
