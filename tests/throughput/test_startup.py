"""`import signers` stays light: no importlib.metadata, asyncio or optional SDK until needed.

Each is measured in fresh interpreters by benchmarks/bench_startup.py; this test only checks
which modules got imported, so it cannot be flaky on a loaded machine.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

LAZY = ("importlib.metadata", "asyncio", "concurrent.futures", "starlette", "uvicorn", "mcp", "httpx",
        "eth_account", "x402", "psycopg", "redis", "OpenSSL", "rfc8785")
START = (*LAZY, "tomllib")  # the config parser: only once a keyplane.toml is read


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return set(json.loads(out.splitlines()[-1]))


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("code", ["import signers",
                                  "import signers.cli\nsigners.cli.parser_for(['--help']).format_help()",
                                  "import signers.cli\nsigners.cli.build_parser().format_help()"],
                         ids=["import signers", "keyplane --help", "the whole command tree"])
def test_start_up_imports_none_of_the_lazy_modules(code: str) -> None:
    modules = _modules_after(code)
    assert "signers" in modules  # the probe did import the package
    assert [name for name in LAZY if _loaded(modules, name)] == []


@pytest.mark.parametrize("code", ["import signers", "import signers.cli\nsigners.cli.parser_for(['--help']).format_help()"],
                         ids=["import signers", "keyplane --help"])
def test_start_up_reads_no_config_parser(code: str) -> None:
    modules = _modules_after(code)
    assert [name for name in START if _loaded(modules, name)] == []


def test_the_probe_sees_a_lazy_module_once_it_is_used() -> None:
    modules = _modules_after("import signers, asyncio")
    assert _loaded(modules, "asyncio")


def test_keyplane_help_builds_no_command_module() -> None:
    """`keyplane --help` lists the commands from a table (see test_lazy_cli): no command module, no core, no crypto."""
    modules = _modules_after("import signers.cli\nsigners.cli.parser_for(['--help']).format_help()")
    assert sorted(m for m in modules if m.startswith(("signers", "conformance", "cryptography"))) == [
        "signers", "signers.cli", "signers.commands", "signers.errors", "signers.plugins"]


def test_import_signers_loads_each_name_when_first_used() -> None:
    assert sorted(m for m in _modules_after("import signers") if m.startswith(("signers", "cryptography"))) == [
        "signers", "signers.errors"]
    used = _modules_after("import signers\nsigners.KeySpec\nfrom signers import ConfigError")
    assert {"signers.algorithms", "signers.errors"} <= used and "signers.registry" not in used


def test_every_public_name_of_signers_resolves() -> None:
    import signers

    assert sorted(signers.__all__) == sorted({*signers._WHERE, *signers.errors.__all__})
    for name in signers.__all__:
        module = signers._WHERE.get(name, "errors")
        assert getattr(signers, name) is getattr(importlib.import_module(f"signers.{module}"), name)
    with pytest.raises(AttributeError):
        getattr(signers, "no_such_name")  # noqa: B009
    assert set(signers.__all__) <= set(dir(signers))
