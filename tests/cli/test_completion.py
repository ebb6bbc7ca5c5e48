"""``keyplane completion bash|zsh``: the generated script completes commands, options and values in a real shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signers.cli import build_parser
from signers.commands.completion import command_tree, script

from .conftest import Run


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "keyplane.bash"
    path.write_text(script(build_parser(), "bash"))
    return path


def complete(bash_script: Path, line: str, cwd: Path | None = None) -> list[str]:
    """What bash offers for `line` (the cursor at its end), through the generated function."""
    words = line.split(" ")
    program = (f"source {bash_script}\n"
               f"COMP_WORDS=({' '.join(repr(w) for w in words)})\nCOMP_CWORD={len(words) - 1}\n"
               "_keyplane_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                            cwd=cwd, timeout=30, check=True)
    return [w for w in result.stdout.splitlines() if w]


def test_top_level_commands(bash_script: Path) -> None:
    offered = complete(bash_script, "keyplane ")
    assert {"keys", "demo", "token", "ca", "completion", "--version", "--json", "--config"} <= set(offered)
    assert complete(bash_script, "keyplane ke") == ["keys"]


def test_sub_commands_and_their_options(bash_script: Path) -> None:
    assert set(complete(bash_script, "keyplane keys ")) >= {"create", "list", "delete", "pubkey", "sign", "verify"}
    assert set(complete(bash_script, "keyplane keys delete --")) == {"--help", "--store", "--yes", "--json"}
    # Words after an option's value still count: the path is found past `--store URI`.
    assert "--yes" in complete(bash_script, "keyplane keys delete k --store file:/x --")


def test_values_of_options_with_choices(bash_script: Path) -> None:
    assert complete(bash_script, "keyplane keys pubkey k --format ") == ["pem", "jwk", "der"]
    assert complete(bash_script, "keyplane keys create k --spec ML-DSA-") == ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"]
    assert set(complete(bash_script, "keyplane completion ")) == {"bash", "zsh", "--help", "--json"}


def test_an_option_taking_a_path_leaves_it_to_file_name_completion(bash_script: Path, tmp_path: Path) -> None:
    assert complete(bash_script, "keyplane keys sign k --in ", cwd=tmp_path) == []  # -o default: files


def test_every_command_of_the_parser_is_in_the_script(bash_script: Path) -> None:
    text = bash_script.read_text()
    for node in command_tree(build_parser()):
        if node.path:
            assert "/" + "/".join(node.path) + ")" in text


def test_the_cli_prints_both_scripts(keyplane: Run) -> None:
    bash = keyplane("completion", "bash")
    assert bash.returncode == 0 and bash.stdout.rstrip().endswith("complete -o default -F _keyplane_complete keyplane")
    zsh = keyplane("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef keyplane\nautoload -U +X bashcompinit")


def zsh_complete(zsh: str, script_path: Path, line: str) -> list[str]:
    """What the zsh script's function offers for `line`, called the way bashcompinit's compgen -F calls it."""
    words = line.split(" ")
    quoted = " ".join(repr(w) for w in words)
    program = (f"source {script_path}\nCOMP_WORDS=({quoted})\nCOMP_CWORD={len(words) - 1}\n"
               f"words=({quoted})\nCURRENT={len(words)}\ncompgen -F _keyplane_complete -- {words[-1]!r}\n")
    result = subprocess.run([zsh, "-f", "-c", program], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_zsh_runs_the_script_through_bashcompinit(tmp_path: Path) -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        print("zsh is not installed here: the zsh script is checked by its text only (bash runs the same function)")
        pytest.skip("zsh not installed (apt-get install zsh to run this check)")
    path = tmp_path / "keyplane.zsh"
    path.write_text(script(build_parser(), "zsh"))
    # zsh's compgen emulation leaves the filtering by prefix to zsh itself: it returns every candidate.
    assert {"create", "delete", "list"} <= set(zsh_complete(zsh, path, "keyplane keys de"))
    assert zsh_complete(zsh, path, "keyplane keys pubkey k --format ") == ["pem", "jwk", "der"]
    assert "--yes" in zsh_complete(zsh, path, "keyplane keys delete k --store file:/x --")


def test_completion_needs_no_python_at_tab_time(bash_script: Path) -> None:
    assert sys.executable not in bash_script.read_text() and "python" not in bash_script.read_text()
